"""The board's dialogs: the card form (new/edit) and the boards picker.

Long text fields (hypothesis, notes, params, metrics) are text areas; ctrl+e opens
the focused one in ``[board] editor`` / $VISUAL / $EDITOR / vi (nomadlab.ui.editor),
the app suspended while it runs. The card's detail is in detail.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, TypeVar

from rich.text import Text
from textual.app import ComposeResult, SuspendNotSupported
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, OptionList, Select, Static, TextArea
from textual.widgets.option_list import Option

from nomadlab.core.board.model import (
    LINK_KEYS,
    LINK_TITLES,
    PRIORITY_NAMES,
    BoardError,
    Card,
    check_title,
    clean_links,
    format_value_lines,
    parse_tags,
    parse_value_lines,
)
from nomadlab.ui import render
from nomadlab.ui.editor import run_editor

ResultT = TypeVar("ResultT")


class BoardDialog(ModalScreen[ResultT]):
    """The box of the board's large dialogs (the card form, the card detail): one
    look, defined once. Its content sits in a ``Vertical(classes="board-dialog")``."""

    DEFAULT_CSS = """
    BoardDialog .board-dialog {
        width: 110;
        max-width: 95%;
        height: 90%;
        border: thick $accent;
        background: $surface;
        padding: 0 1;
    }
    """


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


class CardForm(BoardDialog[CardFormResult | None]):
    """New card or edit: ctrl+s saves, esc cancels, ctrl+e opens $EDITOR."""

    DEFAULT_CSS = """
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


# --------------------------------------------------------------------------- boards


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


__all__ = ["BoardDialog", "BoardPicker", "CardForm", "CardFormResult", "form_fields"]
