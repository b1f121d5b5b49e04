"""The papers screen's keys that act on papers: add, start (against the weekly cap),
read with a takeaway, drop, requeue, notes, open, Hypothesis card, priority, tags,
export and fetch again.

:class:`PaperActions` is the base of ``PapersScreen`` (screen.py), which keeps the
queue's table, the detail, the filter and the metadata refresh.
"""

from __future__ import annotations

import os
import sys
import webbrowser
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import SuspendNotSupported
from textual.screen import Screen

from nomadlab.core import papers as core
from nomadlab.core.papers import CapReached, Paper, PaperError, PaperService
from nomadlab.core.papers.ids import IdError, classify_many
from nomadlab.ui import render
from nomadlab.ui.confirm import ConfirmScreen
from nomadlab.ui.editor import run_editor
from nomadlab.ui.papers.dialogs import AddPaper, EditLine, EditNotes, Takeaway
from nomadlab.ui.services import Services

CLIPBOARD_LIMIT = 64 * 1024  # OSC 52 payloads much larger than this are often refused


class PaperActions(Screen[None]):
    """The actions; the screen gives them the selected paper and reloads the queue."""

    services: Services
    service: PaperService | None
    marked: set[int]
    shown: list[Paper]

    if TYPE_CHECKING:  # given by the screen that mixes these in
        def selected(self) -> Paper | None: ...

        def select_paper(self, paper_id: int) -> None: ...

        def reload(self) -> None: ...

        def retry_pending(self, *, force: bool = False, ids: list[int] | None = None,
                          loud: bool = False) -> None: ...

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

    @work(thread=True, exit_on_error=False, group="browser")
    def _browse(self, url: str) -> None:
        """The browser in a worker thread: webbrowser.open may wait for it to start."""
        webbrowser.open(url)

    def _open(self, url: str | None) -> None:
        if not url:
            self.notify("This paper has no link yet.", severity="warning", timeout=3)
            return
        if core.open_method(os.environ, sys.platform) == "browser":
            self._browse(url)
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
