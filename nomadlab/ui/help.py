"""The help dialog: every key of the screen below, the workspace keys and the global ones."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Static


class HelpScreen(ModalScreen[None]):
    """Every key of the screen below, the workspace keys and the global ones."""

    BINDINGS = [Binding("escape,question_mark,q", "close", "Close")]

    def __init__(self, sections: list[tuple[str, list[tuple[str, str]]]]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide help"):
            yield Label(Text("Keys", style="bold"), classes="title")
            table: DataTable[Text] = DataTable(cursor_type="none", show_header=False)
            yield table
            yield Static(Text("ctrl+p: every action in the command palette · esc: close",
                              style="dim"))

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("key", width=16)
        table.add_column("what")
        for title, rows in self.sections:
            table.add_row(Text(title, style="bold underline"), Text(""))
            for key, description in rows:
                table.add_row(Text(key, style="bold cyan"), Text(description))
        table.focus()

    def action_close(self) -> None:
        self.dismiss(None)
