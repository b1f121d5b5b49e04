"""The board's dialogs: the card form (new/edit), the card's detail, boards.

Long text fields (hypothesis, notes, params, metrics) are text areas; ctrl+e opens
the focused one in ``[board] editor`` / $VISUAL / $EDITOR / vi (nomadlab.ui.editor),
the app suspended while it runs. Everything shown from a card is ``Text`` (or Markdown for the two
Markdown fields): never markup.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text
from textual.app import ComposeResult, SuspendNotSupported
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import (
    Button,
    Checkbox,
    Input,
    Label,
    Markdown,
    OptionList,
    Select,
    Static,
    TextArea,
)
from textual.widgets.option_list import Option

from nomadlab.core.board import BoardService
from nomadlab.core.board.model import (
    LINK_KEYS,
    LINK_TITLES,
    PRIORITY_NAMES,
    BoardError,
    Card,
    CardHistory,
    LiveState,
    attempts,
    check_title,
    clean_links,
    format_value_lines,
    local_time,
    parse_tags,
    parse_value_lines,
    stage_times,
)
from nomadlab.core.durations import compact
from nomadlab.ui import render
from nomadlab.ui.editor import run_editor
from nomadlab.ui.store_watch import watch_store
from nomadlab.ui.widgets.board_cards import live_text

_MD_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def markdown_source(text: str) -> str:
    """User Markdown with the control characters (ESC, BEL, C1 ...) made spaces."""
    return _MD_CONTROLS.sub(" ", text)


# --------------------------------------------------------------------------- the form


@dataclass
class CardFormResult:
    fields: dict[str, Any]  # title, hypothesis, notes, tags, priority, links, failed
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, str] = field(default_factory=dict)


def form_fields(card: Card) -> dict[str, Any]:
    """A card's editable fields as the form shows them (and edit() compares them)."""
    return {"title": card.title, "hypothesis": card.hypothesis, "notes": card.notes,
            "tags": list(card.tags), "priority": card.priority, "links": dict(card.links),
            "failed": card.failed}


