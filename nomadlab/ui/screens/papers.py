"""Screen 4, papers: the reading queue, this week's count against the cap, a paper's
detail, and keys to add, start, read, drop, annotate, open and export.

Titles, abstracts and notes are shown as the text they are (``$\\sigma$`` and
``[bold]`` included): rich ``Text`` everywhere, never markup. Papers whose metadata is
pending are retried when the screen opens (and by the service's own loop).
"""

from __future__ import annotations

import os
import sys
import threading
import time
import webbrowser
from collections.abc import Callable

from rich.text import Text
from textual import events
from textual.app import ComposeResult, SuspendNotSupported
from textual.binding import Binding
from textual.containers import Container, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Input, Static

from nomadlab.core import papers as core
from nomadlab.core.durations import compact
from nomadlab.core.papers import CapReached, FillReport, Paper, PaperError, PaperService
from nomadlab.core.papers.ids import IdError, classify_many
from nomadlab.ui import render
from nomadlab.ui.confirm import ConfirmScreen
from nomadlab.ui.editor import run_editor
from nomadlab.ui.screens.papers_dialogs import AddPaper, EditLine, EditNotes, Takeaway
from nomadlab.ui.services import Services
from nomadlab.ui.store_watch import watch_store
from nomadlab.ui.widgets.statusbar import StatusBar

VIEWS: dict[str, tuple[str, ...] | None] = {
    "active": ("queued", "reading"),
    "queued": ("queued",),
    "reading": ("reading",),
    "read": ("read",),
    "dropped": ("dropped",),
    "all": None,
}
STATUS_GLYPH = {"queued": ("·", "dim"), "reading": ("▶", "bold green"), "read": ("✓", "cyan"),
                "dropped": ("✗", "red")}
STACK_BELOW = 120  # columns: below this the detail goes under the list
CLIPBOARD_LIMIT = 64 * 1024  # OSC 52 payloads much larger than this are often refused


def day(t: float | None) -> str:
    return time.strftime("%a %d %b %Y", time.localtime(t)) if t else ""


def cap_dots(started: int, cap: int) -> Text:
    """●●○ for 2 of 3; past the cap the extra ones are red."""
    text = Text()
    for index in range(max(started, cap)):
        if index < min(started, cap):
            text.append("●", style="green")
        elif index < cap:
            text.append("○", style="dim")
        else:
            text.append("●", style="bold red")
    return text


def week_text(service: PaperService, now: float) -> Text:
    """'2026-W47 ●○ 1/2 started this week' (+ review due)."""
    week = service.week(now)
    started, cap = service.week_count(now)
    text = Text()
    text.append(f"{week.label} ", style="bold")
    text.append_text(cap_dots(started, cap))
    style = "bold red" if started > cap else ("yellow" if started == cap else "")
    text.append(f" {started}/{cap} started this week", style=style)
    if started > cap:
        text.append(" · past the cap", style="bold red")
    return text


def paper_detail(paper: Paper, services: Services, now: float) -> Text:
    """Everything about a paper, as text (nothing in it is parsed as markup)."""
    text = Text(no_wrap=False, overflow="fold")
    text.append(render.clean(paper.label), style="bold")
    text.append("\n")
    if paper.authors:
        text.append(render.clean(", ".join(paper.authors)) + "\n", style="italic")
    bits = [str(paper.year) if paper.year else "", paper.venue or "", paper.ident]
    line = " · ".join(render.clean(b) for b in bits if b)
    if line:
        text.append(line + "\n", style="dim")
    if paper.categories or paper.tags:
        text.append(render.clean(" ".join(paper.categories)), style="cyan")
        if paper.tags:
            text.append(" " if paper.categories else "")
            text.append(render.clean(" ".join(f"#{t}" for t in paper.tags)), style="magenta")
        text.append("\n")
    glyph, style = STATUS_GLYPH.get(paper.status, ("?", ""))
    text.append(f"{glyph} {paper.status}", style=style)
    if paper.status == "reading" and paper.started:
        text.append(f" since {day(paper.started)}")
    elif paper.status in ("read", "dropped") and paper.finished:
        text.append(f" {day(paper.finished)}")
    if paper.over_cap:
        text.append(" · started past the weekly cap", style="bold red")
    text.append(f" · priority {paper.priority:+d}" if paper.priority else " · priority 0")
    if paper.rating:
        text.append(" · " + "★" * paper.rating + "☆" * (5 - paper.rating), style="yellow")
    text.append(f" · added {day(paper.added)}\n", style="dim")
    if paper.metadata == "pending":
        text.append("metadata pending", style="bold yellow")
        if paper.metadata_error:
            text.append(": " + render.clean(paper.metadata_error, 120))
        if paper.next_attempt:
            text.append(f" (next try in {compact(paper.next_attempt - now, parts=1)})", style="dim")
        text.append("\n")
    elif paper.metadata in ("missing", "invalid"):
        text.append(render.clean(paper.metadata_error or paper.metadata, 160) + "\n",
                    style="bold red")
    if paper.takeaway:
        text.append("takeaway: ", style="bold")
        text.append(render.clean(paper.takeaway) + "\n")
    board = services.board
    for card in paper.cards:
        title = None
        if board is not None:
            try:
                title = board.card_title(card)
            except Exception:  # another feature's store: show the id rather than fail
                title = None
        text.append(f"card #{card}", style="bold")
        text.append((": " + render.clean(title, 60)) if title else "")
        text.append("\n")
    if paper.card_wanted:
        text.append("a Hypothesis card waits for the board\n", style="dim italic")
    url = paper.open_url
    if url:
        text.append(render.clean(url) + "\n", style="underline dim")
    if paper.abstract:
        text.append("\nAbstract\n", style="bold")
        text.append(_block(paper.abstract))
        text.append("\n")
    if paper.notes.strip():
        text.append("\nNotes\n", style="bold")
        text.append(_block(paper.notes))
    return text


