"""The board screen's keys that change cards: move, reorder, new, edit, open, delete,
archive, undo and redo, priority, copy as Markdown, open the card's log.

:class:`CardActions` is the base of ``BoardScreen`` (screen.py), which keeps the
columns, the cursor, the filter and the boards. Every change goes through the
``BoardService``; the screen then reloads and puts the cursor on the card.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from rich.text import Text
from textual.screen import Screen

from nomadlab.core.board import BoardService
from nomadlab.core.board.model import ARCHIVE, BoardError, Card, value_diff
from nomadlab.ui import render
from nomadlab.ui.board.cards import CardList
from nomadlab.ui.board.detail import CardDetail
from nomadlab.ui.board.dialogs import CardForm, CardFormResult, form_fields
from nomadlab.ui.confirm import ConfirmScreen
from nomadlab.ui.navigate import navigator
from nomadlab.ui.services import Services


class CardActions(Screen[None]):
    """The actions; the screen gives them the selected card and reloads the columns."""

    services: Services
    service: BoardService | None
    board: str
    column_names: list[str]
    col_index: int
    cursor: int | None
    show_archive: bool

    if TYPE_CHECKING:  # given by the screen that mixes these in
        def selected(self) -> Card | None: ...

        def current_list(self) -> CardList | None: ...

        def focus_card(self, card_id: int) -> bool: ...

        def reload(self) -> None: ...

    def _after(self, card_id: int | None) -> None:
        if card_id is not None:
            self.cursor = card_id
        self.reload()
        if card_id is not None:
            self.focus_card(card_id)

    def _guard(self) -> tuple[BoardService, Card] | None:
        service = self.service
        card = self.selected()
        if service is None or card is None:
            return None
        return service, card

    def action_move_card(self, delta: int) -> None:
        picked = self._guard()
        if picked is None:
            return
        service, card = picked
        if card.column == ARCHIVE:
            self.notify("Archived: press a to restore it first", timeout=3)
            return
        try:
            target = service.step(card.id, delta)
        except (BoardError, sqlite3.Error) as exc:
            self.notify(str(exc), severity="warning")
            self.reload()
            return
        self._after(card.id)
        if target is None:
            return
        limit = service.wip(self.board).get(target)
        count = service.counts(self.board).get(target, 0)
        if limit is not None and count > limit:
            self.notify(f"{target} is over its WIP limit ({count}/{limit})",
                        severity="warning", timeout=4)

    def action_reorder(self, delta: int) -> None:
        picked = self._guard()
        if picked is None:
            return
        service, card = picked
        cards = self.current_list()
        among = [c.id for c in cards.cards] if cards is not None else None
        try:
            service.reorder(card.id, delta, among=among)
        except (BoardError, sqlite3.Error) as exc:
            self.notify(str(exc), severity="warning")
        self._after(card.id)

    def action_new_card(self) -> None:
        service = self.service
        if service is None:
            return
        names = service.columns(self.board)
        column = self.column_names[self.col_index] if self.column_names else names[0]
        if column not in names:
            column = names[0]

        def created(result: CardFormResult | None) -> None:
            if result is None:
                return
            f = result.fields
            try:
                new_id = service.add_card(
                    f["title"], column=column, board=self.board, links=f["links"],
                    tags=f["tags"], params=result.params, metrics=result.metrics,
                    priority=f["priority"], hypothesis=f["hypothesis"], notes=f["notes"],
                    origin="tui")
            except (BoardError, sqlite3.Error) as exc:
                self.notify(str(exc), severity="error")
                return
            self._after(new_id)

        self.app.push_screen(CardForm(None, column, editor=service.config.board.editor),
                             created)

    def action_edit_card(self) -> None:
        picked = self._guard()
        if picked is None:
            return
        service, card = picked
        self.edit(service, card)

    def edit(self, service: BoardService, card: Card) -> None:
        original = form_fields(card)

        def edited(result: CardFormResult | None) -> None:
            if result is None:
                return
            try:
                service.edit(card.id, result.fields, original=original,
                             params=value_diff(card.params, result.params),
                             metrics=value_diff(card.metrics, result.metrics))
            except (BoardError, sqlite3.Error) as exc:
                self.notify(str(exc), severity="error")
            self._after(card.id)

        self.app.push_screen(CardForm(card, card.column, editor=service.config.board.editor),
                             edited)

    def action_open_card(self) -> None:
        picked = self._guard()
        if picked is None:
            return
        service, card = picked

        def closed(choice: str | None) -> None:
            fresh = service.card(card.id)
            if fresh is None:
                self.reload()
                return
            if choice == "edit":
                self.edit(service, fresh)
            elif choice == "log":
                self.open_log(service, fresh)
            self._after(card.id)

        self.app.push_screen(CardDetail(service, card.id), closed)

    def action_delete_card(self) -> None:
        picked = self._guard()
        if picked is None:
            return
        service, card = picked
        question = Text("Delete card ")
        question.append(f"#{card.id} ", style="bold")
        question.append_text(render.safe(card.title, "bold", 80))
        question.append("?\n")
        question.append("u undoes it; deleted cards are purged after 30 days.", style="dim")

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            try:
                service.delete(card.id)
            except (BoardError, sqlite3.Error) as exc:
                self.notify(str(exc), severity="warning")
            else:
                self.notify(f"Deleted #{card.id} (u undoes)", timeout=3)
            self._after(None)

        self.app.push_screen(ConfirmScreen("Delete card", question, yes="Delete"), answered)

    def action_archive_card(self) -> None:
        picked = self._guard()
        if picked is None:
            return
        service, card = picked
        try:
            if card.column == ARCHIVE:
                target = service.restore(card.id)
                self.notify(f"Restored #{card.id} to {target}", timeout=3)
                self._after(card.id)
            else:
                service.archive(card.id)
                self.notify(f"Archived #{card.id} (A shows the archive, u undoes)", timeout=3)
                self._after(None)
        except (BoardError, sqlite3.Error) as exc:
            self.notify(str(exc), severity="warning")
            self.reload()

    def _travel(self, undo: bool) -> None:
        service = self.service
        if service is None:
            return
        try:
            result = service.undo(self.board) if undo else service.redo(self.board)
        except sqlite3.Error as exc:
            self.notify(f"Not {'undone' if undo else 'redone'}: {exc}", severity="error")
            return
        if result is None:
            self.notify("Nothing to undo" if undo else "Nothing to redo", timeout=2)
            return
        message = f"{'Undid' if undo else 'Redid'}: {result.label}"
        if result.skipped:
            message += (f" ({result.skipped} field{'s' if result.skipped != 1 else ''} changed "
                        "elsewhere since, left as they are)")
        self.notify(message, timeout=3)
        card = service.card(result.card) if result.card is not None else None
        if card is not None and card.board == self.board:
            if card.column == ARCHIVE and not self.show_archive:
                self._after(None)
                return
            self._after(card.id)
        else:
            self._after(None)

    def action_undo(self) -> None:
        self._travel(True)

    def action_redo(self) -> None:
        self._travel(False)

    def action_cycle_priority(self) -> None:
        picked = self._guard()
        if picked is None:
            return
        service, card = picked
        try:
            service.cycle_priority(card.id)
        except (BoardError, sqlite3.Error) as exc:
            self.notify(str(exc), severity="warning")
        self._after(card.id)

    def action_copy_card(self) -> None:
        picked = self._guard()
        if picked is None:
            return
        service, card = picked
        try:
            self.app.copy_to_clipboard(service.markdown(card.id))
        except (BoardError, sqlite3.Error) as exc:
            self.notify(str(exc), severity="warning")
            return
        self.notify(f"Copied card #{card.id} as Markdown", title="Clipboard", timeout=3)

    def action_open_log(self) -> None:
        picked = self._guard()
        if picked is None:
            return
        service, card = picked
        self.open_log(service, card)

    def open_log(self, service: BoardService, card: Card) -> None:
        name = service.log_name(card)
        logs = self.services.logs
        if name is None:
            self.notify(f"Card #{card.id} has no log link (e edits its links)", timeout=3)
            return
        if logs is None or name not in logs.tails:
            host, sep, path = name.partition(":")
            if logs is not None and sep:
                try:
                    name = logs.open_adhoc(host, path)
                except (KeyError, ValueError) as exc:
                    self.notify(render.clean(str(exc)), severity="warning")
                    return
            else:
                self.notify(f"The log {render.clean(name)} is not followed", severity="warning")
                return
        nav = navigator(self.app)
        if nav is not None:
            self.app.call_later(nav.open_log, name)
