"""The card's detail: everything about one card, its run live, its history and moves;
from it e edits, c copies as Markdown, o opens its log.

Everything shown from a card is ``Text``, or Markdown (control characters made
spaces) for the hypothesis and the notes: never markup.
"""

from __future__ import annotations

import re

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Label, Markdown, Static

from nomadlab.core.board import BoardService
from nomadlab.core.board.model import (
    LINK_KEYS,
    LINK_TITLES,
    PRIORITY_NAMES,
    Card,
    CardHistory,
    LiveState,
    attempts,
    local_time,
    stage_times,
)
from nomadlab.core.durations import compact
from nomadlab.ui import render
from nomadlab.ui.board.cards import live_text
from nomadlab.ui.board.dialogs import BoardDialog
from nomadlab.ui.store_watch import watch_store

_MD_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def markdown_source(text: str) -> str:
    """User Markdown with the control characters (ESC, BEL, C1 ...) made spaces."""
    return _MD_CONTROLS.sub(" ", text)


def detail_sections(card: Card, history: CardHistory, live: LiveState | None, *, now: float,
                    run_col: str | None, has_run: bool) -> tuple[Text, Text]:
    """(top, bottom): summary, run and links above the hypothesis; params, attempts,
    metrics, column times and moves below it."""
    top = Text()
    top.append("Column ", style="dim")
    top.append(card.column, style="bold")
    top.append(f" since {local_time(card.entered)} ({compact(now - card.entered)})",
               style="dim")
    if card.priority:
        top.append("  priority ", style="dim")
        top.append(PRIORITY_NAMES[card.priority], style="bold")
    if card.tags:
        top.append("\nTags ", style="dim")
        top.append_text(render.safe(" ".join("#" + t for t in card.tags), "magenta"))
    if card.failed is not None:
        top.append("\n✗ failed ", style="bold red")
        top.append_text(render.safe(card.failed, "red"))
        if card.failed_at is not None:
            top.append(f" ({local_time(card.failed_at)})", style="dim")
    top.append(f"\nCreated {local_time(card.created)} · updated {local_time(card.updated)}",
               style="dim")
    if card.archived is not None:
        top.append(f" · archived {local_time(card.archived)}", style="dim")
    if live is not None and has_run:
        top.append("\n\nRun\n", style="bold underline")
        lines = live_text(live, 200, failed=card.failed is not None)
        if lines:
            top.append_text(Text("\n").join(lines))
        else:
            top.append("no live data yet", style="dim")
        if live.last_line is not None:
            top.append("\n")
    if card.links:
        top.append("\nLinks\n", style="bold underline")
        for key in LINK_KEYS:
            if key in card.links:
                top.append(f"{LINK_TITLES[key]:>12} ", style="dim")
                top.append_text(render.safe(card.links[key], "cyan"))
                top.append("\n")
    top.rstrip()

    bottom = Text()
    if card.params:
        bottom.append("Hyperparameters\n", style="bold underline")
        width = max(len(k) for k in card.params)
        for key, value in card.params.items():
            bottom.append_text(render.safe(f"{key:>{width}}", "dim"))
            bottom.append(" = ")
            bottom.append_text(render.safe(value, "bold"))
            bottom.append("\n")
    tries = attempts(history, run_col)
    if tries:
        bottom.append("\nAttempts\n", style="bold underline")
        for attempt in tries:
            bottom.append(f"{attempt.number:>3}. {local_time(attempt.started)} ")
            ran = (attempt.ended if attempt.ended is not None else now) - attempt.started
            bottom.append(f"({compact(ran)}{'' if attempt.ended else ', running'}) ",
                          style="dim")
            if attempt.changed:
                for index, (key, (old, new)) in enumerate(attempt.changed.items()):
                    if index:
                        bottom.append(", ")
                    bottom.append_text(render.safe(key, "bold"))
                    bottom.append(" ")
                    bottom.append_text(render.safe(old if old is not None else "∅", "red"))
                    bottom.append(" → ")
                    bottom.append_text(render.safe(new if new is not None else "∅", "green"))
            elif attempt.number == 1:
                bottom.append("first attempt", style="dim")
            else:
                bottom.append("same params", style="dim")
            bottom.append("\n")
    param_changes = [v for v in history.values if v.kind == "param"]
    if param_changes:
        bottom.append("\nParam history\n", style="bold underline")
        for change in param_changes[-30:]:
            bottom.append(f"{local_time(change.time)} ", style="dim")
            bottom.append_text(render.safe(change.key, "bold"))
            bottom.append(" = ")
            if change.value is None:
                bottom.append("(removed)", style="dim italic")
            else:
                bottom.append_text(render.safe(change.value))
            bottom.append("\n")
    if card.metrics:
        bottom.append("\nMetrics\n", style="bold underline")
        for key, value in card.metrics.items():
            bottom.append_text(render.safe(key, "dim"))
            bottom.append(" = ")
            bottom.append_text(render.safe(value, "bold green"))
            bottom.append("\n")
    times = stage_times(card, history.moves, now)
    if times:
        bottom.append("\nTime per column\n", style="bold underline")
        for column, seconds in times.items():
            bottom.append(f"{column:>12} ", style="dim")
            bottom.append(compact(seconds) + "\n")
    if history.moves:
        bottom.append("\nHistory\n", style="bold underline")
        for move in history.moves[-30:]:
            bottom.append(f"{local_time(move.time)} ", style="dim")
            if move.from_col is None:
                bottom.append(f"created in {move.to_col}")
            else:
                bottom.append(f"{move.from_col} → {move.to_col}")
            if move.auto:
                bottom.append(" automatic", style="bold cyan")
                if move.reason:
                    bottom.append(": ")
                    bottom.append_text(render.safe(move.reason, "cyan"))
            bottom.append(f" [{move.origin}]\n", style="dim")
    bottom.rstrip()
    return top, bottom


