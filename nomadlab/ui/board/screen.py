"""Screen 3, the board: the model-lifecycle Kanban, with cards that know their runs.

Columns side by side (as many as fit, at least 26 cells each: at 80 columns three
show and the view follows the cursor); each card shows its title, tags, metrics,
its run's live state (GPU utilization of its process, last log line, time running)
and whether the run failed. Keys are vim-like (see BINDINGS, ``?`` lists them); those
that change cards are its base class's, in actions.py.

Other writers (another TUI, ``nomadlab board ...``, run alerts) are seen within a
second: the screen hears the store's change broadcast (nomadlab.ui.store_watch) and
reloads when :meth:`BoardService.change_token` (SQLite's data_version plus this
process's own writes) moved. Every
change goes through the service, which rereads the card inside its transaction.
"""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Input, OptionList, Static

from nomadlab.core.board import BoardService
from nomadlab.core.board.model import (
    ARCHIVE,
    Card,
    LiveState,
    matches,
)
from nomadlab.core.durations import compact
from nomadlab.ui import render
from nomadlab.ui.board.actions import CardActions
from nomadlab.ui.board.cards import (
    BoardColumn,
    BoardColumns,
    CardList,
    Line,
    card_text,
    header_text,
)
from nomadlab.ui.board.dialogs import (
    BoardPicker,
)
from nomadlab.ui.footer import Footer
from nomadlab.ui.services import Services
from nomadlab.ui.statusbar import StatusBar
from nomadlab.ui.store_watch import watch_store

STATE_KEY = "board.current"
MIN_COLUMN_WIDTH = 26


