"""The board at a glance for the workspace: cards per column, and the cards in the
run column (Training) with their runs' live state. Enter opens the full board on
the highlighted card."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widget import Widget
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from nomadlab.core.board import BoardService
from nomadlab.core.board.model import Card
from nomadlab.ui import render
from nomadlab.ui.board.cards import live_text
from nomadlab.ui.services import Services
from nomadlab.ui.store_watch import watch_store

STATE_KEY = "board.current"  # the board the board screen shows (shared with it)


def _cut(text: Text, width: int) -> Text:
    if text.cell_len > width:
        text.truncate(max(1, width), overflow="ellipsis")
    return text


class BoardPane(Widget, can_focus=True):
    DEFAULT_CSS = """
    BoardPane {
        height: 1fr;
    }
    BoardPane > #bp-counts {
        height: auto;
        padding: 0 1;
    }
    BoardPane > #bp-list {
        height: 1fr;
        max-height: 100%;
        border: none;
        padding: 0;
        background: transparent;
    }
    BoardPane > #bp-list > .option-list--option {
        padding: 0 1;
    }
    BoardPane > #bp-empty {
        padding: 0 1;
        height: auto;
    }
    """
    BINDINGS = [
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("enter", "open", "Open on the board", show=False),
    ]

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services
        self.service: BoardService | None = services.board
        self.cards: list[Card] = []
        self._shown: list[str] = []
        self._token: tuple[int, int] | None = None
        self._counts = ""
        self._loaded: tuple[str, str, Text] | None = None  # (board, run column, counts)

    def compose(self) -> ComposeResult:
        yield Static("", id="bp-counts", markup=False)
        options = OptionList(id="bp-list", markup=False)
        options.can_focus = False
        yield options
        yield Static("", id="bp-empty", markup=False)

    def on_mount(self) -> None:
        self.refresh_pane()
        watch_store(self, self.services.store, self.refresh_pane, "board")
        self.set_interval(1.0, self.show_cards)  # the runs' live state and times move

    def board(self) -> str:
        """The board the board screen shows (remembered), else the default one."""
        assert self.service is not None
        remembered = self.services.store.get_state(STATE_KEY)
        if not isinstance(remembered, str) or remembered == self.service.default_board():
            return self.service.default_board()
        if remembered in {b.name for b in self.service.config.board.boards}:
            return remembered
        if self.service.counts(remembered):  # a board made with --board, still in use
            return remembered
        return self.service.default_board()

    def refresh_pane(self) -> None:
        """(Re)read the board from the store, then show it."""
        service = self.service
        if service is None:  # hidden too: changes are rare, coming back shows them at once
            return
        board = self.board()
        counts = service.counts(board)
        wip = service.wip(board)
        line = Text()
        for column in service.columns(board):
            if line.plain:
                line.append(" · ", style="dim")
            line.append(column, style="")
            count = counts.get(column, 0)
            limit = wip.get(column)
            if limit is not None:
                style = "bold white on red" if count > limit else "bold"
                line.append(f" {count}/{limit}", style=style)
            else:
                line.append(f" {count}", style="bold" if count else "dim")
        run_col = service.run_column(board)
        self.cards = [c for c in service.cards(board) if c.column == run_col]
        self._loaded = (board, run_col or "", line)
        self.show_cards()

    def show_cards(self) -> None:
        """The cards as last read, with their runs' state and times as of now."""
        service = self.service
        if service is None or self._loaded is None or not self.screen.is_current:
            return
        _board, run_col, line = self._loaded
        now = service.clock.time()
        if line.plain != self._counts:
            self._counts = line.plain
            self.query_one("#bp-counts", Static).update(line)
        options = self.query_one("#bp-list", OptionList)
        width = max(12, (options.scrollable_content_region.width or self.size.width or 40) - 2)
        prompts = [self._prompt(card, service, width, now) for card in self.cards]
        shown = [f"{c.id}\x00{p.plain}" for c, p in zip(self.cards, prompts, strict=True)]
        empty = self.query_one("#bp-empty", Static)
        if not self.cards:
            empty.update(Text(f"Nothing in {run_col or 'the run column'}. "
                              "3 opens the board; n there adds a card.", style="dim italic"))
            empty.display = True
        else:
            empty.display = False
        if shown == self._shown:
            return
        keep = options.highlighted
        ids_before = [s.split("\x00")[0] for s in self._shown]
        self._shown = shown
        if ids_before == [str(c.id) for c in self.cards]:
            for index, prompt in enumerate(prompts):
                options.replace_option_prompt_at_index(index, prompt)
            return
        options.clear_options()
        options.add_options([Option(p, id=str(c.id)) for c, p in zip(self.cards, prompts,
                                                                     strict=True)])
        if self.cards:
            options.highlighted = min(keep or 0, len(self.cards) - 1)

    def _prompt(self, card: Card, service: BoardService, width: int, now: float) -> Text:
        failed = card.failed is not None
        head = Text(f"#{card.id} ", style="dim")
        if failed:
            head.append("✗ ", style="bold red")
        head.append_text(render.safe(card.title, "bold red" if failed else "bold"))
        lines = [_cut(head, width)]
        if card.failed is not None:
            failure = Text("✗ failed: ", style="bold red")
            failure.append_text(render.safe(card.failed, "red"))
            lines.append(_cut(failure, width))
        lines += live_text(service.live(card, now), width, short=True, failed=failed)
        return Text("\n").join(lines)

    def action_cursor(self, delta: int) -> None:
        options = self.query_one("#bp-list", OptionList)
        if delta > 0:
            options.action_cursor_down()
        else:
            options.action_cursor_up()

    def selected(self) -> Card | None:
        index = self.query_one("#bp-list", OptionList).highlighted
        if index is None or not 0 <= index < len(self.cards):
            return None
        return self.cards[index]

    def action_open(self) -> None:
        card = self.selected()
        self.app.call_later(self._open, card.id if card is not None else None)

    async def _open(self, card_id: int | None) -> None:
        await self.app.run_action("open_mode('board')")
        from nomadlab.ui.app import when_composed
        from nomadlab.ui.board.screen import BoardScreen

        screen = self.app.screen
        if card_id is not None and isinstance(screen, BoardScreen):
            when_composed(screen, screen.select_card, card_id)
