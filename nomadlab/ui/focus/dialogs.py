"""Small forms of the focus screens: start a session, a block, a note, the retro."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, Static

from nomadlab.ui import render


class FormDialog(ModalScreen[list[str] | None]):
    """A few one-line fields; enter in any of them submits, escape cancels.

    ``fields``: (label, value, placeholder) each. Dismissed with the values, in order.
    """

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, fields: list[tuple[str, str, str]], help_text: str = "",
                 *, focus: int = 0) -> None:
        super().__init__()
        self.title_text = title
        self.fields = fields
        self.help_text = help_text
        self.focus_index = focus

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog focus-form"):
            yield Label(render.safe(self.title_text, "bold"), classes="title")
            if self.help_text:
                yield Static(Text(self.help_text, style="dim"), classes="body")
            for index, (label, value, placeholder) in enumerate(self.fields):
                yield Label(render.safe(label))
                yield Input(value=value, placeholder=placeholder, id=f"field-{index}")
            yield Static(Text("enter: save · tab: next field · esc: cancel", style="dim"))

    def on_mount(self) -> None:
        inputs = list(self.query(Input))
        if inputs:
            inputs[min(self.focus_index, len(inputs) - 1)].focus()

    def values(self) -> list[str]:
        return [self.query_one(f"#field-{i}", Input).value for i in range(len(self.fields))]

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(self.values())

    def action_cancel(self) -> None:
        self.dismiss(None)
