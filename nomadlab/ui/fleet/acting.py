"""What the fleet screen does when the user acts: signal a process, attach to tmux.

Kept apart from the screen's layout and navigation; every remote step goes through
:mod:`nomadlab.remote.process_actions` and :mod:`nomadlab.remote.attach`.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from typing import Any

from textual.app import App
from textual.screen import Screen

from nomadlab.core.model import GpuProcess
from nomadlab.remote.process_actions import (
    KILL_OFFER_AFTER,
    ActionRefused,
    ProcessRef,
    describe,
    is_alive,
    send_signal,
)
from nomadlab.ui import render
from nomadlab.ui.fleet.acting_dialogs import TmuxSessions, confirm_signal
from nomadlab.ui.services import Services

READ_ONLY = "read-only: [fleet] read_only = true turns actions off"


@dataclass(slots=True)
class Pending:
    ref: ProcessRef
    sent_at: float  # services.clock time of the SIGTERM
    checking: bool = False


class Acting:
    def __init__(self, screen: Screen[None], services: Services) -> None:
        self.screen = screen
        self.services = services
        self.pending: dict[tuple[str, int], Pending] = {}

    @property
    def app(self) -> App[Any]:
        return self.screen.app

    def _error(self, text: str) -> None:
        self.app.notify(render.clean(text, 300), severity="error", timeout=10, markup=False)

    # ------------------------------------------------------------------ signal

    def ask_signal(self, host: str, process: GpuProcess) -> None:
        if self.services.config.fleet.read_only:
            self.app.notify(READ_ONLY, severity="warning", markup=False)
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.screen.run_worker(self._term(host, process), group="signal")

        self.app.push_screen(confirm_signal(host, process.pid, process.user, process.command),
                             answered)

    async def _term(self, host: str, process: GpuProcess) -> None:
        fleet = self.services.fleet
        try:
            if process.info is not None:  # the process the user saw, not the pid's owner now
                ref = ProcessRef(host, process.pid, process.info.start, process.user,
                                 process.command)
            else:
                ref = await describe(fleet, host, process.pid)
            await send_signal(fleet, ref, "TERM")
        except ActionRefused as exc:
            self._error(str(exc))
            return
        self.pending[(host, process.pid)] = Pending(ref, self.services.clock.time())
        self.app.notify(f"SIGTERM sent to {process.pid} on {render.clean(host)}.", markup=False)

    def check_pending(self) -> None:
        """Every second: a process still alive 10 s after SIGTERM gets a SIGKILL offer."""
        now = self.services.clock.time()
        for key, item in list(self.pending.items()):
            if not item.checking and now - item.sent_at >= KILL_OFFER_AFTER:
                item.checking = True
                self.screen.run_worker(self._offer_kill(key, item), group="signal")

    async def _offer_kill(self, key: tuple[str, int], item: Pending) -> None:
        alive = await is_alive(self.services.fleet, item.ref)
        self.pending.pop(key, None)
        if not alive:
            self.app.notify(f"{item.ref.pid} on {render.clean(item.ref.host)} has ended.",
                            markup=False)
            return
        ref = item.ref

        def answered(yes: bool | None) -> None:
            if yes:
                self.screen.run_worker(self._kill(ref), group="signal")

        self.app.push_screen(confirm_signal(
            ref.host, ref.pid, ref.user, ref.command, signal="KILL",
            note=f"Still running {KILL_OFFER_AFTER:.0f} s after SIGTERM."), answered)

    async def _kill(self, ref: ProcessRef) -> None:
        try:
            await send_signal(self.services.fleet, ref, "KILL")
        except ActionRefused as exc:
            self._error(str(exc))
            return
        self.app.notify(f"SIGKILL sent to {ref.pid} on {render.clean(ref.host)}.", markup=False)

    # ------------------------------------------------------------------ tmux

    def tmux(self, host: str) -> None:
        def chosen(session: str | None) -> None:
            if session:
                self.attach(host, session)

        self.app.push_screen(TmuxSessions(self.services, host), chosen)

    def attach(self, host: str, session: str) -> None:
        """Suspend the app, run ``ssh -t ... tmux attach``, come back where we were."""
        from nomadlab.remote.attach import ssh_argv

        config = self.services.config
        host_config = next((h for h in config.hosts if h.name == host), None)
        if host_config is None:
            return
        argv = ssh_argv(host_config, config.ssh, session, {h.name: h for h in config.hosts})
        try:
            with self.app.suspend():
                result = subprocess.run(argv, check=False)
        except Exception as exc:  # SuspendNotSupported (no real terminal), no ssh, ...
            self._error(f"cannot attach here: {exc}")
            return
        if result.returncode not in (0, None):
            self._error(f"ssh exited with status {result.returncode}")
        else:
            self.app.notify(f"Back from tmux {render.clean(session)} on {render.clean(host)}.",
                            markup=False)
