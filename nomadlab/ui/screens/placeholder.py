"""Full screens whose issue has not landed yet: say what they will hold."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer, Static

from nomadlab.ui.services import Services
from nomadlab.ui.widgets.statusbar import StatusBar


class PlaceholderScreen(Screen[None]):
    def __init__(self, services: Services, title: str, text: str) -> None:
        super().__init__()
        self.services = services
        self.title_text = title
        self.text = text

    def compose(self) -> ComposeResult:
        yield StatusBar(self.services, self.title_text)
        yield Static(Text(self.text, style="dim italic"), classes="placeholder")
        yield Footer()
