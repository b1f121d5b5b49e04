"""Screen 4, papers: the reading queue, this week's count against the cap, a paper's
detail, the filter and the views. The keys that act on papers (add, start, read, drop,
annotate, open, export) are its base class's, in actions.py; the text of a paper and
of the week is in text.py.

Titles, abstracts and notes are shown as the text they are (``$\\sigma$`` and
``[bold]`` included): rich ``Text`` everywhere, never markup. Papers whose metadata is
pending are retried when the screen opens (and by the service's own loop).
"""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, VerticalScroll
from textual.widgets import DataTable, Footer, Input, Static

from nomadlab.core.durations import compact
from nomadlab.core.papers import FillReport, Paper, PaperService
from nomadlab.ui import render
from nomadlab.ui.papers.actions import PaperActions
from nomadlab.ui.papers.text import STATUS_GLYPH, paper_detail, week_text
from nomadlab.ui.services import Services
from nomadlab.ui.statusbar import StatusBar
from nomadlab.ui.store_watch import watch_store

VIEWS: dict[str, tuple[str, ...] | None] = {
    "active": ("queued", "reading"),
    "queued": ("queued",),
    "reading": ("reading",),
    "read": ("read",),
    "dropped": ("dropped",),
    "all": None,
}
STACK_BELOW = 120  # columns: below this the detail goes under the list


