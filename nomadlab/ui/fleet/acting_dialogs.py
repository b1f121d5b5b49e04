"""Dialogs for acting on the fleet: the question before a signal, a host's tmux sessions."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Label, Static

from nomadlab.ui import render
from nomadlab.ui.confirm import ConfirmScreen
from nomadlab.ui.services import Services

if TYPE_CHECKING:
    from asyncssh import SSHClientConnection


def confirm_signal(host: str, pid: int, user: str, command: str, *, signal: str = "TERM",
                   note: str | None = None) -> ConfirmScreen:
    """Ask before a signal: host, pid, user and command, as the user saw them."""
    body = Text()
    if note:
        body.append(note + "\n\n", style="bold yellow")
    body.append("Host:    ")
    body.append_text(render.safe(host, "bold"))
    body.append(f"\nPID:     {pid}\nUser:    ")
    body.append_text(render.safe(user, "cyan"))
    body.append("\nCommand: ")
    body.append_text(render.safe(command, "", 200))
    return ConfirmScreen(f"Send SIG{signal}?", body, yes=f"SIG{signal}", no="Cancel",
                         danger=signal == "KILL", dialog_id="confirm-signal")


class SessionName(ModalScreen[str | None]):
    """The name of a new tmux session."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, host: str) -> None:
        super().__init__()
        self.host = host

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(f"New tmux session on {render.clean(self.host)}", style="bold"),
                        classes="title")
            yield Input(placeholder="session name", id="session-name")
            yield Static("", id="error")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        from nomadlab.remote.tmux import check_name

        try:
            self.dismiss(check_name(event.value))
        except ValueError as exc:
            self.query_one("#error", Static).update(render.safe(str(exc), "bold red"))

    def action_cancel(self) -> None:
        self.dismiss(None)


class TmuxSessions(ModalScreen[str | None]):
    """A host's tmux sessions; ``enter`` returns the one to attach, ``n`` starts one."""

    BINDINGS = [
        Binding("enter", "attach", "Attach"),
        Binding("n", "new", "New session"),
        Binding("r", "reload", "Reload"),
        Binding("escape,q", "close", "Close"),
    ]

    def __init__(self, services: Services, host: str) -> None:
        super().__init__()
        self.services = services
        self.host = host
        self.names: list[str] = []

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide", id="tmux-sessions"):
            yield Label(Text(f"tmux on {render.clean(self.host)}", style="bold"),
                        classes="title")
            yield DataTable(id="sessions", cursor_type="row")
            yield Static("asking the host…", id="tmux-note", classes="body")
            yield Static(Text("enter: attach (detach with C-b d to come back) · n: new "
                              "session · esc: close", style="dim"))

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("Session", width=30, key="name")
        table.add_column("Windows", width=8, key="windows")
        table.add_column("State", width=10, key="state")
        table.add_column("Created", width=18, key="created")
        table.focus()
        self.load()

    def _note(self, text: str, style: str = "dim") -> None:
        self.query_one("#tmux-note", Static).update(render.safe(text, style))

    def _connection(self) -> SSHClientConnection | None:
        """The host's live SSH connection; None (and says so) when it has none."""
        supervisor = self.services.fleet.supervisors.get(self.host)
        conn = supervisor.connection if supervisor is not None else None
        if conn is None:
            self._note(f"{self.host} is not connected.", "bold red")
        return conn

    @work(exclusive=True, group="tmux")
    async def load(self) -> None:
        from nomadlab.remote.tmux import list_sessions

        conn = self._connection()
        if conn is None:
            return
        try:
            sessions = await list_sessions(conn)
        except Exception as exc:  # TmuxError, asyncssh's and OSError: shown, never raised
            self._note(str(exc), "bold red")
            return
        table = self.query_one(DataTable)
        table.clear()
        self.names = [s.name for s in sessions]
        for s in sessions:
            created = time.strftime("%Y-%m-%d %H:%M", time.localtime(s.created))
            state = Text("attached", style="green") if s.attached else Text("detached")
            table.add_row(render.safe(s.name, "bold", 30), Text(str(s.windows)), state,
                          Text(created), key=s.name)
        self._note(f"{len(sessions)} session(s)" if sessions else
                   "no tmux session on this host: n starts one")

    def action_reload(self) -> None:
        self.load()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()  # enter on a row: the table takes the key before the screen
        self.action_attach()

    def action_attach(self) -> None:
        table = self.query_one(DataTable)
        if not self.names or table.cursor_row < 0:
            self._note("no session to attach to: n starts one", "bold yellow")
            return
        if self.services.config.fleet.read_only:
            self._note("read-only: [fleet] read_only = true turns actions off", "bold yellow")
            return
        self.dismiss(self.names[min(table.cursor_row, len(self.names) - 1)])

    def action_new(self) -> None:
        if self.services.config.fleet.read_only:
            self._note("read-only: [fleet] read_only = true turns actions off", "bold yellow")
            return

        def named(name: str | None) -> None:
            if name:
                self.create(name)

        self.app.push_screen(SessionName(self.host), named)

    @work(exclusive=True, group="tmux")
    async def create(self, name: str) -> None:
        from nomadlab.remote.tmux import new_session

        conn = self._connection()
        if conn is None:
            return
        try:
            await new_session(conn, name)
        except Exception as exc:  # TmuxError, ValueError, asyncssh's: shown, never raised
            self._note(str(exc), "bold red")
            return
        self.load()

    def action_close(self) -> None:
        self.dismiss(None)