class BoardScreen(CardActions):
    TITLE = "Board"
    AUTO_FOCUS = None  # the cursor's column takes focus once the columns are there
    DEFAULT_CSS = """
    BoardScreen #board-bar {
        height: 1;
        padding: 0 1;
        background: $boost;
    }
    BoardScreen #board-filter {
        margin: 0 1;
        display: none;
    }
    BoardScreen #board-filter.shown {
        display: block;
    }
    BoardScreen #board-missing {
        padding: 1 2;
    }
    """
    BINDINGS = [
        Binding("left,h", "cursor_column(-1)", "Column left", show=False),
        Binding("right,l", "cursor_column(1)", "Column right", show=False),
        Binding("up,k", "cursor_card(-1)", "Card up", show=False),
        Binding("down,j", "cursor_card(1)", "Card down", show=False),
        Binding("home,g", "cursor_end(-1)", "First card", show=False),
        Binding("end,G", "cursor_end(1)", "Last card", show=False),
        Binding("pageup", "cursor_card(-5)", "Page up", show=False),
        Binding("pagedown", "cursor_card(5)", "Page down", show=False),
        Binding("H,shift+left", "move_card(-1)", "Move left"),
        Binding("L,shift+right", "move_card(1)", "Move right"),
        Binding("K,shift+up", "reorder(-1)", "Move up in column", show=False),
        Binding("J,shift+down", "reorder(1)", "Move down in column", show=False),
        Binding("n", "new_card", "New"),
        Binding("e", "edit_card", "Edit"),
        Binding("enter", "open_card", "Open card", show=False),
        Binding("d", "delete_card", "Delete", show=False),
        Binding("a", "archive_card", "Archive / restore", show=False),
        Binding("u", "undo", "Undo"),
        Binding("ctrl+r", "redo", "Redo"),
        Binding("slash", "filter", "Filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("c", "copy_card", "Copy as Markdown", show=False),
        Binding("b", "switch_board", "Boards"),
        Binding("A", "toggle_archive", "Show / hide the archive", show=False),
        Binding("p", "cycle_priority", "Priority", show=False),
        Binding("o", "open_log", "Open the card's log", show=False),
    ]

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services
        self.service: BoardService | None = services.board
        self.board = self.service.default_board() if self.service is not None else "main"
        if self.service is not None:
            remembered = services.store.get_state(STATE_KEY)
            if isinstance(remembered, str) and remembered in {
                    b.name for b in self.service.boards()}:
                self.board = remembered
        self.query_text = ""
        self.show_archive = False
        self.col_index = 0
        self.cursor: int | None = None  # the card under the cursor
        self.columns: list[BoardColumn] = []
        self.column_names: list[str] = []
        self._token: tuple[int, int] | None = None
        self._window = (0, 1)
        self._archived_total = 0
        self._rebuilding = False
        self._again = False
        self._pending: int | None = None  # a card to put the cursor on after a rebuild
        self._shown_count = 0
        self._prompts: dict[tuple[object, ...], Text] = {}  # rendered cards, by what shows

    # ------------------------------------------------------------------ building

    def compose(self) -> ComposeResult:
        yield StatusBar(self.services, "Board")
        yield Line(id="board-bar")
        box = Input(placeholder="filter: words, #tag, key=value (enter keeps it, esc clears)",
                    id="board-filter")
        box.can_focus = False  # until / shows it
        yield box
        if self.service is None:
            yield Static(Text("The board service is not available.", style="dim italic"),
                         id="board-missing")
        yield BoardColumns(id="board-columns")
        yield Footer()

    async def on_mount(self) -> None:
        if self.service is None:
            return
        await self.rebuild()
        watch_store(self, self.services.store, self.poll, "board")
        self.set_interval(1.0, self.tick)

    def on_screen_resume(self) -> None:
        if self.service is not None and self.columns:
            self.reload()

    def wanted_columns(self) -> list[str]:
        assert self.service is not None
        names = self.service.columns(self.board)
        extra = sorted(set(self.service.counts(self.board)) - set(names) - {ARCHIVE})
        names += extra
        if self.show_archive:
            names.append(ARCHIVE)
        return names

    async def rebuild(self) -> None:
        """(Re)make the columns for the current board, then load the cards (and put
        the cursor on a card asked for meanwhile)."""
        if self.service is None:
            return
        if self._rebuilding:
            self._again = True
            return
        self._rebuilding = True
        mounted = False
        try:
            while True:
                self._again = False
                names = self.wanted_columns()
                if names != self.column_names:
                    mounted = True
                    holder = self.query_one("#board-columns", BoardColumns)
                    await holder.remove_children()
                    self.columns = [BoardColumn(name, i, self.render_card)
                                    for i, name in enumerate(names)]
                    for column in self.columns:
                        column.set_class(column.column == ARCHIVE, "archive")
                    self.column_names = names
                    await holder.mount_all(self.columns)
                    self.col_index = min(self.col_index, len(self.columns) - 1)
                    self.place_window()
                if not self._again:
                    break
        finally:
            self._rebuilding = False
        if mounted:  # load once the new columns have their sizes (cards are cut to them)
            self.call_after_refresh(self._loaded)
        else:
            self._loaded()

    def _loaded(self) -> None:
        self.place_window()
        self.reload()
        pending, self._pending = self._pending, None
        if pending is not None:
            self.focus_card(pending)

    def render_card(self, card: Card, width: int) -> Text:
        """A card's text (cached by its version and what its live state shows)."""
        service = self.service
        assert service is not None
        live: LiveState | None = None
        if card.column != ARCHIVE and (service.has_run(card)
                                       or card.column == service.run_column(card.board)):
            live = service.live(card, service.clock.time())
        key: tuple[object, ...] = (card.id, card.version, width)
        if live is not None:
            shown_for = compact(live.running_for) if live.running_for is not None else None
            util = round(live.utilization) if live.utilization is not None else None
            key += (util, live.scope, live.gpus, live.host, live.last_line, shown_for,
                    live.log_state)
        text = self._prompts.get(key)
        if text is None:
            if len(self._prompts) > 4000:
                self._prompts.clear()
            text = self._prompts[key] = card_text(card, width, live)
        return text

    # ------------------------------------------------------------------ loading

    def reload(self) -> None:
        """Read the board again and show it; the cursor stays on its card."""
        service = self.service
        if service is None or not self.columns:
            return
        self._token = service.change_token()
        if self.wanted_columns() != self.column_names:
            self.call_later(self.rebuild)
            return
        cards = service.cards(self.board, query=self.query_text)
        by_col: dict[str, list[Card]] = {name: [] for name in self.column_names}
        for card in cards:
            by_col.setdefault(card.column, []).append(card)
        if self.show_archive:
            archived, self._archived_total = service.archived_cards(
                self.board, query=self.query_text)
            by_col[ARCHIVE] = archived
        totals = service.counts(self.board)
        wip = service.wip(self.board)
        follow: int | None = None
        for index, column in enumerate(self.columns):
            group = by_col.get(column.column, [])
            if self.cursor is not None and any(c.id == self.cursor for c in group):
                follow = index
            column.list.set_cards(group, keep=self.cursor if follow == index else None)
            total = (self._archived_total if column.column == ARCHIVE
                     else totals.get(column.column, 0))
            header = header_text(
                column.column, total, wip.get(column.column),
                shown=len(group) if self.query_text or column.column == ARCHIVE else None,
                width=max(10, column.size.width - 2) if column.size.width else 40)
            column.set_header(header)
        if follow is not None and follow != self.col_index:
            self.col_index = follow
        self.place_window()
        self._shown_count = len(cards)
        self.update_bar(len(cards))
        if self.focused is None:
            self.focus_current()

    def poll(self) -> None:
        """The store changed: did another writer (a second TUI, the CLI, an alert)
        change the board?"""
        if self.service is None or not self.is_current:
            return
        if self.service.change_token() != self._token:
            self.reload()

    def tick(self) -> None:
        """Live state and times move every second (only cards whose text changed)."""
        if self.service is None or not self.is_current:
            return
        for column in self.columns:
            if column.display and column.list.cards:
                column.list.set_cards(column.list.cards)

    def update_bar(self, shown: int) -> None:
        text = Text()
        text.append("Board ", style="dim")
        text.append_text(render.safe(self.board, "bold"))
        text.append(f" · {shown} card{'s' if shown != 1 else ''}", style="dim")
        if self.query_text:
            text.append(" · filter ", style="dim")
            text.append_text(render.safe(self.query_text, "bold yellow", 30))
        if self.show_archive:
            text.append(" · archive shown", style="yellow")
        start, fit = self._window
        hidden_left, hidden_right = start, len(self.columns) - start - fit
        if hidden_left or hidden_right:
            text.append("  ")
            text.append(f"◀ {hidden_left}" if hidden_left else "  ", style="bold cyan")
            text.append(f" {start + 1}-{start + fit}/{len(self.columns)} ", style="dim")
            text.append(f"{hidden_right} ▶" if hidden_right else "", style="bold cyan")
        hint = Text("? keys", style="dim")
        width = max(0, self.size.width - 2)
        gap = width - text.cell_len - hint.cell_len
        if gap >= 2:
            text.append(" " * gap)
            text.append_text(hint)
        self.query_one("#board-bar", Line).set_text(text)

    # ------------------------------------------------------------------ the cursor

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