def _block(value: str) -> str:
    """Multi-line untrusted text: control characters out, line breaks kept."""
    return "\n".join(render.clean(line) for line in value.splitlines())


class PapersScreen(Screen[None]):
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

    # ------------------------------------------------------------------ actions

    def _need(self) -> tuple[PaperService, Paper] | None:
        service, paper = self.service, self.selected()
        if service is None or paper is None:
            self.notify("No paper selected.", severity="warning", timeout=2)
            return None
        return service, paper

    def _add_text(self, text: str) -> str | None:
        service = self.service
        if service is None:
            return "the papers service is not available"
        try:
            sources = classify_many(text)
            added = []
            for source in sources:
                added += service.add_source(source)
        except (IdError, PaperError) as exc:
            return str(exc)
        if not added:
            return "nothing added"
        first = added[0]
        self.reload()
        self.select_paper(first.paper.id)
        if len(added) == 1:
            verb = "Added" if first.created else "Already in the queue:"
            self.notify(f"{verb} #{first.paper.id} {render.clean(first.paper.label, 80)}",
                        timeout=4)
        else:
            new = sum(1 for a in added if a.created)
            self.notify(f"{new} papers added, {len(added) - new} already in the queue.",
                        timeout=4)
        self.retry_pending(ids=[a.paper.id for a in added], loud=True)
        return None

    def action_add(self) -> None:
        self.app.push_screen(AddPaper(self._add_text))

    def action_start(self) -> None:
        need = self._need()
        if need is None:
            return
        service, paper = need
        try:
            started = service.start_reading(paper.id)
        except CapReached as exc:
            body = Text()
            body.append(f"{exc.started} of {exc.cap} papers started this week ({exc.week}).\n")
            body.append("Better two understood than twenty skimmed. Start ")
            body.append_text(render.safe(paper.label, "bold", 70))
            body.append(" anyway?")

            def answer(yes: bool | None) -> None:
                if yes:
                    try:
                        done = service.start_reading(paper.id, anyway=True)
                    except PaperError as error:
                        self.notify(str(error), severity="warning", timeout=4)
                        return
                    self.notify(f"Reading #{done.id}: past the weekly cap.", severity="warning",
                                timeout=4)

            self.app.push_screen(
                ConfirmScreen("Weekly cap reached", body, yes="Start anyway"), answer)
            return
        except PaperError as exc:
            self.notify(str(exc), severity="warning", timeout=3)
            return
        count, cap = service.week_count()
        self.notify(f"Reading #{started.id} ({count}/{cap} this week).", timeout=3)

    def action_read(self) -> None:
        need = self._need()
        if need is None:
            return
        service, paper = need
        if paper.status == "read":
            self.notify(f"#{paper.id} is read already.", severity="warning", timeout=3)
            return

        def done(result: tuple[str, int | None] | None) -> None:
            if result is None:
                return
            takeaway, rating = result
            try:
                service.mark_read(paper.id, takeaway, rating=rating)
            except PaperError as exc:
                self.notify(str(exc), severity="warning", timeout=4)
                return
            self.notify(f"Read #{paper.id}. Takeaway kept.", timeout=3)

        self.app.push_screen(Takeaway(paper.label, paper.takeaway or ""), done)

    def action_drop(self) -> None:
        need = self._need()
        if need is None:
            return
        service, paper = need
        try:
            service.drop(paper.id)
        except PaperError as exc:
            self.notify(str(exc), severity="warning", timeout=3)
            return
        self.notify(f"Dropped #{paper.id} (u puts it back in the queue).", timeout=3)

    def action_requeue(self) -> None:
        need = self._need()
        if need is None:
            return
        service, paper = need
        try:
            service.requeue(paper.id)
        except PaperError as exc:
            self.notify(str(exc), severity="warning", timeout=3)
            return
        self.notify(f"#{paper.id} is back in the queue.", timeout=3)

    def action_notes(self) -> None:
        need = self._need()
        if need is None:
            return
        service, paper = need

        def done(notes: str | None) -> None:
            if notes is not None:
                service.set_notes(paper.id, notes)

        self.app.push_screen(EditNotes(paper.label, paper.notes), done)

    def action_notes_editor(self) -> None:
        need = self._need()
        if need is None:
            return
        service, paper = need
        try:
            notes = run_editor(self.app, paper.notes, self.services.config.board.editor)
        except SuspendNotSupported:  # no terminal to hand over: the in-app text field
            self.action_notes()
            return
        self.refresh()
        if notes is not None and notes != paper.notes:
            service.set_notes(paper.id, notes)

    def _open(self, url: str | None) -> None:
        if not url:
            self.notify("This paper has no link yet.", severity="warning", timeout=3)
            return
        if core.open_method(os.environ, sys.platform) == "browser":
            threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
            self.notify(f"Opening {render.clean(url)}", timeout=3)
        else:
            self.app.copy_to_clipboard(url)
            self.notify(f"{render.clean(url)}\n(copied to the clipboard with OSC 52)",
                        title="Link", timeout=10)

    def action_open(self) -> None:
        need = self._need()
        if need is not None:
            self._open(need[1].open_url)

    def action_open_pdf(self) -> None:
        need = self._need()
        if need is not None:
            self._open(need[1].pdf)

    def _flush_cards(self) -> None:
        service = self.service
        if service is None:
            return
        try:
            made = service.flush_card_wishes(self.services.board)
        except Exception as exc:  # the board is another feature: say what it said
            self.notify(f"The board refused the waiting cards: {render.clean(str(exc), 160)}",
                        severity="error", timeout=8)
            return
        if made:
            self.notify(f"{len(made)} Hypothesis cards that waited for the board were made.",
                        timeout=4)

    def action_card(self) -> None:
        need = self._need()
        if need is None:
            return
        service, paper = need
        board = self.services.board
        if board is not None:
            for card in paper.cards:
                try:
                    title = board.card_title(card)
                except Exception:
                    title = None
                if title is not None:
                    self.notify(f"#{paper.id} already has card #{card}: "
                                f"{render.clean(title, 60)}", timeout=4)
                    return
        try:
            card_id = service.link_card(paper.id, board)
        except PaperError as exc:
            self.notify(str(exc), severity="warning", timeout=4)
            return
        except Exception as exc:  # the board is another feature: say what it said
            self.notify(f"The board refused the card: {render.clean(str(exc), 160)}",
                        severity="error", timeout=8)
            return
        if card_id is None:
            self.notify("There is no board yet: the Hypothesis card will be made when there "
                        "is one.", timeout=5)
        else:
            self.notify(f"Hypothesis card #{card_id} made for #{paper.id}.", timeout=4)

    def action_priority(self, step: int) -> None:
        need = self._need()
        if need is not None:
            need[0].raise_priority(need[1].id, step)

    def action_tags(self) -> None:
        need = self._need()
        if need is None:
            return
        service, paper = need

        def done(value: str | None) -> None:
            if value is not None:
                service.set_tags(paper.id, core.parse_tags(value))

        self.app.push_screen(EditLine(f"Tags of #{paper.id}", " ".join(paper.tags),
                                      "words separated by spaces or commas"), done)

    def action_mark(self) -> None:
        paper = self.selected()
        if paper is None:
            return
        self.marked ^= {paper.id}
        row = self.table.cursor_row
        self.reload()
        if row + 1 < len(self.shown):
            self.table.move_cursor(row=row + 1, animate=False)

    def action_export(self, kind: str) -> None:
        service = self.service
        if service is None:
            return
        chosen = [p for p in self.shown if p.id in self.marked] or list(self.shown)
        if not chosen:
            self.notify("Nothing to export here.", severity="warning", timeout=3)
            return
        if kind == "bibtex":
            text, suffix = service.export_bibtex(chosen), "bib"
        else:
            text, suffix = service.export_markdown(chosen), "md"
        try:
            path = service.write_export(text, suffix)
        except OSError as exc:
            self.notify(f"Cannot write the export: {exc}", severity="error", timeout=6)
            return
        copied = len(text.encode()) <= CLIPBOARD_LIMIT
        if copied:
            self.app.copy_to_clipboard(text)
        self.notify(f"{len(chosen)} papers exported to {render.clean(str(path))}"
                    + (" and copied to the clipboard" if copied else ""), timeout=6)

    def action_review(self) -> None:
        from nomadlab.ui.screens.papers_review import PaperReviewScreen

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

    def action_refetch(self) -> None:
        need = self._need()
        if need is None:
            return
        service, paper = need
        try:
            service.retry(paper.id)
        except PaperError as exc:
            self.notify(str(exc), severity="warning", timeout=3)
            return
        self.retry_pending(ids=[paper.id], loud=True)
