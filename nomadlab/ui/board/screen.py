"""Screen 3, the board: the model-lifecycle Kanban, with cards that know their runs.

Columns side by side (as many as fit, at least 26 cells each: at 80 columns three
show and the view follows the cursor); each card shows its title, tags, metrics,
its run's live state (GPU utilization of its process, last log line, time running)
and whether the run failed. Keys are vim-like (see BINDINGS, ``?`` lists them).

This module keeps the layout and the loading: the columns, the cards in them, the
bar. The rest is in its base classes, one job each: the cursor and the window of
columns shown (cursor.py), the filter, boards and archive (views.py), the keys that
change cards (actions.py).

Other writers (another TUI, ``nomadlab board ...``, run alerts) are seen within a
second: the screen hears the store's change broadcast (nomadlab.ui.store_watch) and
reloads when :meth:`BoardService.change_token` (SQLite's data_version plus this
process's own writes) moved. Every
change goes through the service, which rereads the card inside its transaction.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Input, Static

from nomadlab.core.board import BoardService
from nomadlab.core.board.model import (
    ARCHIVE,
    Card,
    LiveState,
)
from nomadlab.core.durations import compact
from nomadlab.ui import render
from nomadlab.ui.board.actions import CardActions
from nomadlab.ui.board.cards import (
    BoardColumn,
    BoardColumns,
    Line,
    card_text,
    header_text,
)
from nomadlab.ui.board.cursor import BoardCursor
from nomadlab.ui.board.pane import STATE_KEY
from nomadlab.ui.board.views import BoardViews
from nomadlab.ui.footer import Footer
from nomadlab.ui.services import Services
from nomadlab.ui.statusbar import StatusBar
from nomadlab.ui.store_watch import watch_store


class BoardScreen(BoardCursor, BoardViews, CardActions):
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