class PapersScreen(PaperActions):
    TITLE = "Papers"
    DEFAULT_CSS = """
    PapersScreen #papers-week { height: 1; padding: 0 1; }
    PapersScreen #papers-main { height: 1fr; layout: horizontal; }
    PapersScreen #papers-main.stacked { layout: vertical; }
    PapersScreen #papers-table {
        width: 3fr; height: 1fr; border: round $panel-lighten-2;
    }
    PapersScreen #papers-table:focus { border: round $accent; }
    PapersScreen #papers-detail {
        width: 2fr; height: 1fr; border: round $panel-lighten-2; padding: 0 1;
    }
    PapersScreen #papers-main.stacked #papers-table { width: 1fr; height: 3fr; }
    PapersScreen #papers-main.stacked #papers-detail { width: 1fr; height: 2fr; }
    PapersScreen #papers-filter { margin: 0 1; }
    """
    BINDINGS = [
        Binding("a", "add", "Add"),
        Binding("s", "start", "Start"),
        Binding("r", "read", "Read"),
        Binding("d", "drop", "Drop"),
        Binding("e", "notes", "Notes"),
        Binding("E", "notes_editor", "Notes in $EDITOR", show=False),
        Binding("o", "open", "Open"),
        Binding("O", "open_pdf", "Open PDF", show=False),
        Binding("c", "card", "Hypothesis card"),
        Binding("w", "review", "Weekly review"),
        Binding("f", "cycle_view", "Status"),
        Binding("slash", "filter", "Filter"),
        Binding("t", "tags", "Tags", show=False),
        Binding("plus,equals_sign", "priority(1)", "Priority up", show=False),
        Binding("minus", "priority(-1)", "Priority down", show=False),
        Binding("space", "mark", "Mark", show=False),
        Binding("x", "export('bibtex')", "Export BibTeX", show=False),
        Binding("M", "export('markdown')", "Export Markdown", show=False),
        Binding("u", "requeue", "Back to queue", show=False),
        Binding("R", "refetch", "Fetch metadata again", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services
        self.service: PaperService | None = services.papers
        self.view = "active"
        self.query_text = ""
        self.marked: set[int] = set()
        self.shown: list[Paper] = []
        self._week = ""  # the week shown: a new one starts at the configured day
        self._unsubscribe: Callable[[], None] | None = None
        self._pending_reload = False

    def compose(self) -> ComposeResult:
        yield StatusBar(self.services, "Papers")
        yield Static("", id="papers-week", markup=False)
        yield Input(placeholder="filter: words, #tag, status:read", id="papers-filter",
                    classes="hidden")
        with Container(id="papers-main"):
            table: DataTable[Text] = DataTable(cursor_type="row", id="papers-table")
            yield table
            with VerticalScroll(id="papers-detail"):
                yield Static("", id="papers-detail-text", markup=False)
        yield Footer()

    @property
    def table(self) -> DataTable[Text]:
        return self.query_one("#papers-table", DataTable)

    def on_mount(self) -> None:
        self._arrange(self.app.size.width)
        table = self.table
        table.border_title = "Queue"
        self.query_one("#papers-detail", VerticalScroll).border_title = "Paper"
        service = self.service
        if service is not None:
            self._unsubscribe = service.subscribe(self._poke)
            if self.services.board is not None and service.card_wishes():
                self._flush_cards()
        self.reload()
        table.focus()
        watch_store(self, self.services.store, self._store_changed, "papers")
        self.set_interval(60.0, self._new_week)
        self.retry_pending(force=True)
        # The status bar lays its line out to its width: again once it has one.
        self.call_after_refresh(self.query_one(StatusBar).update_text)

    def on_unmount(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()

    def on_screen_resume(self) -> None:
        self.reload()

    def on_resize(self, event: events.Resize) -> None:
        if self._arrange(event.size.width):
            self.reload()

    def _arrange(self, width: int) -> bool:
        main = self.query_one("#papers-main", Container)
        stacked = width < STACK_BELOW
        if stacked == main.has_class("stacked"):
            return False
        main.set_class(stacked, "stacked")
        return True

    # ------------------------------------------------------------------ data

    def _poke(self) -> None:
        if not self._pending_reload:
            self._pending_reload = True
            self.call_later(self.reload)

    def _store_changed(self) -> None:
        if self.is_current:  # else on_screen_resume reloads
            self._poke()

    def _new_week(self) -> None:
        service = self.service
        if service is None or not self.is_current:
            return
        if service.week(self.services.clock.time()).label != self._week:
            self.reload()

    def _title_width(self) -> int:
        width = self.app.size.width
        stacked = width < STACK_BELOW
        table_width = width if stacked else width * 3 // 5
        # borders 2, the other columns 1+1+2+18+4+3, cell padding 2 per column (7)
        return max(16, table_width - 2 - 29 - 14 - 1)

    def reload(self) -> None:
        self._pending_reload = False
        service = self.service
        if service is None:
            self.query_one("#papers-week", Static).update(
                Text("The papers service is not available.", style="bold red"))
            return
        now = self.services.clock.time()
        self._week = service.week(now).label
        table = self.table
        current = self.selected()
        self.shown = service.papers(status=VIEWS[self.view], query=self.query_text or None)
        self.marked &= {p.id for p in service.papers()}
        title_width = self._title_width()
        with self.app.batch_update():
            table.clear(columns=True)
            table.add_column(" ", key="mark", width=1)
            table.add_column(" ", key="status", width=1)
            table.add_column("P", key="priority", width=2)
            table.add_column("Title", key="title", width=title_width)
            table.add_column("Authors", key="authors", width=18)
            table.add_column("Year", key="year", width=4)
            table.add_column("Age", key="age", width=3)
            for paper in self.shown:
                glyph, style = STATUS_GLYPH.get(paper.status, ("?", ""))
                if paper.over_cap and paper.status == "reading":
                    style = "bold red"  # started past the weekly cap
                title_style = "bold" if paper.status == "reading" else ""
                if paper.status in ("read", "dropped"):
                    title_style = "dim"
                if paper.metadata == "pending":
                    title_style = "italic yellow"
                elif paper.metadata in ("missing", "invalid"):
                    title_style = "red"
                title = render.safe(paper.label, title_style, title_width)
                table.add_row(
                    Text("●" if paper.id in self.marked else " ", style="bold magenta"),
                    Text(glyph, style=style),
                    Text(f"{paper.priority:+d}" if paper.priority else "",
                         style="bold" if paper.priority > 0 else "dim"),
                    title,
                    render.safe(paper.short_authors(1), "", 18),
                    Text(str(paper.year or ""), style="dim"),
                    Text(compact(now - paper.added, parts=1), style="dim"),
                    key=str(paper.id),
                )
        if current is not None:
            index = next((i for i, p in enumerate(self.shown) if p.id == current.id), None)
            if index is not None:
                table.move_cursor(row=index, animate=False)
        self._header(now)
        self._detail()

    def _header(self, now: float) -> None:
        service = self.service
        if service is None:
            return
        text = week_text(service, now)
        counts = {s: 0 for s in ("queued", "reading")}
        for paper in service.papers(status=("queued", "reading")):
            counts[paper.status] += 1
        text.append(f" · {counts['reading']} reading · {counts['queued']} queued", style="dim")
        if service.review_due(now):
            text.append(" · weekly review due (w)", style="bold magenta")
        self.query_one("#papers-week", Static).update(text)
        bits = [f"{self.view} ({len(self.shown)})"]
        if self.query_text:
            bits.append(f"filter: {render.clean(self.query_text, 30)}")
        if self.marked:
            bits.append(f"{len(self.marked)} marked")
        self.table.border_subtitle = " · ".join(bits)

    def selected(self) -> Paper | None:
        if not self.shown:
            return None
        table = self.table
        row = min(max(table.cursor_row, 0), len(self.shown) - 1)
        return self.shown[row]

    def select_paper(self, paper_id: int) -> None:
        for index, paper in enumerate(self.shown):
            if paper.id == paper_id:
                self.table.move_cursor(row=index, animate=False)
                return

    def _detail(self) -> None:
        detail = self.query_one("#papers-detail-text", Static)
        paper = self.selected()
        if paper is None:
            message = ("No papers here. a: add one by arXiv id or URL, DOI, BibTeX file or "
                       "title; f: show another status.")
            detail.update(Text(message, style="dim italic"))
            return
        service = self.service
        fresh = service.get(paper.id) if service is not None else None
        detail.update(paper_detail(fresh or paper, self.services, self.services.clock.time()))

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._detail()

    # ------------------------------------------------------------------ metadata

    def retry_pending(self, *, force: bool = False, ids: list[int] | None = None,
                      loud: bool = False) -> None:
        service = self.service
        if service is None or not service.due_lookups(force=force, ids=ids):
            return
        self.run_worker(self._refresh(force, ids, loud), group="papers-refresh")

    async def _refresh(self, force: bool, ids: list[int] | None, loud: bool) -> None:
        service = self.service
        if service is None:
            return
        budget = service.settings.timeout * 2 + service.settings.arxiv_interval
        report = await service.refresh_async(force=force, ids=ids, budget=budget)
        self._announce(report, loud)

    def _announce(self, report: FillReport, loud: bool) -> None:
        if report.filled:
            names = ", ".join(render.clean(p.label, 50) for p in report.filled[:3])
            more = f" and {len(report.filled) - 3} more" if len(report.filled) > 3 else ""
            self.notify(f"Metadata filled in: {names}{more}", timeout=4)
        for paper in [*report.missing, *report.invalid]:
            self.notify(render.clean(paper.metadata_error or "not found", 200),
                        title=f"#{paper.id}", severity="error", timeout=8)
        if loud and report.failed:
            paper, why = report.failed[0]
            self.notify(f"Still pending: {render.clean(why, 160)}. It is tried again later.",
                        severity="warning", timeout=6)

    # ------------------------------------------------------------------ the list

    def action_mark(self) -> None:
        paper = self.selected()
        if paper is None:
            return
        self.marked ^= {paper.id}
        row = self.table.cursor_row
        self.reload()
        if row + 1 < len(self.shown):
            self.table.move_cursor(row=row + 1, animate=False)

    def action_review(self) -> None:
        from nomadlab.ui.papers.review import PaperReviewScreen

        if self.service is not None:
            self.app.push_screen(PaperReviewScreen(self.services))

    def action_cycle_view(self) -> None:
        names = list(VIEWS)
        self.view = names[(names.index(self.view) + 1) % len(names)]
        self.reload()

    def action_filter(self) -> None:
        box = self.query_one("#papers-filter", Input)
        box.remove_class("hidden")
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "papers-filter":
            self.query_text = event.value
            self.reload()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "papers-filter":
            if not event.value:
                event.input.add_class("hidden")
            self.table.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#papers-filter", Input)
        if box.value or not box.has_class("hidden"):
            box.value = ""
            box.add_class("hidden")
            self.query_text = ""
            self.reload()
            self.table.focus()
