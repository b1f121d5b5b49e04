"""Screen 1: every GPU on every host, live."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Input

from nomadlab.core import fleetview
from nomadlab.core.config import SORT_KEYS
from nomadlab.core.model import HostState
from nomadlab.remote.ssh_keys import agent_hint
from nomadlab.ui import render
from nomadlab.ui.fleet.acting import Acting
from nomadlab.ui.fleet.dialogs import FreeGpusScreen, Passphrase, TrustHostKey
from nomadlab.ui.fleet.processes import ProcessTable
from nomadlab.ui.fleet.table import FleetTable
from nomadlab.ui.services import Services
from nomadlab.ui.statusbar import StatusBar


class FleetScreen(Screen[None]):
    TITLE = "Fleet"
    BINDINGS = [
        Binding("s", "cycle_sort", "Sort"),
        Binding("slash", "filter", "Filter"),
        Binding("f", "free_gpus", "Free GPUs"),
        Binding("t", "trust", "Trust key"),
        Binding("p", "passphrase", "Passphrase"),
        Binding("r", "retry", "Retry"),
        Binding("space", "fold", "Fold host", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("enter", "gpu_detail", "GPU detail"),
        Binding("T", "process_tree", "Tree"),
        Binding("a", "tmux", "tmux"),
        # k is "up" in the hosts table: signalling is k in the process table; this
        # entry puts it in the command palette and the help screen.
        Binding("k", "signal_process", "Signal the selected process", show=False),
    ]

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services
        self.acting = Acting(self, services)

    def compose(self) -> ComposeResult:
        yield StatusBar(self.services, "Fleet")
        yield Input(placeholder="filter: host, tag, GPU model, user, command",
                    id="filter", classes="hidden")
        yield FleetTable(self.services, id="fleet-table")
        yield ProcessTable(self.services, id="processes")
        yield Footer()

    @property
    def table(self) -> FleetTable:
        return self.query_one(FleetTable)

    def on_mount(self) -> None:
        self.set_interval(1.0, self.acting.check_pending)
        self.table.focus()
        self._update_subtitle()
        self.call_after_refresh(self._show_selected)

    def _show_selected(self) -> None:
        chosen = self.table.selected()
        if chosen is not None:
            self.query_one(ProcessTable).show(*chosen)

    def _update_subtitle(self) -> None:
        table = self.table
        bits = [f"sort: {table.sort_key}"]
        if table.query_text:
            bits.append(f"filter: {render.clean(table.query_text, 30)}")
        table.border_subtitle = " · ".join(bits)
        table.border_title = "Hosts and GPUs"

    def select_host(self, host: str) -> None:
        self.table.select_host(host)

    # ------------------------------------------------------------------ selection

    def on_fleet_table_selected(self, event: FleetTable.Selected) -> None:
        self.query_one(ProcessTable).show(event.host, event.gpu)

    def _selected_host(self) -> str | None:
        chosen = self.table.selected()
        return chosen[0] if chosen else None

    # ------------------------------------------------------------------ actions

    def action_cycle_sort(self) -> None:
        table = self.table
        index = SORT_KEYS.index(table.sort_key) if table.sort_key in SORT_KEYS else -1
        table.set_sort(SORT_KEYS[(index + 1) % len(SORT_KEYS)])
        self._update_subtitle()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.remove_class("hidden")
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "filter":
            self.table.set_query(event.value)
            self._update_subtitle()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "filter":
            if not event.value:
                event.input.add_class("hidden")
            self.table.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        if box.value or not box.has_class("hidden"):
            box.value = ""
            box.add_class("hidden")
            self.table.set_query("")
            self._update_subtitle()
            self.table.focus()

    def action_fold(self) -> None:
        self.table.action_toggle_host()

    def action_free_gpus(self) -> None:
        fleet = self.services.fleet
        free = fleetview.free_gpus(fleet.statuses, fleet.latest,
                                   self.services.config.fleet.thresholds)
        self.app.push_screen(FreeGpusScreen(free))

    def action_retry(self) -> None:
        host = self._selected_host()
        if host is None or not self.services.fleet.is_remote(host):
            self.notify("Select a remote host first.", severity="warning")
            return
        self.services.fleet.retry(host)
        self.notify(f"Retrying {render.clean(host)} now.")

    def _waiting(self, states: set[HostState]) -> str | None:
        """The selected host if it waits in one of ``states``, else the only one that does."""
        statuses = self.services.fleet.statuses
        host = self._selected_host()
        if host is not None and host in statuses and statuses[host].state in states:
            return host
        waiting = [n for n, s in statuses.items() if s.state in states]
        return waiting[0] if len(waiting) == 1 else None

    def action_trust(self) -> None:
        host = self._waiting({HostState.HOSTKEY_UNKNOWN, HostState.HOSTKEY_CHANGED})
        status = self.services.fleet.statuses.get(host) if host else None
        if host is None or status is None or status.hostkey is None:
            self.notify("Select a host that is waiting on a host key.", severity="warning")
            return

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            try:
                fingerprint = self.services.fleet.trust(host)
            except (ValueError, OSError) as exc:
                self.notify(render.clean(str(exc)), severity="error", timeout=10)
            else:
                self.notify(f"Trusted {render.clean(host)} ({fingerprint}).")

        self.app.push_screen(TrustHostKey(host, status.hostkey), answered)

    def action_passphrase(self, error: str | None = None) -> None:
        host = self._waiting({HostState.PASSPHRASE})
        if host is None:  # several keys may be waiting: any one unlocks its hosts
            host = next((n for n, s in self.services.fleet.statuses.items()
                         if s.state is HostState.PASSPHRASE), None)
        status = self.services.fleet.statuses.get(host) if host else None
        if status is None or not status.key_path:
            self.notify("No host is waiting for a passphrase.", severity="warning")
            return
        key_path = status.key_path
        assert key_path is not None
        # Can it be remembered here? Asked once; said in the dialog (with what works
        # instead), not as a failure after the user asked for it.
        problem = self.services.fleet.keys.keyring_problem()

        def dialog(error: str | None) -> Passphrase:
            return Passphrase(key_path, error, keyring_problem=problem,
                              hint=agent_hint(key_path) if problem else "")

        def answered(result: tuple[str, bool] | None) -> None:
            if result is None:
                return
            secret, remember = result
            try:
                warning = self.services.fleet.unlock(key_path, secret, remember)
            except ValueError as exc:
                self.app.push_screen(dialog(str(exc)), answered)
                return
            if warning:
                self.notify(warning, severity="warning", timeout=8)
            self.notify("Key unlocked; connecting.")

        self.app.push_screen(dialog(error), answered)

    # ------------------------------------------------------------------ GPU health

    def action_gpu_detail(self) -> None:
        """``enter`` on a GPU row: its health and everything else known about it."""
        chosen = self.table.selected()
        if chosen is None or chosen[1] is None:
            if chosen is not None:
                self.action_fold()
            return
        from nomadlab.ui.fleet.detail import GpuDetailScreen

        self.app.push_screen(GpuDetailScreen(self.services, chosen[0], chosen[1]))

    # ------------------------------------------------------------------ acting (issue 11)

    def action_signal_process(self) -> None:
        self.query_one(ProcessTable).action_signal()

    def action_process_tree(self) -> None:
        self.query_one(ProcessTable).action_tree()

    def on_process_table_signal_asked(self, event: ProcessTable.SignalAsked) -> None:
        event.stop()
        self.acting.ask_signal(event.host, event.process)

    def action_tmux(self) -> None:
        host = self._selected_host()
        if host is None or not self.services.fleet.is_remote(host):
            self.notify("Select a remote host first.", severity="warning")
            return
        self.acting.tmux(host)
