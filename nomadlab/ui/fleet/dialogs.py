"""The fleet's dialogs: host key decisions, passphrases, free GPUs."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, DataTable, Input, Label, Static

from nomadlab.core.fleetview import FreeGpus
from nomadlab.core.model import HostKeyInfo
from nomadlab.ui import render


class TrustHostKey(ModalScreen[bool]):
    """Ask before trusting an unknown host key; explain, never accept, a changed one."""

    BINDINGS = [
        Binding("y", "answer(True)", "Trust"),
        Binding("n,escape", "answer(False)", "Cancel"),
    ]

    def __init__(self, host: str, info: HostKeyInfo) -> None:
        super().__init__()
        self.host = host
        self.info = info

    def compose(self) -> ComposeResult:
        info = self.info
        with Vertical(classes="dialog" + (" danger" if info.changed else "")):
            if info.changed:
                yield Label(Text("HOST KEY CHANGED", style="bold"), classes="title")
                body = Text()
                body.append("The server ")
                body.append_text(render.safe(f"{info.host}:{info.port}", "bold"))
                body.append(" now presents a different key than the one in ")
                body.append_text(render.safe(info.known_hosts, "bold"))
                body.append(".\nThis can mean someone is intercepting the connection.\n\n")
                body.append(f"New key: {info.key_type} {info.fingerprint}\n\n")
                body.append("nomadlab will not accept it. If the host was rebuilt, remove the "
                            "old key yourself:\n")
                body.append_text(render.safe(
                    f"  ssh-keygen -R '[{info.host}]:{info.port}' -f {info.known_hosts}"
                    if info.port != 22 else f"  ssh-keygen -R {info.host} -f {info.known_hosts}",
                    "bold"))
                yield Static(body, classes="body")
                with Horizontal(classes="buttons"):
                    yield Button("Close", id="no", variant="primary")
            else:
                yield Label(Text(f"Trust the host key of {render.clean(self.host)}?",
                                 style="bold"), classes="title")
                body = Text()
                body.append("Server: ")
                body.append_text(render.safe(f"{info.host}:{info.port}", "bold"))
                body.append(f"\nKey:    {info.key_type}\n")
                body.append("SHA256: ")
                body.append(info.fingerprint.removeprefix("SHA256:"), style="bold cyan")
                body.append("\n\nCompare the fingerprint with the one your provider shows "
                            "(or `ssh-keygen -lf /etc/ssh/ssh_host_*_key.pub` on the host).\n"
                            "Trusting appends it to ")
                body.append_text(render.safe(info.known_hosts))
                yield Static(body, classes="body")
                with Horizontal(classes="buttons"):
                    yield Button("Trust (y)", id="yes", variant="warning")
                    yield Button("Cancel (n)", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes" and not self.info.changed)

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes and not self.info.changed)


class Passphrase(ModalScreen[tuple[str, bool] | None]):
    """Ask for a key's passphrase; the caller decrypts (and keeps the key, not this)."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, key_path: str, error: str | None = None, *,
                 keyring_problem: str | None = None, hint: str = "") -> None:
        """``keyring_problem``: why the passphrase cannot be remembered here (None: it
        can; remembering is then on). ``hint``: what works instead, said with it."""
        super().__init__()
        self.key_path = key_path
        self.error = error
        self.keyring_problem = keyring_problem
        self.hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text("Passphrase needed", style="bold"), classes="title")
            yield Static(render.safe(f"for {self.key_path}"), classes="body")
            yield Input(password=True, placeholder="passphrase", id="secret")
            if self.keyring_problem is None:
                yield Checkbox("Remember in the system keyring", value=True, id="remember")
            else:
                yield Checkbox("Remember in the system keyring (not available here)",
                               value=False, disabled=True, id="remember")
                note = Text()
                note.append_text(render.safe(
                    f"The passphrase cannot be remembered: {self.keyring_problem}. ",
                    "yellow"))
                note.append_text(render.safe(self.hint, "dim"))
                yield Static(note, classes="body", id="no-keyring")
            yield Static(render.safe(self.error or "", "bold red"), id="error")
            with Horizontal(classes="buttons"):
                yield Button("Unlock", id="ok", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#secret", Input).focus()

    def _submit(self) -> None:
        secret = self.query_one("#secret", Input).value
        if not secret:
            return
        remember = self.query_one("#remember", Checkbox)
        self.dismiss((secret, remember.value and not remember.disabled))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self._submit()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "ok":
            self._submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        self.dismiss(None)


class FreeGpusScreen(ModalScreen[None]):
    """Free GPUs across hosts, with a CUDA_VISIBLE_DEVICES line ready to copy."""

    BINDINGS = [
        Binding("y,c", "copy", "Copy CUDA_VISIBLE_DEVICES"),
        Binding("escape,f,q", "close", "Close"),
    ]

    def __init__(self, free: list[FreeGpus]) -> None:
        super().__init__()
        self.free = free

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            total = sum(len(f.indices) for f in self.free)
            yield Label(Text(f"Free GPUs: {total} on {len(self.free)} hosts", style="bold"),
                        classes="title")
            table: DataTable[Text] = DataTable(cursor_type="row", id="free")
            yield table
            # The selected host's line in full, wrapped where the dialog is narrow: a
            # cut line would be copied by eye wrong.
            yield Static(id="free-line")
            yield Static(Text("y: copy the line (OSC 52 clipboard, works over SSH) · "
                              "esc: close", style="dim"))

    def on_mount(self) -> None:
        table = self.query_one("#free", DataTable)
        table.add_column("Host", key="host")
        table.add_column("GPUs", key="gpus")
        table.add_column("Model", key="model")
        for item in self.free:
            table.add_row(
                render.safe(item.host, "bold"),
                Text(str(len(item.indices))),
                render.safe(", ".join(sorted(set(item.names)))),
                key=item.host,
            )
        if not self.free:
            table.add_row(Text("no free GPU right now", style="dim"), Text(""), Text(""))
        table.focus()
        self._show_line(0)

    def _show_line(self, row: int) -> None:
        line = self.query_one("#free-line", Static)
        if not self.free:
            line.update("")
            return
        item = self.free[max(0, min(row, len(self.free) - 1))]
        text = Text("Line to copy: ", style="dim")
        text.append(item.cuda_visible_devices, style="bold green")
        text.overflow = "fold"  # a long line of indices wraps, never ends in '…'
        line.update(text)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._show_line(event.cursor_row)

    def action_copy(self) -> None:
        if not self.free:
            return
        table = self.query_one("#free", DataTable)
        item = self.free[min(table.cursor_row, len(self.free) - 1)]
        self.app.copy_to_clipboard(item.cuda_visible_devices)
        self.notify(f"Copied {item.cuda_visible_devices} ({render.clean(item.host)})",
                    title="Clipboard")

    def action_close(self) -> None:
        self.dismiss(None)