class CardForm(ModalScreen[CardFormResult | None]):
    """New card or edit: ctrl+s saves, esc cancels, ctrl+e opens $EDITOR."""

    DEFAULT_CSS = """
    CardForm .board-dialog {
        width: 110;
        max-width: 95%;
        height: 90%;
        border: thick $accent;
        background: $surface;
        padding: 0 1;
    }
    CardForm #form-body {
        height: 1fr;
    }
    CardForm Label.field {
        margin-top: 1;
        color: $text-muted;
    }
    CardForm Input, CardForm TextArea, CardForm Select {
        background: $boost;
    }
    CardForm Input:focus, CardForm TextArea:focus {
        background: $boost 200%;
    }
    CardForm TextArea {
        height: 4;
    }
    CardForm TextArea.short {
        height: 3;
    }
    CardForm .row {
        height: auto;
    }
    CardForm .row > Vertical {
        height: auto;
        width: 1fr;
        margin-right: 1;
    }
    CardForm #f-error {
        color: $error;
        height: auto;
    }
    CardForm .buttons {
        height: 1;
        margin-top: 1;
    }
    """

    BINDINGS = [
        Binding("ctrl+s", "save", "Save"),
        Binding("escape", "cancel", "Cancel"),
        Binding("ctrl+e", "external_editor", "Edit in $EDITOR", priority=True),
    ]

    def __init__(self, card: Card | None, column: str, *, editor: str | None = None) -> None:
        super().__init__()
        self.card = card
        self.column = column
        self.editor = editor

    def compose(self) -> ComposeResult:
        card = self.card
        title = (Text(f"Edit #{card.id}", style="bold") if card is not None
                 else Text(f"New card in {render.clean(self.column)}", style="bold"))
        with Vertical(classes="board-dialog card-form"):
            yield Label(title, classes="title")
            with VerticalScroll(id="form-body"):
                yield Label("Title", classes="field")
                yield Input(card.title if card else "", id="f-title",
                            placeholder="what is being tried", compact=True)
                with Horizontal(classes="row"):
                    with Vertical():
                        yield Label("Tags (space separated)", classes="field")
                        yield Input(" ".join(card.tags) if card else "", id="f-tags",
                                    placeholder="lora llama-7b", compact=True)
                    with Vertical():
                        yield Label("Priority", classes="field")
                        yield Select([(PRIORITY_NAMES[p], p) for p in (3, 2, 1, 0)],
                                     value=card.priority if card else 0, allow_blank=False,
                                     id="f-priority", compact=True)
                yield Label("Hypothesis (Markdown; ctrl+e: $EDITOR)", classes="field")
                yield TextArea(card.hypothesis if card else "", id="f-hypothesis",
                               tab_behavior="focus", compact=True)
                yield Label("Hyperparameters (key = value, one per line)", classes="field")
                yield TextArea(format_value_lines(card.params) if card else "", id="f-params",
                               classes="short", tab_behavior="focus", compact=True)
                yield Label("Metrics (key = value, one per line)", classes="field")
                yield TextArea(format_value_lines(card.metrics) if card else "",
                               id="f-metrics", classes="short", tab_behavior="focus",
                               compact=True)
                for pair in (LINK_KEYS[0:2], LINK_KEYS[2:4], LINK_KEYS[4:6], LINK_KEYS[6:7]):
                    with Horizontal(classes="row"):
                        for key in pair:
                            with Vertical():
                                yield Label(f"Link: {LINK_TITLES[key]}", classes="field")
                                yield Input(card.links.get(key, "") if card else "",
                                            id=f"f-link-{key}", placeholder=_LINK_HINTS[key],
                                            compact=True)
                yield Label("Notes (Markdown)", classes="field")
                yield TextArea(card.notes if card else "", id="f-notes", tab_behavior="focus",
                               compact=True)
                if card is not None and card.failed is not None:
                    yield Checkbox("Marked failed: " + render.clean(card.failed, 60), True,
                                   id="f-failed", compact=True)
            yield Static("", id="f-error", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Save (ctrl+s)", id="save", variant="primary", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#f-title", Input).focus()

    def _value(self, selector: str) -> str:
        widget = self.query_one(selector)
        if isinstance(widget, TextArea):
            return widget.text
        if isinstance(widget, Input):
            return widget.value
        return ""

    def collect(self) -> CardFormResult:
        """The form's values, checked (BoardError says what is wrong)."""
        priority = self.query_one("#f-priority", Select).value
        fields: dict[str, Any] = {
            "title": check_title(self._value("#f-title")),
            "tags": parse_tags(self._value("#f-tags")),
            "priority": priority if isinstance(priority, int) else 0,
            "hypothesis": self._value("#f-hypothesis").strip("\n").rstrip(),
            "notes": self._value("#f-notes").strip("\n").rstrip(),
            "links": clean_links({k: self._value(f"#f-link-{k}") for k in LINK_KEYS}),
        }
        if self.card is not None:
            failed = self.query(Checkbox)
            fields["failed"] = (self.card.failed if failed and failed.first().value
                                else None)
        try:
            params = parse_value_lines(self._value("#f-params"))
        except BoardError as exc:
            raise BoardError(f"hyperparameters: {exc}") from None
        try:
            metrics = parse_value_lines(self._value("#f-metrics"))
        except BoardError as exc:
            raise BoardError(f"metrics: {exc}") from None
        return CardFormResult(fields, params, metrics)

    def action_save(self) -> None:
        try:
            result = self.collect()
        except BoardError as exc:
            self.query_one("#f-error", Static).update(Text(str(exc)))
            return
        self.dismiss(result)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "f-title":
            self.action_save()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()
        else:
            self.dismiss(None)

    def action_external_editor(self) -> None:
        """The focused text area (or the hypothesis) in $EDITOR; the app suspends.
        In a one-line field ctrl+e keeps its meaning (end of line)."""
        focused = self.focused
        if isinstance(focused, Input):
            focused.action_end()
            return
        area = focused if isinstance(focused, TextArea) else self.query_one("#f-hypothesis",
                                                                             TextArea)
        edited = self.run_editor(area.text, suffix=".md" if area.id in (
            "f-hypothesis", "f-notes") else ".txt")
        if edited is not None:
            area.load_text(edited.rstrip("\n"))
            area.focus()

    def run_editor(self, text: str, *, suffix: str = ".md") -> str | None:
        try:
            return run_editor(self.app, text, self.editor, suffix=suffix)
        except SuspendNotSupported:
            self.notify("This terminal cannot hand over to an editor", severity="error")
            return None


_LINK_HINTS = {
    "host": "a [[hosts]] name",
    "log": "a [[logs]] name or host:path",
    "paper": "a paper id",
    "commit": "a git commit",
    "branch": "a git branch",
    "command": "python train.py --config ...",
    "job": "CLUSTER:ID, a Slurm job",
}


# --------------------------------------------------------------------------- detail


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


class CardDetail(ModalScreen[str | None]):
    """Everything about one card; e edits, c copies as Markdown, o opens its log."""

    DEFAULT_CSS = """
    CardDetail .board-dialog {
        width: 110;
        max-width: 95%;
        height: 90%;
        border: thick $accent;
        background: $surface;
        padding: 0 1;
    }
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


# --------------------------------------------------------------------------- small ones


class BoardPicker(ModalScreen[str | None]):
    """The boards (projects): enter switches, esc cancels."""

    BINDINGS = [Binding("escape,b", "cancel", "Cancel")]

    def __init__(self, boards: list[tuple[str, int]], current: str) -> None:
        super().__init__()
        self.boards = boards
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text("Boards", style="bold"), classes="title")
            options = []
            for name, count in self.boards:
                text = render.safe(name, "bold" if name == self.current else "")
                text.append(f"  {count} open card{'s' if count != 1 else ''}", style="dim")
                if name == self.current:
                    text.append("  (shown)", style="dim italic")
                options.append(Option(text, id=name))
            yield OptionList(*options, id="board-list", markup=False)
            yield Static(Text("enter: switch · esc: cancel · more boards: [[board.boards]] "
                              "in the config, or `nomadlab board add --board NAME`",
                              style="dim"))

    def on_mount(self) -> None:
        options = self.query_one("#board-list", OptionList)
        names = [name for name, _ in self.boards]
        if self.current in names:
            options.highlighted = names.index(self.current)
        options.focus()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


__all__ = ["BoardPicker", "CardDetail", "CardForm", "CardFormResult",
           "detail_sections", "form_fields", "markdown_source"]
