"""What the board screen shows: the filter (/, esc), which board (b), the archive (A),
and showing one card asked for by another screen (:meth:`BoardViews.select_card`).

:class:`BoardViews` is a base of ``BoardScreen`` (screen.py); the board shown is
remembered in the store (``STATE_KEY``, shared with the workspace pane).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.screen import Screen
from textual.widgets import Input

from nomadlab.core.board import BoardService
from nomadlab.core.board.model import ARCHIVE, matches
from nomadlab.ui import render
from nomadlab.ui.board.cards import BoardColumn
from nomadlab.ui.board.dialogs import BoardPicker
from nomadlab.ui.board.pane import STATE_KEY
from nomadlab.ui.services import Services


class BoardViews(Screen[None]):
    """The filter, the boards and the archive; the screen reloads what they change."""

    services: Services
    service: BoardService | None
    board: str
    query_text: str
    show_archive: bool
    columns: list[BoardColumn]
    col_index: int
    cursor: int | None
    _window: tuple[int, int]
    _pending: int | None

    if TYPE_CHECKING:  # given by the screen that mixes these in
        def reload(self) -> None: ...

        async def rebuild(self) -> None: ...

        def focus_current(self) -> None: ...

        def focus_column(self, index: int, row: int | None = None) -> None: ...

    def select_card(self, card_id: int) -> None:
        """Show this card (its board, the archive, no filter hiding it) under the cursor."""
        service = self.service
        if service is None:
            return
        card = service.card(card_id)
        if card is None:
            self.notify(f"No card #{card_id}", severity="warning")
            return
        self.cursor = card_id
        if self.query_text and not matches(card, self.query_text):
            self._set_filter("")
        if card.column == ARCHIVE:
            self.show_archive = True
        if card.board != self.board:
            self.board = card.board
            self.services.store.set_state(STATE_KEY, self.board, service.clock.time())
        self._pending = card_id
        self.call_later(self.rebuild)

    # ------------------------------------------------------------------ filter, boards

    def action_filter(self) -> None:
        box = self.query_one("#board-filter", Input)
        box.add_class("shown")
        box.can_focus = True
        box.value = self.query_text
        box.focus()

    def _set_filter(self, text: str) -> None:
        self.query_text = text.strip()
        box = self.query_one("#board-filter", Input)
        if not self.query_text and not box.has_focus:
            self._hide_filter(box)

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "board-filter":
            self.query_text = event.value.strip()
            self.reload()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "board-filter":
            self.focus_current()
            if not self.query_text:
                self._hide_filter(event.input)

    def action_clear_filter(self) -> None:
        box = self.query_one("#board-filter", Input)
        if not self.query_text and not box.has_class("shown"):
            return
        box.value = ""
        self.query_text = ""
        self.focus_current()
        self._hide_filter(box)
        self.reload()

    def _hide_filter(self, box: Input) -> None:
        box.remove_class("shown")
        box.can_focus = False

    def action_switch_board(self) -> None:
        service = self.service
        if service is None:
            return
        boards = [(b.name, sum(service.counts(b.name).values())) for b in service.boards()]

        def picked(name: str | None) -> None:
            if name is None or name == self.board:
                return
            self.board = name
            self.cursor = None
            self.col_index = 0
            self._window = (0, 1)
            self.services.store.set_state(STATE_KEY, name, service.clock.time())
            self.call_later(self.rebuild)
            self.notify(f"Board: {render.clean(name)}", timeout=2)

        self.app.push_screen(BoardPicker(boards, self.board), picked)

    async def action_toggle_archive(self) -> None:
        self.show_archive = not self.show_archive
        await self.rebuild()
        if self.show_archive and self.columns:
            self.focus_column(len(self.columns) - 1, 0)
        else:
            self.focus_current()