class CardDetail(BoardDialog[str | None]):
    """Everything about one card; e edits, c copies as Markdown, o opens its log."""

    DEFAULT_CSS = """
    CardDetail #d-body {
        height: 1fr;
    }
    CardDetail Markdown {
        margin: 0;
        padding: 0 1;
        background: $boost;
    }
    CardDetail .section {
        margin-top: 1;
        text-style: bold underline;
    }
    """

    BINDINGS = [
        Binding("escape,q", "close", "Close"),
        Binding("e", "choose('edit')", "Edit"),
        Binding("c", "copy", "Copy as Markdown"),
        Binding("o", "choose('log')", "Open its log"),
    ]

    def __init__(self, service: BoardService, card_id: int) -> None:
        super().__init__()
        self.service = service
        self.card_id = card_id
        self._token: tuple[int, int] | None = None
        self._shown: tuple[str, str, str, str] | None = None
        self._loaded: tuple[Card, CardHistory, bool] | None = None

    def compose(self) -> ComposeResult:
        with Vertical(classes="board-dialog card-detail"):
            yield Label("", id="d-title", classes="title", markup=False)
            with VerticalScroll(id="d-body"):
                yield Static("", id="d-top", markup=False)
                yield Label("Hypothesis", classes="section", id="d-hyp-label")
                yield Markdown("", id="d-hypothesis")
                yield Static("", id="d-bottom", markup=False, classes="section-free")
                yield Label("Notes", classes="section", id="d-notes-label")
                yield Markdown("", id="d-notes")
            yield Static(Text("e edit · c copy as Markdown · o open its log · esc close",
                              style="dim"))

    def on_mount(self) -> None:
        self.refresh_detail()
        watch_store(self, self.service.store, self.refresh_detail, "board")
        self.set_interval(1.0, self.show_detail)  # the run's live state and times move
        self.query_one("#d-body").focus()

    def refresh_detail(self) -> None:
        """(Re)read the card from the store, then show it."""
        card = self.service.card(self.card_id)
        if card is None:
            self.notify(f"Card #{self.card_id} is gone (deleted elsewhere)", severity="warning")
            self.dismiss(None)
            return
        history = self.service.history(card.id)
        has_run = self.service.has_run(card) or card.column == self.service.run_column(
            card.board)
        self._loaded = (card, history, has_run)
        self.show_detail()

    def show_detail(self) -> None:
        """The card as last read, with its run's state and times as of now."""
        if self._loaded is None:
            return
        card, history, has_run = self._loaded
        now = self.service.clock.time()
        live = self.service.live(card, now) if has_run else None
        top, bottom = detail_sections(card, history, live, now=now,
                                      run_col=self.service.run_column(card.board),
                                      has_run=has_run)
        title = Text(f"#{card.id} ", style="dim")
        title.append_text(render.safe(card.title, "bold"))
        shown = (title.plain + top.plain, bottom.plain, card.hypothesis, card.notes)
        if shown == self._shown:
            return
        first = self._shown is None
        old = self._shown
        self._shown = shown
        self.query_one("#d-title", Label).update(title)
        self.query_one("#d-top", Static).update(top)
        self.query_one("#d-bottom", Static).update(bottom)
        if first or (old is not None and old[2] != card.hypothesis):
            self.query_one("#d-hypothesis", Markdown).update(
                markdown_source(card.hypothesis) or "_none yet_")
        if first or (old is not None and old[3] != card.notes):
            self.query_one("#d-notes", Markdown).update(
                markdown_source(card.notes) or "_none_")

    def action_close(self) -> None:
        self.dismiss(None)

    def action_choose(self, what: str) -> None:
        self.dismiss(what)

    def action_copy(self) -> None:
        self.app.copy_to_clipboard(self.service.markdown(self.card_id))
        self.notify(f"Copied card #{self.card_id} as Markdown", title="Clipboard")


__all__ = ["CardDetail", "detail_sections", "markdown_source"]
