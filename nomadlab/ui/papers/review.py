"""The weekly review (w on the papers screen): what was added since the last review,
for triage: keep, drop, raise priority, or pick as one of this week's reads. Done (ctrl+s)
records that the review happened; escape leaves without recording it."""

from __future__ import annotations

import time

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from nomadlab.core.durations import compact
from nomadlab.core.papers import CapReached, Paper, PaperError, PaperService
from nomadlab.ui import render
from nomadlab.ui.confirm import ConfirmScreen
from nomadlab.ui.papers.text import paper_detail, week_text
from nomadlab.ui.services import Services
from nomadlab.ui.statusbar import StatusBar

DECISION_STYLE = {"keep": ("kept", "green"), "drop": ("dropped", "red"),
                  "raise": ("raised", "bold yellow"), "pick": ("picked", "bold magenta")}


class PaperReviewScreen(Screen[None]):
    TITLE = "Weekly review"
    DEFAULT_CSS = """
    PaperReviewScreen #review-head { height: auto; padding: 0 1; }
    PaperReviewScreen #review-table {
        height: 1fr; border: round $panel-lighten-2;
    }
    PaperReviewScreen #review-table:focus { border: round $accent; }
    PaperReviewScreen #review-detail {
        height: 1fr; border: round $panel-lighten-2; padding: 0 1;
    }
    """
    BINDINGS = [
        Binding("k", "decide('keep')", "Keep"),
        Binding("d", "decide('drop')", "Drop"),
        Binding("plus,equals_sign", "decide('raise')", "Raise priority"),
        Binding("p", "decide('pick')", "Pick for this week"),
        Binding("ctrl+s", "done", "Done"),
        Binding("escape", "leave", "Back"),
    ]

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services
        service = services.papers
        assert isinstance(service, PaperService)
        self.service: PaperService = service
        now = services.clock.time()
        self.since = service.last_review()
        self.ids = [p.id for p in service.review_candidates(now)]
        self.decisions: dict[int, str] = {}
        self.papers: list[Paper] = []

    def compose(self) -> ComposeResult:
        yield StatusBar(self.services, "Review")
        yield Static("", id="review-head", markup=False)
        table: DataTable[Text] = DataTable(cursor_type="row", id="review-table")
        yield table
        with VerticalScroll(id="review-detail"):
            yield Static("", id="review-detail-text", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one("#review-table", DataTable)
        table.border_title = "Added since the last review"
        self.query_one("#review-detail", VerticalScroll).border_title = "Paper"
        self.reload()
        table.focus()
        # The status bar lays its line out to its width: again once it has one.
        self.call_after_refresh(self.query_one(StatusBar).update_text)

    def reload(self) -> None:
        now = self.services.clock.time()
        table = self.query_one("#review-table", DataTable)
        row = table.cursor_row
        papers = [self.service.get(i) for i in self.ids]
        self.papers = [p for p in papers if p is not None]
        width = max(16, self.app.size.width - 2 - (9 + 2 + 18 + 4 + 3) - 12 - 1)
        with self.app.batch_update():
            table.clear(columns=True)
            table.add_column("Decision", key="decision", width=9)
            table.add_column("P", key="priority", width=2)
            table.add_column("Title", key="title", width=width)
            table.add_column("Authors", key="authors", width=18)
            table.add_column("Year", key="year", width=4)
            table.add_column("Age", key="age", width=3)
            for paper in self.papers:
                label, style = DECISION_STYLE.get(self.decisions.get(paper.id, ""), ("", ""))
                if not label and paper.status == "reading":
                    label, style = "reading", "green"
                table.add_row(
                    Text(label, style=style),
                    Text(f"{paper.priority:+d}" if paper.priority else "",
                         style="bold" if paper.priority > 0 else "dim"),
                    render.safe(paper.label, "dim" if paper.status == "dropped" else "", width),
                    render.safe(paper.short_authors(1), "", 18),
                    Text(str(paper.year or ""), style="dim"),
                    Text(compact(now - paper.added, parts=1), style="dim"),
                    key=str(paper.id),
                )
        if self.papers:
            table.move_cursor(row=min(row, len(self.papers) - 1), animate=False)
        self._head(now)
        self._detail()

    def _head(self, now: float) -> None:
        text = Text()
        text.append("Weekly review", style="bold")
        since = (time.strftime("%a %d %b", time.localtime(self.since)) if self.since
                 else "the start")
        text.append(f" · {len(self.papers)} added since {since} · ")
        text.append_text(week_text(self.service, now))
        counts: dict[str, int] = {}
        for decision in self.decisions.values():
            counts[decision] = counts.get(decision, 0) + 1
        if counts:
            text.append(" · " + ", ".join(f"{n} {DECISION_STYLE[d][0]}"
                                          for d, n in counts.items()), style="dim")
        self.query_one("#review-head", Static).update(text)

    def selected(self) -> Paper | None:
        if not self.papers:
            return None
        table = self.query_one("#review-table", DataTable)
        return self.papers[min(max(table.cursor_row, 0), len(self.papers) - 1)]

    def _detail(self) -> None:
        detail = self.query_one("#review-detail-text", Static)
        paper = self.selected()
        if paper is None:
            detail.update(Text("Nothing added since the last review. ctrl+s records this "
                               "review anyway.", style="dim italic"))
            return
        detail.update(paper_detail(paper, self.services, self.services.clock.time()))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._detail()

    def _next(self) -> None:
        table = self.query_one("#review-table", DataTable)
        if table.cursor_row + 1 < len(self.papers):
            table.move_cursor(row=table.cursor_row + 1, animate=False)

    def _decided(self, paper: Paper, decision: str) -> None:
        self.decisions[paper.id] = decision
        self.reload()
        self._next()

    def action_decide(self, decision: str) -> None:
        paper = self.selected()
        if paper is None:
            return
        service = self.service
        try:
            if decision == "drop":
                if paper.status != "dropped":
                    service.drop(paper.id)
            elif decision == "raise":
                service.raise_priority(paper.id)
            elif decision == "pick" and paper.status != "reading":
                service.start_reading(paper.id)
        except CapReached as exc:
            body = Text(f"{exc.started} of {exc.cap} papers started this week ({exc.week}). "
                        "Pick ")
            body.append_text(render.safe(paper.label, "bold", 70))
            body.append(" anyway?")

            def answer(yes: bool | None) -> None:
                if yes:
                    try:
                        service.start_reading(paper.id, anyway=True)
                    except PaperError as error:
                        self.notify(str(error), severity="warning", timeout=4)
                        return
                    self._decided(paper, "pick")

            self.app.push_screen(
                ConfirmScreen("Weekly cap reached", body, yes="Pick anyway"), answer)
            return
        except PaperError as exc:
            self.notify(str(exc), severity="warning", timeout=3)
            return
        if decision == "keep" and paper.status == "dropped":
            try:
                service.requeue(paper.id)
            except PaperError:
                pass
        self._decided(paper, decision)

    def action_done(self) -> None:
        counts = {d: 0 for d in DECISION_STYLE}
        for decision in self.decisions.values():
            counts[decision] += 1
        self.service.record_review(kept=counts["keep"], dropped=counts["drop"],
                                   raised=counts["raise"], picked=counts["pick"])
        undecided = len(self.papers) - len(self.decisions)
        message = (f"Review recorded: {counts['keep']} kept, {counts['drop']} dropped, "
                   f"{counts['raise']} raised, {counts['pick']} picked")
        if undecided:
            message += f" ({undecided} left as they were)"
        self.notify(message + ".", timeout=5)
        self.dismiss(None)

    def action_leave(self) -> None:
        self.dismiss(None)
