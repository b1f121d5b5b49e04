"""The board screen's cursor: which column and card are current, which columns show
(as many as fit, at least 26 cells each, the cursor's among them), and moving it with
keys (h j k l, arrows, g G, page up/down) and clicks.

:class:`BoardCursor` is a base of ``BoardScreen`` (screen.py), which keeps the
columns and loads the cards.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import events
from textual.screen import Screen
from textual.widgets import OptionList

from nomadlab.core.board.model import Card
from nomadlab.ui.board.cards import BoardColumn, BoardColumns, CardList

MIN_COLUMN_WIDTH = 26


class BoardCursor(Screen[None]):
    """The cursor and the window of columns shown."""

    columns: list[BoardColumn]
    col_index: int
    cursor: int | None
    _window: tuple[int, int]
    _shown_count: int

    if TYPE_CHECKING:  # given by the screen that mixes these in
        def reload(self) -> None: ...

        def update_bar(self, shown: int) -> None: ...

        def action_open_card(self) -> None: ...

    def place_window(self) -> None:
        """Show as many columns as fit (26 cells or more each), the cursor's among them."""
        count = len(self.columns)
        if not count:
            return
        width = self.size.width or self.app.size.width
        fit = max(1, min(count, width // MIN_COLUMN_WIDTH))
        start, _ = self._window
        if self.col_index < start:
            start = self.col_index
        elif self.col_index >= start + fit:
            start = self.col_index - fit + 1
        start = max(0, min(start, count - fit))
        self._window = (start, fit)
        for index, column in enumerate(self.columns):
            shown = start <= index < start + fit
            if column.display != shown:
                column.display = shown
            column.set_class(index == start + fit - 1, "last")
            column.set_class(index == self.col_index, "current")
            column.list.set_class(index == self.col_index, "current")

    def on_resize(self, event: events.Resize) -> None:
        self.place_window()
        if self.columns:
            self.reload()

    def current_list(self) -> CardList | None:
        if not self.columns:
            return None
        self.col_index = max(0, min(self.col_index, len(self.columns) - 1))
        return self.columns[self.col_index].list

    def focus_current(self) -> None:
        """The board takes the focus (the cursor's column shows as the current one)."""
        board = self.query_one("#board-columns", BoardColumns)
        if self.focused is not board:
            board.focus()

    def selected(self) -> Card | None:
        cards = self.current_list()
        return cards.highlighted_card() if cards is not None else None

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if isinstance(event.option_list, CardList) and event.option_list is self.current_list():
            card = event.option_list.highlighted_card()
            if card is not None:
                self.cursor = card.id

    def on_card_list_picked(self, event: CardList.Picked) -> None:
        """A click on a card: its column becomes the current one."""
        for index, column in enumerate(self.columns):
            if column.list is event.cards:
                self.col_index = index
                self.place_window()
        self.focus_current()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if isinstance(event.option_list, CardList):
            event.stop()
            card = event.option_list.highlighted_card()
            if card is not None:
                self.cursor = card.id
            self.action_open_card()

    def focus_column(self, index: int, row: int | None = None) -> None:
        """Make column ``index`` the current one (at ``row`` when given)."""
        if not self.columns:
            return
        self.col_index = max(0, min(index, len(self.columns) - 1))
        cards = self.columns[self.col_index].list
        if row is not None and cards.cards:
            cards.highlighted = max(0, min(row, len(cards.cards) - 1))
        card = cards.highlighted_card()
        self.cursor = card.id if card is not None else self.cursor
        self.place_window()
        self.focus_current()
        self.update_bar(self._shown_count)

    def focus_card(self, card_id: int) -> bool:
        for index, column in enumerate(self.columns):
            if column.list.highlight_card(card_id):
                self.cursor = card_id
                self.focus_column(index)
                return True
        return False


    # ------------------------------------------------------------------ actions: cursor

    def action_cursor_column(self, delta: int) -> None:
        cards = self.current_list()
        row = cards.highlighted if cards is not None else 0
        self.focus_column(self.col_index + delta, row if row is not None else 0)

    def action_cursor_card(self, delta: int) -> None:
        cards = self.current_list()
        if cards is None or not cards.cards:
            return
        self.focus_current()
        index = cards.highlighted if cards.highlighted is not None else 0
        cards.highlighted = max(0, min(index + delta, len(cards.cards) - 1))

    def action_cursor_end(self, direction: int) -> None:
        cards = self.current_list()
        if cards is not None and cards.cards:
            cards.highlighted = 0 if direction < 0 else len(cards.cards) - 1
