"""The key footer every screen shows: one line that draws the screen's keys itself.

Textual's Footer is a container of one widget per key, made again (styles applied to
each) whenever the bindings change; at a screen's start it waits for the bindings to
settle and fills in a frame later. This one is a single widget that reads the screen's
active bindings when it paints, so the keys are in the screen's first frame and a
change of focus is one repaint, not a recompose. It looks the same (the theme's footer
colours, the command palette's key on the right after a thin bar), dims disabled keys,
highlights the key under the mouse, and a click on a key presses it, as Textual's does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.widget import Widget

PALETTE_BAR = "▏"


@dataclass(frozen=True)
class FooterKey:
    """One key as the footer shows it: what it presses, and where it is drawn."""

    key: str  # as Textual names it, for simulate_key
    display: str
    description: str
    enabled: bool
    tooltip: str
    start: int = 0  # cells, from the footer's left edge
    end: int = 0


def shown_keys(widget: Widget) -> tuple[list[FooterKey], FooterKey | None]:
    """The keys of ``widget``'s screen to show, once per action in the order Textual's
    footer uses, and the command palette's key (None when the app has no palette)."""
    app = widget.app
    active = widget.screen.active_bindings
    by_action: dict[str, FooterKey] = {}
    for _node, binding, enabled, tooltip in active.values():
        if binding.show and binding.action not in by_action:
            by_action[binding.action] = _key(widget, binding, enabled, tooltip)
    palette = None
    if app.ENABLE_COMMAND_PALETTE:
        found = active.get(app.COMMAND_PALETTE_BINDING)
        if found is not None:
            _node, binding, enabled, tooltip = found
            palette = _key(widget, binding, enabled, binding.tooltip or binding.description)
    return list(by_action.values()), palette


def _key(widget: Widget, binding: Binding, enabled: bool, tooltip: str) -> FooterKey:
    return FooterKey(binding.key, widget.app.get_key_display(binding), binding.description,
                     enabled, tooltip)


class Footer(Widget, can_focus=False):
    """The screen's keys on one line: `` key description `` for each, the command
    palette's on the right."""

    ALLOW_SELECT = False
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "footer--key", "footer--description", "footer--item", "footer--bar",
        "footer--hover",
    }
    DEFAULT_CSS = """
    Footer {
        dock: bottom;
        height: 1;
        color: $footer-foreground;
        background: $footer-background;
        text-wrap: nowrap;
        .footer--item { background: $footer-item-background; }
        .footer--key {
            color: $footer-key-foreground;
            background: $footer-key-background;
            text-style: bold;
        }
        .footer--description {
            color: $footer-description-foreground;
            background: $footer-description-background;
        }
        .footer--bar { color: $foreground 20%; }
        .footer--hover {
            color: $footer-key-foreground;
            background: $block-hover-background;
        }
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._keys: list[FooterKey] = []
        self._hover: str | None = None  # the key under the mouse

    def on_mount(self) -> None:
        self.screen.bindings_updated_signal.subscribe(self, self._bindings_changed)

    def on_unmount(self) -> None:
        self.screen.bindings_updated_signal.unsubscribe(self)

    def _bindings_changed(self, _screen: Any) -> None:
        self.refresh()

    def drawn(self) -> list[FooterKey]:
        """The keys as last painted, each with the cells it takes."""
        return list(self._keys)

    # ---------------------------------------------------------------- drawing

    def render(self) -> Text:
        keys, palette = shown_keys(self)
        width = self.size.width
        key_style = self.get_component_rich_style("footer--key")
        description_style = self.get_component_rich_style("footer--description")
        item_style = self.get_component_rich_style("footer--item")
        hover_style = self.get_component_rich_style("footer--hover")
        right = Text()
        placed_palette: FooterKey | None = None
        if palette is not None:
            # As Textual's: "▏^p palette " (compact, a cell of padding on the right).
            right.append(PALETTE_BAR, self.get_component_rich_style("footer--bar"))
            body = Text.assemble((palette.display, key_style),
                                 (" " + palette.description + " ", description_style))
            self._stylize(body, item_style, palette, hover_style)
            right.append_text(body)
            if right.cell_len > width:
                right = Text()
            else:
                start = width - right.cell_len + len(PALETTE_BAR)
                placed_palette = _placed(palette, start, width)
        room = width - right.cell_len
        line = Text(no_wrap=True, overflow="crop", end="")
        placed: list[FooterKey] = []
        for key in keys:
            body = Text.assemble((" " + key.display + " ", key_style),
                                 (key.description + " ", description_style))
            self._stylize(body, item_style, key, hover_style)
            start = line.cell_len
            if start >= room:
                break
            line.append_text(body)
            placed.append(_placed(key, start, min(line.cell_len, room)))
        line.truncate(room, pad=True)
        line.append_text(right)
        self._keys = placed + ([placed_palette] if placed_palette is not None else [])
        return line

    def _stylize(self, body: Text, item_style: Style, key: FooterKey,
                 hover_style: Style) -> None:
        body.stylize_before(item_style)
        if key.key == self._hover and key.enabled:
            body.stylize(hover_style)
        if not key.enabled:
            body.stylize(Style(dim=True))

    # ------------------------------------------------------------------ mouse

    def _key_at(self, x: int) -> FooterKey | None:
        return next((k for k in self._keys if k.start <= x < k.end), None)

    def on_mouse_move(self, event: events.MouseMove) -> None:
        key = self._key_at(event.x)
        hover = key.key if key is not None else None
        if hover != self._hover:
            self._hover = hover
            self.tooltip = key.tooltip if key is not None and key.tooltip else None
            self.refresh()

    def on_leave(self, _event: events.Leave) -> None:
        if self._hover is not None:
            self._hover = None
            self.refresh()

    def on_click(self, event: events.Click) -> None:
        key = self._key_at(event.x)
        if key is None:
            return
        event.stop()
        if key.enabled:
            self.app.simulate_key(key.key)
        else:
            self.app.bell()


def _placed(key: FooterKey, start: int, end: int) -> FooterKey:
    return FooterKey(key.key, key.display, key.description, key.enabled, key.tooltip,
                     start, end)
