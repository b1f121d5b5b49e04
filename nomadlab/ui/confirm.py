"""The one yes/no dialog: y or enter says yes, n or escape says no, everywhere.

Every question the TUI asks before acting (delete a card, abandon a focus session, send a
signal, cancel a Slurm job, start a paper past the weekly cap) is a `ConfirmScreen`. The
buttons are for the mouse; they take no focus, so enter always means yes and never
depends on which button happens to be focused.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label, Static
from textual.widgets.button import ButtonVariant

from nomadlab.ui import render


class ConfirmScreen(ModalScreen[bool]):
    """Ask one question; dismisses with True (yes) or False (no).

    `title` and `body` may hold host or user text: a `str` is shown as plain text (never
    markup), a `Text` as built by the caller with `render.safe`. `danger` draws the dialog
    in the warning colour (a SIGKILL).
    """

    BINDINGS = [
        Binding("y,enter", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, title: str | Text, body: str | Text | None = None, *,
                 yes: str = "Yes", no: str = "No", danger: bool = False,
                 dialog_id: str | None = None) -> None:
        super().__init__()
        self.title_text = render.safe(title, "bold") if isinstance(title, str) else title
        self.body = Text(render.clean(body)) if isinstance(body, str) else body
        self.yes = yes
        self.no = no
        self.danger = danger
        self.dialog_id = dialog_id

    def compose(self) -> ComposeResult:
        classes = "dialog danger" if self.danger else "dialog"
        with Vertical(classes=classes, id=self.dialog_id):
            yield Label(self.title_text, classes="title")
            if self.body is not None and self.body.plain:
                yield Static(self.body, classes="body")
            with Horizontal(classes="buttons"):
                yield _button(f"{self.yes} (y)", "yes", "error")
                yield _button(f"{self.no} (n)", "no", "default")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


def _button(label: str, button_id: str, variant: ButtonVariant) -> Button:
    button = Button(label, id=button_id, variant=variant)
    button.can_focus = False
    return button


__all__ = ["ConfirmScreen"]
