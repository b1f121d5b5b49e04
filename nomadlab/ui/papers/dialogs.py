"""The small dialogs of the papers screens: add, takeaway, confirm, notes, tags."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static, TextArea

from nomadlab.ui import render

T = TypeVar("T")


class _FormDialog(ModalScreen[T]):
    """Enter or OK submits (``_go``), Cancel or escape closes with None."""

    def _go(self) -> None:
        """Read the fields and dismiss with the result (each dialog has its own)."""

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self._go()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self._go()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class AddPaper(_FormDialog[str | None]):
    """One line: an arXiv id or URL, a DOI, a BibTeX file or entry, or a title. The
    caller's ``submit`` adds it and returns an error message, or None when it worked."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, submit: Callable[[str], str | None]) -> None:
        super().__init__()
        self.submit = submit

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text("Add papers", style="bold"), classes="title")
            yield Static(Text("arXiv id or URL (2104.12255, astro-ph/0601001), DOI or doi.org "
                              "URL, a BibTeX file or @entry, or a title of several words. "
                              "Several ids: separate them with spaces.", style="dim"),
                         classes="body")
            yield Input(placeholder="2104.12255 10.1038/srep16696 ~/refs.bib", id="paper-input")
            yield Static("", id="paper-error", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Add", id="ok", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#paper-input", Input).focus()

    def _go(self) -> None:
        value = self.query_one("#paper-input", Input).value.strip()
        if not value:
            return
        error = self.submit(value)
        if error:
            self.query_one("#paper-error", Static).update(render.safe(error, "bold red"))
            return
        self.dismiss(value)


class Takeaway(_FormDialog[tuple[str, int | None] | None]):
    """Marking a paper read asks for its one-line takeaway (and a rating, if you like)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, takeaway: str = "") -> None:
        super().__init__()
        self.paper_title = title
        self.takeaway = takeaway

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            heading = Text("Read: ", style="bold")
            heading.append_text(render.safe(self.paper_title, "bold", 60))
            yield Label(heading, classes="title")
            yield Static(Text("What do you take away from it, in one line?", style="dim"))
            yield Input(value=self.takeaway, placeholder="the one thing to remember",
                        id="takeaway")
            yield Input(placeholder="rating 1-5 (optional)", id="rating", max_length=1,
                        restrict=r"[1-5]?")
            yield Static("", id="takeaway-error", markup=False)
            with Horizontal(classes="buttons"):
                yield Button("Mark read", id="ok", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#takeaway", Input).focus()

    def _go(self) -> None:
        takeaway = " ".join(self.query_one("#takeaway", Input).value.split())
        rating_text = self.query_one("#rating", Input).value.strip()
        if not takeaway:
            self.query_one("#takeaway-error", Static).update(
                Text("A one-line takeaway is needed.", style="bold red"))
            self.query_one("#takeaway", Input).focus()
            return
        self.dismiss((takeaway, int(rating_text) if rating_text else None))


class EditNotes(ModalScreen[str | None]):
    """Notes (Markdown) in a text area; ctrl+s keeps them, escape leaves them as they were.
    For long notes, E opens $EDITOR instead."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save"),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, title: str, notes: str) -> None:
        super().__init__()
        self.paper_title = title
        self.notes = notes

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide notes"):
            heading = Text("Notes: ", style="bold")
            heading.append_text(render.safe(self.paper_title, "bold", 80))
            yield Label(heading, classes="title")
            yield TextArea(self.notes, id="notes", soft_wrap=True, tab_behavior="indent")
            yield Static(Text("Markdown · ctrl+s: save · esc: cancel · E on the list: $EDITOR",
                              style="dim"))

    def on_mount(self) -> None:
        self.query_one("#notes", TextArea).focus()

    def action_save(self) -> None:
        self.dismiss(self.query_one("#notes", TextArea).text)

    def action_cancel(self) -> None:
        self.dismiss(None)


class EditLine(ModalScreen[str | None]):
    """One line of text (tags)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, value: str, hint: str) -> None:
        super().__init__()
        self.title_text = title
        self.value = value
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(render.safe(self.title_text, "bold", 70), classes="title")
            yield Static(Text(self.hint, style="dim"))
            yield Input(value=self.value, id="line")

    def on_mount(self) -> None:
        self.query_one("#line", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
