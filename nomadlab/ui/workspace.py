"""Screen 0, home: panes side by side like a tiling window manager.

Keys move focus between panes, maximise and restore the focused one, cycle layouts,
and open its full screen. Below about 100x30 one pane shows at a time, with a
switcher. The layout is remembered between runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal, Vertical
from textual.dom import DOMNode
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Static

from nomadlab.core.config import LAYOUTS
from nomadlab.ui.fleet.pane import FleetPane
from nomadlab.ui.footer import Footer
from nomadlab.ui.navigate import navigator
from nomadlab.ui.panes import PANES, PaneKind
from nomadlab.ui.services import Services
from nomadlab.ui.statusbar import StatusBar

if TYPE_CHECKING:
    from textual.widgets import Tabs

LAYOUT_STATE_KEY = "workspace.layout"


class PaneFrame(Vertical):
    """A bordered pane; focusable itself when its content is not."""

    can_focus = True

    def __init__(self, kind: PaneKind, content: Widget | None) -> None:
        super().__init__(classes="pane", id=f"pane-{kind.key}")
        self.kind = kind
        # None: its feature's service is not made yet (`nomadlab`, until just after
        # the first frame): an empty pane until fill() is given its content.
        self.pending = content is None
        self.content = content if content is not None else Static("")
        self.border_title = f"{kind.number} {kind.title}"

    def compose(self) -> ComposeResult:
        yield self.content

    async def fill(self, content: Widget) -> None:
        """The content of a pending pane, now that its service is there."""
        focused = self.screen.focused is self
        await self.content.remove()
        self.content = content
        self.pending = False
        await self.mount(content)
        if focused:
            self.on_focus()

    def on_focus(self) -> None:
        if self.content.can_focus:
            self.content.focus()


class WorkspaceScreen(Screen[None]):
    TITLE = "Workspace"
    # No automatic focus: arrange_panes focuses the pane it should (Textual's default,
    # "*", queried every widget for the first focusable one at the screen's first
    # resume, then our focus moved it again: two focus changes and restyles).
    AUTO_FOCUS = ""
    BINDINGS = [
        Binding("tab", "focus_pane(1)", "Next pane"),
        Binding("shift+tab", "focus_pane(-1)", "Prev pane", show=False),
        Binding("m", "toggle_maximize", "Maximise"),
        Binding("l", "cycle_layout", "Layout"),
        Binding("enter", "open_pane", "Open", show=False),
        Binding("left_square_bracket", "switch_pane(-1)", "Prev pane", show=False),
        Binding("right_square_bracket", "switch_pane(1)", "Next pane", show=False),
    ]

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services
        ws = services.config.workspace
        self.kinds = [PANES[k] for k in ws.panes if k in PANES]
        remembered = services.store.get_state(LAYOUT_STATE_KEY) if ws.remember else None
        self.layout_name = remembered if remembered in LAYOUTS else ws.layout
        self.narrow = False
        self.current = 0  # the pane shown in narrow mode

    def compose(self) -> ComposeResult:
        yield StatusBar(self.services, "Workspace")
        yield Container(id="panes")
        yield Footer()

    async def on_mount(self) -> None:
        self.narrow = self._is_narrow(self.app.size.width, self.app.size.height)
        if not self.services.features_ready:
            self.services.feature_listeners.append(self._features_ready)
        # The panes in the screen's first frame (not one frame later: a second layout
        # and paint of the whole screen before the user sees the panes).
        await self.arrange_panes()

    def _features_ready(self) -> None:
        self.call_later(self.fill_panes)

    async def fill_panes(self) -> None:
        """Give the panes that waited for their feature's service their content."""
        for frame in self.pane_frames():
            if frame.pending and frame.is_attached and self.services.features_ready:
                await frame.fill(frame.kind.build(self.services))
        for bar in self.query(StatusBar):
            bar.update_text()  # the focus timer, if one runs

    def on_screen_resume(self) -> None:
        # By CSS type name: the viewer's module is imported once a log pane made one.
        for view in self.query("LogView"):
            from nomadlab.ui.logs.view import LogView

            if isinstance(view, LogView):
                view.catch_up()

    def _is_narrow(self, width: int, height: int) -> bool:
        ws = self.services.config.workspace
        return width < ws.narrow_width or height < ws.narrow_height

    async def on_resize(self, event: events.Resize) -> None:
        narrow = self._is_narrow(event.size.width, event.size.height)
        if narrow != self.narrow:
            self.narrow = narrow
            await self.arrange_panes()

    # ------------------------------------------------------------------ building

    def _frame(self, kind: PaneKind) -> PaneFrame:
        ready = self.services.features_ready or not kind.needs_service
        frame = PaneFrame(kind, kind.build(self.services) if ready else None)
        weight = self.services.config.workspace.sizes.get(kind.key, 1)
        frame.styles.width = f"{weight}fr" if self.layout_name in ("columns", "main-top") else "1fr"
        frame.styles.height = f"{weight}fr" if self.layout_name in ("rows", "main-left") else "1fr"
        return frame

    async def arrange_panes(self) -> None:
        """(Re)build the panes for the current layout and size."""
        holder = self.query_one("#panes", Container)
        focused_kind = self._focused_kind()
        await holder.remove_children()
        holder.set_classes(f"layout-{self.layout_name}" + (" narrow" if self.narrow else ""))
        if not self.kinds:
            return
        if self.narrow:
            self.current = min(self.current, len(self.kinds) - 1)
            from textual.widgets import Tab, Tabs  # only a narrow terminal shows them

            tabs = Tabs(*[Tab(f"{k.number} {k.title}", id=f"tab-{k.key}") for k in self.kinds],
                        active=f"tab-{self.kinds[self.current].key}", id="switcher")
            await holder.mount(tabs)
            await holder.mount(self._frame(self.kinds[self.current]))
        else:
            frames = [self._frame(k) for k in self.kinds]
            main_key = self.services.config.workspace.main
            if self.layout_name in ("main-left", "main-top"):
                main = next((f for f in frames if f.kind.key == main_key), frames[0])
                others = [f for f in frames if f is not main]
                side: Vertical | Horizontal = (
                    Vertical(*others, classes="side") if self.layout_name == "main-left"
                    else Horizontal(*others, classes="side"))
                main.styles.width = "2fr" if self.layout_name == "main-left" else "1fr"
                main.styles.height = "2fr" if self.layout_name == "main-top" else "1fr"
                await holder.mount(main)
                if others:
                    await holder.mount(side)
            else:
                await holder.mount_all(frames)
        # Focus now, before the panes are first painted: focusing them after would
        # restyle them (:focus-within), repaint the fleet pane's table whole and
        # recompose the footer again.
        self._restore_focus(focused_kind)

    def _focused_kind(self) -> str | None:
        node: DOMNode | None = self.focused
        while node is not None:
            if isinstance(node, PaneFrame):
                return node.kind.key
            node = node.parent
        return None

    def _restore_focus(self, kind: str | None) -> None:
        frames = list(self.query(PaneFrame))
        if not frames:
            return
        target = next((f for f in frames if f.kind.key == kind), frames[0])
        # its content when that takes focus (as the frame would pass it on): one focus
        # change, one update of the footer's keys
        (target.content if target.content.can_focus else target).focus()

    # ------------------------------------------------------------------ actions

    def pane_frames(self) -> list[PaneFrame]:
        return list(self.query(PaneFrame))

    async def action_focus_pane(self, step: int) -> None:
        if self.narrow:
            await self.action_switch_pane(step)
            return
        frames = self.pane_frames()
        if not frames:
            return
        current = self._focused_kind()
        keys = [f.kind.key for f in frames]
        index = keys.index(current) if current in keys else -1
        frames[(index + step) % len(frames)].focus()

    async def action_switch_pane(self, step: int) -> None:
        if not self.narrow or not self.kinds:
            await self.action_focus_pane(step)
            return
        self.current = (self.current + step) % len(self.kinds)
        await self.arrange_panes()

    async def on_tabs_tab_activated(self, event: Tabs.TabActivated) -> None:
        if event.tab.id is None:
            return
        key = event.tab.id.removeprefix("tab-")
        index = next((i for i, k in enumerate(self.kinds) if k.key == key), self.current)
        if index != self.current:
            self.current = index
            await self.arrange_panes()

    def action_toggle_maximize(self) -> None:
        if self.maximized is not None:
            self.minimize()
            return
        kind = self._focused_kind()
        frame = next((f for f in self.pane_frames() if f.kind.key == kind), None)
        if frame is not None:
            self.maximize(frame, container=False)

    async def action_cycle_layout(self) -> None:
        index = LAYOUTS.index(self.layout_name) if self.layout_name in LAYOUTS else -1
        self.layout_name = LAYOUTS[(index + 1) % len(LAYOUTS)]
        if self.services.config.workspace.remember:
            self.services.store.set_state(LAYOUT_STATE_KEY, self.layout_name,
                                          self.services.clock.time())
        if self.maximized is not None:
            self.minimize()
        await self.arrange_panes()
        self.notify(f"Layout: {self.layout_name}", timeout=2)

    def action_open_pane(self, host: str | None = None) -> None:
        kind = self._focused_kind()
        if kind is None:
            return
        pane = PANES[kind]
        self.app.call_later(self.app.run_action, f"open_mode('{pane.mode}')")

    def on_fleet_pane_open(self, event: FleetPane.Open) -> None:
        nav = navigator(self.app)
        if nav is not None:
            self.app.call_later(nav.open_fleet_host, event.host)
