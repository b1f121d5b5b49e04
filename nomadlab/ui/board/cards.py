"""Cards and columns of the board, drawn as rich ``Text``: card text is user data.

Each column is an :class:`OptionList` (one option per card, rendered and cached line
by line by Textual), so a column with hundreds of cards costs one widget, not
hundreds. Every line of a card is cut to the column's width here: OptionList would
wrap it otherwise, and it parses markup in plain strings, so it only ever gets
``Text``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from rich.cells import cell_len
from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.events import Resize
from textual.message import Message
from textual.widget import Widget
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from nomadlab.core.board.model import Card, LiveState
from nomadlab.core.durations import compact
from nomadlab.ui import logtext, render

PRIORITY_STYLE = {3: "bold red", 2: "bold yellow", 1: "dim cyan"}
DEFAULT_WIDTH = 28


def _cut(text: Text, width: int) -> Text:
    if text.cell_len > width:
        text.truncate(max(1, width), overflow="ellipsis")
    return text


def _wrap_words(text: str, first: int, rest: int, max_lines: int) -> list[str]:
    """Greedy word wrap by terminal cells; the last line keeps what is left (cut later)."""
    words = text.split(" ")
    lines: list[str] = []
    current = ""
    room = first
    for index, word in enumerate(words):
        candidate = word if not current else f"{current} {word}"
        if cell_len(candidate) <= room or not current:
            current = candidate
            continue
        lines.append(current)
        if len(lines) == max_lines - 1:
            current = " ".join(words[index:])
            break
        current = word
        room = rest
    lines.append(current)
    return lines


def live_text(live: LiveState, width: int, *, short: bool = False,
              failed: bool = False) -> list[Text]:
    """The run's state: '▶ 94% gpu1 GPU2,3 · 1h20m', then the last log line.

    ``failed``: the card's run failed; what its host does now is no longer its run, so
    none of it is drawn like a running one (all dim, '■' for the play mark)."""
    out: list[Text] = []
    line = Text()
    if live.utilization is not None:
        style = "dim" if failed else render.util_style(live.utilization)
        mark = "■ " if failed else "▶ " if live.scope == "process" else "◇ "
        line.append(mark, style=style)
        line.append(f"{live.utilization:.0f}%", style=f"bold {style}")
        if live.scope == "host":
            line.append(" host", style="dim")
    elif live.host is not None:
        line.append("◇ ", style="dim")
        line.append("no GPU data", style="dim")
    if live.host is not None:
        line.append(" ")
        line.append_text(render.safe(live.host, "cyan"))
        if live.gpus and not short:
            line.append(" GPU" + ",".join(str(g) for g in live.gpus), style="dim")
    if live.job_state is not None:
        if line.plain:
            line.append(" · ", style="dim")
        line.append_text(render.safe(live.job_state.lower(), "bold"))
    if live.running_for is not None:
        if line.plain:
            line.append(" · ", style="dim")
        line.append(compact(live.running_for), style="bold")
    if line.plain:
        if failed:
            line.stylize("dim")
        out.append(_cut(line, width))
    if live.last_line is not None:
        last = Text("› ", style="dim")
        body = logtext.to_text(live.last_line, limit=max(40, width * 2))
        body.stylize("dim")
        last.append_text(body)
        out.append(_cut(last, width))
    elif live.log is not None and live.log_state is not None and not short:
        out.append(_cut(Text("› ", style="dim") + render.safe(f"log {live.log_state}", "dim"),
                        width))
    return out


def card_text(card: Card, width: int, live: LiveState | None = None, *,
              title_lines: int = 2) -> Text:
    """A card in a column: id, priority and title; tags; metrics; run state; failure.

    A failed card does not look like a running one: '✗' and a red title, the failure
    right under the title, its run state dimmed."""
    width = max(8, width)
    failed = card.failed is not None
    head = Text(f"#{card.id} ", style="dim")
    if failed:
        head.append("✗ ", style="bold red")
    if card.priority:
        head.append(card.priority_label, style=PRIORITY_STYLE.get(card.priority, ""))
        head.append(" ")
    title = render.clean(card.title, 400)
    title_style = "bold red" if failed else "bold"
    first_room = max(4, width - head.cell_len)
    pieces = _wrap_words(title, first_room, width, title_lines)
    lines: list[Text] = []
    first = head.copy()
    first.append(pieces[0], style=title_style)
    lines.append(_cut(first, width))
    for piece in pieces[1:]:
        lines.append(_cut(Text(piece, style=title_style), width))
    if card.failed is not None:
        failure = Text("✗ failed", style="bold red")
        if card.failed:
            failure.append(": ", style="red")
            failure.append_text(render.safe(card.failed, "red"))
        lines.append(_cut(failure, width))
    if card.tags:
        tags = Text()
        for tag in card.tags:
            if tags.plain:
                tags.append(" ")
            tags.append_text(render.safe("#" + tag, "magenta"))
        lines.append(_cut(tags, width))
    if card.metrics:
        metrics = Text()
        for key, value in list(card.metrics.items())[:3]:
            if metrics.plain:
                metrics.append("  ")
            metrics.append_text(render.safe(key, "dim"))
            metrics.append(" ")
            metrics.append_text(render.safe(value, "green"))
        lines.append(_cut(metrics, width))
    if live is not None and not live.empty:
        lines.extend(live_text(live, width, failed=failed))
    return Text("\n").join(lines)


def header_text(column: str, count: int, wip: int | None, *, shown: int | None = None,
                width: int = 40) -> Text:
    """'Training 4/3 over WIP': the limit in the header, over it highlighted."""
    text = Text()
    text.append_text(render.safe(column, "bold"))
    text.append(" ")
    if wip is not None:
        if count > wip:
            text.append(f" {count}/{wip} over WIP ", style="bold white on red")
        else:
            text.append(f"{count}/{wip}", style="bold yellow" if count == wip else "dim")
    else:
        text.append(str(count), style="dim")
    if shown is not None and shown != count:
        text.append(f" ({shown} shown)", style="italic dim")
    return _cut(text, width)


class CardList(OptionList):
    """One column's cards; the highlighted one is the cursor when the column is the
    current one. Never focused itself: the board (one focusable container) keeps the
    focus, so moving between columns restyles two columns, not the whole screen."""

    can_focus = False

    class Picked(Message):
        """The mouse picked a card in this list (before OptionSelected)."""

        def __init__(self, cards: CardList) -> None:
            super().__init__()
            self.cards = cards

    DEFAULT_CSS = """
    CardList {
        height: 1fr;
        max-height: 100%;
        border: none;
        padding: 0;
        background: transparent;
        scrollbar-size-vertical: 1;
    }
    CardList > .option-list--option {
        padding: 0 1;
    }
    CardList > .option-list--separator {
        color: $foreground 12%;
    }
    CardList > .option-list--option-highlighted {
        background: $foreground 4%;
        color: $foreground;
        text-style: none;
    }
    CardList.current > .option-list--option-highlighted {
        background: $block-cursor-background 60%;
    }
    """

    def __init__(self, column: str, render_card: Callable[[Card, int], Text]) -> None:
        super().__init__(id=None, markup=False)
        self.column = column
        self.render_card = render_card
        self.cards: list[Card] = []
        self._plain: list[str] = []
        self._width = 0

    def card_width(self) -> int:
        region = self.scrollable_content_region.width
        return max(8, region - 2 - 1) if region else DEFAULT_WIDTH

    def set_cards(self, cards: Sequence[Card], keep: int | None = None) -> None:
        """Show these cards; the highlight stays on ``keep`` (a card id) when it is here.

        Only what changed is touched: the same number of cards replaces the prompts
        that differ; cards gone from the list are removed; cards added at the end
        are appended; anything else rebuilds the list."""
        width = self.card_width()
        prompts = [self.render_card(card, width) for card in cards]
        plain = [f"{c.id}\x00{p.plain}" for c, p in zip(cards, prompts, strict=True)]
        current = self.highlighted_card()
        target = keep if keep is not None else (current.id if current else None)
        old_index = self.highlighted
        old_plain = self._plain
        self.cards = list(cards)
        if plain != old_plain or width != self._width:
            self._apply(old_plain, plain, prompts, rebuild=width != self._width)
            self._plain = plain
            self._width = width
        if not self.cards:
            return
        if target is not None and self.highlight_card(target):
            return
        fallback = min(old_index if old_index is not None else 0, len(self.cards) - 1)
        self.highlighted = max(0, fallback)

    def _apply(self, old: list[str], new: list[str], prompts: list[Text], *,
               rebuild: bool) -> None:
        if not rebuild and len(old) == len(new) == self.option_count:
            for index, (before, after) in enumerate(zip(old, new, strict=True)):
                if before != after:
                    self.replace_option_prompt_at_index(index, prompts[index])
            return
        wanted = set(new)
        kept = [line for line in old if line in wanted]
        if (not rebuild and len(old) == self.option_count and len(kept) < len(old)
                and kept == new[:len(kept)]):
            # Cards left (moved away, archived, deleted), maybe one came at the end.
            gone = set(old) - set(kept)
            for index in reversed(range(len(old))):
                if old[index] in gone:
                    self.remove_option_at_index(index)
            if self.option_count:
                self.get_option_at_index(self.option_count - 1)._divider = False
            for prompt in prompts[len(kept):]:
                self.add_options([None, Option(prompt)] if self.option_count
                                 else [Option(prompt)])
            return
        if not rebuild and len(old) == self.option_count and new[:len(old)] == old:
            # Cards came at the end (a move, a new card).
            for prompt in prompts[len(old):]:
                self.add_options([None, Option(prompt)] if self.option_count
                                 else [Option(prompt)])
            return
        self.clear_options()
        options: list[Option | None] = []
        for prompt in prompts:
            options.append(Option(prompt))
            options.append(None)
        if options:
            options.pop()
        self.add_options(options)

    def highlighted_card(self) -> Card | None:
        index = self.highlighted
        if index is None or not 0 <= index < len(self.cards):
            return None
        return self.cards[index]

    def highlight_card(self, card_id: int) -> bool:
        for index, card in enumerate(self.cards):
            if card.id == card_id:
                self.highlighted = index
                return True
        return False

    def action_cursor_down(self) -> None:
        """Down, stopping at the last card (no wrapping round to the top)."""
        if self.highlighted is None:
            super().action_cursor_down()
        elif self.highlighted < len(self.cards) - 1:
            self.highlighted += 1

    def action_cursor_up(self) -> None:
        if self.highlighted is None:
            super().action_cursor_up()
        elif self.highlighted > 0:
            self.highlighted -= 1

    def on_resize(self, event: Resize) -> None:
        if self.card_width() != self._width and self.cards:
            self.set_cards(self.cards)

    async def _on_click(self, event: events.Click) -> None:
        self.post_message(self.Picked(self))
        await super()._on_click(event)


class Line(Widget):
    """One line of Text whose size never depends on it: an update repaints the line
    only (Static.update would lay the whole screen out again)."""

    DEFAULT_CSS = """
    Line {
        height: 1;
        width: 1fr;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._text = Text()

    def set_text(self, text: Text) -> None:
        if text.markup != self._text.markup or text.plain != self._text.plain:
            self._text = text
            self.refresh()

    @property
    def text(self) -> Text:
        return self._text

    def render(self) -> Text:
        return self._text


class BoardColumns(Horizontal, can_focus=True):
    """The columns side by side: the one focusable widget of the board."""

    DEFAULT_CSS = """
    BoardColumns {
        height: 1fr;
    }
    """


class BoardColumn(Vertical):
    """A column: its header (name, count, WIP) and its cards."""

    DEFAULT_CSS = """
    BoardColumn {
        width: 1fr;
        height: 1fr;
        border-right: vkey $panel-lighten-2;
    }
    BoardColumn.last {
        border-right: none;
    }
    BoardColumn > .col-header {
        height: 1;
        padding: 0 1;
        background: $panel;
    }
    BoardColumn.current > .col-header {
        background: $accent 40%;
    }
    BoardColumn.archive > .col-header {
        background: $warning 20%;
    }
    """

    def __init__(self, column: str, index: int,
                 render_card: Callable[[Card, int], Text]) -> None:
        super().__init__(classes="board-column")
        self.column = column
        self.index = index
        self.header = Line(classes="col-header")
        self.list = CardList(column, render_card)

    def compose(self) -> ComposeResult:
        yield self.header
        yield self.list

    def set_header(self, text: Text) -> None:
        self.header.set_text(text)
