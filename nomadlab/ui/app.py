"""The nomadlab TUI: a workspace of panes, and a full screen per pane on 0-5."""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial

from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.screen import Screen

from nomadlab.ui.screens.fleet import FleetScreen
from nomadlab.ui.screens.modals import HelpScreen
from nomadlab.ui.screens.placeholder import PlaceholderScreen
from nomadlab.ui.screens.workspace import WorkspaceScreen
from nomadlab.ui.services import Services

MODES = ("workspace", "fleet", "logs", "board", "papers", "focus")
MODE_TITLES = {
    "workspace": "Workspace",
    "fleet": "Fleet",
    "logs": "Logs",
    "board": "Board",
    "papers": "Papers",
    "focus": "Focus",
}


class NomadApp(App[None]):
    CSS_PATH = "nomadlab.tcss"
    TITLE = "nomadlab"
    BINDINGS = [
        Binding("0", "open_mode('workspace')", "Home", show=False),
        Binding("1", "open_mode('fleet')", "Fleet", show=False),
        Binding("2", "open_mode('logs')", "Logs", show=False),
        Binding("3", "open_mode('board')", "Board", show=False),
        Binding("4", "open_mode('papers')", "Papers", show=False),
        Binding("5", "open_mode('focus')", "Focus", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services

    # ------------------------------------------------------------------ screens

    def _make(self, mode: str) -> Screen[None]:
        s = self.services
        if mode == "workspace":
            return WorkspaceScreen(s)
        if mode == "fleet":
            return FleetScreen(s)
        texts = {
            "logs": "Logs: live tails of training logs on every host.",
            "board": "Board: the model-lifecycle Kanban.",
            "papers": "Papers: the reading queue and the two-paper rule.",
            "focus": "Focus: deep-work timers, today's plan, the weekly retro.",
        }
        return PlaceholderScreen(s, MODE_TITLES[mode], texts[mode])

    def on_mount(self) -> None:
        for mode in MODES:
            self.add_mode(mode, partial(self._make, mode))
        self.switch_mode("workspace")
        if self.services.start_fleet:
            self.run_worker(self.services.fleet.start(), name="fleet", exclusive=True)
        if self.services.hint:
            self.notify(self.services.hint, title="Welcome", timeout=15)

    async def on_unmount(self) -> None:
        await self.services.fleet.stop()

    async def action_open_mode(self, mode: str) -> None:
        if mode in MODES and self.current_mode != mode:
            await self.switch_mode(mode)

    async def open_fleet_host(self, host: str | None) -> None:
        await self.switch_mode("fleet")
        if host is not None:
            screen = self.screen
            if isinstance(screen, FleetScreen):
                screen.call_after_refresh(screen.select_host, host)

    # ------------------------------------------------------------------ help & palette

    def _binding_rows(self, screen: Screen[object]) -> list[tuple[str, list[tuple[str, str]]]]:
        sections: list[tuple[str, list[tuple[str, str]]]] = []
        seen: set[str] = set()
        nodes = [("This screen", screen)]
        focused = screen.focused
        if focused is not None and focused is not screen:
            nodes.append(("Focused", focused))  # type: ignore[arg-type]
        for title, node in nodes:
            rows = []
            for binding in node.BINDINGS:
                if isinstance(binding, Binding) and binding.description and binding.key not in seen:
                    seen.add(binding.key)
                    rows.append((self.get_key_display(binding), binding.description))
            if rows:
                sections.append((title, rows))
        rows = [(str(i), f"{MODE_TITLES[m]} screen") for i, m in enumerate(MODES)]
        rows += [("?", "this help"), ("ctrl+p", "command palette"), ("q", "quit")]
        sections.append(("Everywhere", rows))
        return sections

    def action_help(self) -> None:
        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen(self._binding_rows(self.screen)))

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        for mode in MODES:
            yield SystemCommand(f"Go to {MODE_TITLES[mode]}", f"key {MODES.index(mode)}",
                                partial(self.call_later, self.action_open_mode, mode))
        for binding in screen.BINDINGS:
            if isinstance(binding, Binding) and binding.description:
                yield SystemCommand(f"{screen.TITLE or 'Screen'}: {binding.description}",
                                    f"key {self.get_key_display(binding)}",
                                    partial(screen.run_action, binding.action))
        yield SystemCommand("Help: all keys", "key ?", self.action_help)
        yield from super().get_system_commands(screen)
