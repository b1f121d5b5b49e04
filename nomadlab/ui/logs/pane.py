"""The log pane of the workspace: the chosen log (or the most recently active one)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from nomadlab.core.logs import LogLine, LogStatus
from nomadlab.ui import render
from nomadlab.ui.services import Services

if TYPE_CHECKING:
    from nomadlab.ui.logs.view import LogView


class LogPane(Vertical):
    DEFAULT_CSS = """
    LogPane > #log-pane-title { height: 1; color: $text-muted; }
    LogPane > LogView { height: 1fr; background: transparent; scrollbar-size: 0 0; }
    """

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services
        # The viewer (and its module) is made when there is a log to show: a workspace
        # without [[logs]] paints its first frame without it.
        self.view: LogView | None = None
        self._view_coming = False
        self.pinned = services.config.workspace.log
        self.name_shown: str | None = None

    def compose(self) -> ComposeResult:
        yield Static("", id="log-pane-title", markup=False)

    async def _make_view(self) -> None:
        from nomadlab.ui.logs.view import LogView

        view = LogView(compact=True)
        await self.mount(view)
        self.view = view
        self._view_coming = False
        self._show(self.name_shown)

    def _show(self, name: str | None) -> None:
        logs = self.services.logs
        if self.view is not None and logs is not None and name in logs.tails:
            self.view.show(name, logs.tails[name].buffer)

    def on_mount(self) -> None:
        self.services.log_bridge.subscribe(self._on_lines, self._on_status)
        self._choose()

    def on_unmount(self) -> None:
        self.services.log_bridge.unsubscribe(self._on_lines, self._on_status)

    def _choose(self, candidate: str | None = None) -> None:
        logs = self.services.logs
        if logs is None or not logs.tails:
            self.query_one("#log-pane-title", Static).update(
                render.safe("No logs yet: add [[logs]] to the config, or open one on screen 2 "
                            "with o.", "dim italic"))
            return
        name = self.pinned or candidate or self.services.log_bridge.last_active \
            or next(iter(logs.tails))
        if name not in logs.tails or name == self.name_shown:
            return
        self.name_shown = name
        if self.view is not None:
            self._show(name)
        elif not self._view_coming:  # shows the log chosen by then, once mounted
            self._view_coming = True
            self.call_later(self._make_view)
        self._title()

    def _quiet(self, seconds: float = 30.0) -> bool:
        """True when the shown log had no new line for ``seconds`` (or none is shown)."""
        logs = self.services.logs
        if logs is None or self.name_shown is None:
            return True
        status = logs.statuses.get(self.name_shown)
        last = status.last_line_at if status is not None else None
        return last is None or self.services.clock.time() - last > seconds

    def _title(self) -> None:
        logs = self.services.logs
        if logs is None or self.name_shown is None:
            return
        status = logs.statuses.get(self.name_shown)
        text = render.safe(self.name_shown, "bold", 30)
        if status is not None:
            text.append(f" · {status.state}", style="dim")
            if status.error:
                text.append(" · ")
                text.append_text(render.safe(status.error, "red", 50))
        self.query_one("#log-pane-title", Static).update(text)

    def _on_lines(self, name: str, lines: list[LogLine]) -> None:
        if self.pinned is None and name != self.name_shown and lines and self._quiet():
            self._choose(name)  # the shown log went quiet: follow the active one
            return
        if name == self.name_shown and self.view is not None:
            self.view.add_lines(lines)

    def _on_status(self, status: LogStatus) -> None:
        if self.name_shown is None:
            self._choose()
        elif status.name == self.name_shown:
            self._title()
