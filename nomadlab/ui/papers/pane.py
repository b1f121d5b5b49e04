"""The papers pane of the workspace: this week's reads against the cap, what is being
read, and the next papers in the queue."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import Static

from nomadlab.core.papers import PaperService
from nomadlab.ui import render
from nomadlab.ui.papers.text import week_text
from nomadlab.ui.services import Services
from nomadlab.ui.store_watch import watch_store


class PapersPane(Vertical):
    DEFAULT_CSS = """
    PapersPane { padding: 0 1; }
    PapersPane > #papers-pane-week { height: 1; }
    PapersPane > #papers-pane-list { height: 1fr; }
    """

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services
        self.service: PaperService | None = services.papers
        self._unsubscribe: Callable[[], None] | None = None
        self._week = ""  # the week shown: a new one starts at the configured day

    def compose(self) -> ComposeResult:
        yield Static("", id="papers-pane-week", markup=False)
        yield Static("", id="papers-pane-list", markup=False)

    def on_mount(self) -> None:
        if self.service is not None:
            self._unsubscribe = self.service.subscribe(self._poke)
        watch_store(self, self.services.store, self._store_changed, "papers")
        self.set_interval(60.0, self._new_week)
        self.update_text()

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()

    def on_resize(self) -> None:
        self.update_text()

    def _poke(self) -> None:
        self.call_later(self.update_text)

    def _store_changed(self) -> None:
        self.update_text()  # hidden too: changes are rare, coming back shows them at once

    def _new_week(self) -> None:
        """Once a minute: a new week? (the pane shows this week's count)"""
        if self.service is None or not self.screen.is_current:
            return
        if self.service.week(self.services.clock.time()).label != self._week:
            self.update_text()

    def update_text(self) -> None:
        service = self.service
        week = self.query_one("#papers-pane-week", Static)
        body = self.query_one("#papers-pane-list", Static)
        if service is None:
            week.update(Text("The papers service is not available.", style="dim italic"))
            return
        now = self.services.clock.time()
        self._week = service.week(now).label
        head = week_text(service, now)
        if service.review_due(now):
            head.append(" · review due", style="bold magenta")
        week.update(head)
        width = max(10, self.content_size.width or 40)
        height = self.size.height
        rows = height - 1 if height > 1 else 8
        lines: list[Text] = []
        reading = service.papers(status="reading")
        for paper in reading:
            line = Text("▶  ", style="bold green")
            line.append_text(render.safe(paper.label, "bold", width - 3))
            lines.append(line)
        queue = service.queue()
        if queue:
            lines.append(Text(f"Next in the queue ({len(queue)})", style="dim"))
            for paper in queue:
                line = Text("   ")
                if paper.priority:
                    line = Text(f"{max(-9, min(9, paper.priority)):+d} ",
                                style="bold" if paper.priority > 0 else "dim")
                style = "italic yellow" if paper.metadata == "pending" else ""
                line.append_text(render.safe(paper.label, style, width - 3))
                lines.append(line)
        if not lines:
            lines.append(Text("The queue is empty. Add papers on screen 4 (a) or with "
                              "`nomadlab paper add`.", style="dim italic"))
        shown = lines[:rows]
        text = Text("\n", no_wrap=True, overflow="ellipsis").join(shown)
        body.update(text)
