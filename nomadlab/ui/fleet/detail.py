"""``enter`` on a GPU of the fleet table: everything about its health, live."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Static

from nomadlab.ui.fleet import health_view
from nomadlab.ui.footer import Footer
from nomadlab.ui.services import Services
from nomadlab.ui.statusbar import StatusBar


class GpuDetailScreen(Screen[None]):
    TITLE = "GPU"
    BINDINGS = [Binding("escape,enter,q", "close", "Back")]
    DEFAULT_CSS = """
    GpuDetailScreen #gpu-detail-body { padding: 1 2; height: auto; }
    """

    def __init__(self, services: Services, host: str, gpu: int) -> None:
        super().__init__()
        self.services = services
        self.host = host
        self.gpu = gpu

    def compose(self) -> ComposeResult:
        yield StatusBar(self.services, "Fleet")
        with VerticalScroll(id="gpu-detail"):
            yield Static(id="gpu-detail-body")
        yield Footer()

    def on_mount(self) -> None:
        self.refresh_body()
        self.set_interval(1.0, self.refresh_body)

    def refresh_body(self) -> None:
        sample = self.services.fleet.latest.get(self.host)
        gpu = next((g for g in sample.gpus if g.index == self.gpu), None) if sample else None
        body = self.query_one("#gpu-detail-body", Static)
        if gpu is None:
            body.update(f"GPU {self.gpu} of this host is not in the latest sample.")
            return
        body.update(health_view.detail_text(self.host, gpu, sample))

    def action_close(self) -> None:
        self.app.pop_screen()
