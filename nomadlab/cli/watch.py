"""``nomadlab watch``: the same tails and alert rules with no TUI, one JSON line per event.

For a tmux pane or a service on an always-on box. Alerts also go to the configured
channels (webhooks, notify-send, and the terminal's bell/desktop notification when
stderr is a terminal). SIGINT and SIGTERM end it cleanly: deliveries in flight get a
few seconds, nothing is left running on the hosts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Any

from nomadlab.cli.common import add_config_option, config_from, stop_on_signals
from nomadlab.cli.jobs_watch import JobsWatch
from nomadlab.core.alerts import Alert
from nomadlab.core.config import Config
from nomadlab.core.logs import LogStatus
from nomadlab.core.model import HostStatus
from nomadlab.core.store import Store
from nomadlab.core.text import json_text
from nomadlab.notify.hub import AlertHub
from nomadlab.notify.terminal import terminal_sink
from nomadlab.notify.webhooks import iso_time
from nomadlab.remote.fleet import Fleet
from nomadlab.remote.tail import Logs


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("watch", help="tails and alerts without the TUI; JSON lines on stdout",
                       description=__doc__)
    p.add_argument("--states", action="store_true",
                   help="also print host and log state changes as events")
    add_config_option(p)
    p.set_defaults(func=run)


def alert_event(alert: Alert) -> dict[str, Any]:
    return {
        "event": "alert",
        "time": iso_time(alert.time),
        "id": alert.id,
        "rule": alert.rule,
        "severity": alert.severity,
        "title": alert.title,
        "message": alert.message,
        "host": alert.host,
        "log": alert.log,
        "outcome": alert.outcome,
        "line": alert.line,
    }


class _Printer:
    """Writes events as JSON lines; also a fleet and log listener for --states."""

    def __init__(self, states: bool) -> None:
        self.states = states
        self._host_state: dict[str, str] = {}
        self._log_state: dict[str, str] = {}

    def emit(self, event: dict[str, Any]) -> None:
        sys.stdout.write(json_text(event) + "\n")  # C1, bidi: escaped (core/text.py)
        sys.stdout.flush()

    def alert(self, alert: Alert) -> None:
        self.emit(alert_event(alert))

    def fleet_status(self, status: HostStatus) -> None:
        if self.states and self._host_state.get(status.name) != str(status.state):
            self._host_state[status.name] = str(status.state)
            self.emit({"event": "host", "time": iso_time(status.since), "host": status.name,
                       "state": str(status.state), "error": status.error})

    def fleet_sample(self, sample: object) -> None:
        pass

    def log_status(self, status: LogStatus) -> None:
        if self.states and self._log_state.get(status.name) != str(status.state):
            self._log_state[status.name] = str(status.state)
            self.emit({"event": "log", "time": iso_time(status.since), "log": status.name,
                       "host": status.host, "state": str(status.state), "error": status.error,
                       "file": status.file})

    def log_lines(self, name: str, lines: object) -> None:
        pass


def _tty_writer() -> Any:
    """Bell and OSC notifications to the controlling terminal, if stderr is one."""
    if not sys.stderr.isatty():
        return None

    def write(data: str) -> None:
        with contextlib.suppress(OSError):
            sys.stderr.write(data)
            sys.stderr.flush()

    return write


async def watch(config: Config, states: bool = False,
                stop: asyncio.Event | None = None,
                jobs_sleep: Callable[[float], Awaitable[None]] | None = None) -> None:
    stop = stop or asyncio.Event()
    stop_on_signals(stop)
    store = Store(config.database)
    fleet = Fleet(config, store=store)
    logs = Logs(config, fleet)
    hub = AlertHub(config, store)
    printer = _Printer(states)
    fleet.listeners.extend([hub, printer])
    logs.listeners.extend([hub, printer])
    hub.subscribe(printer.alert)
    writer = _tty_writer()
    if writer is not None and (config.notify.bell or config.notify.desktop):
        hub.notifier.add_sink(terminal_sink(writer))
    jobs = JobsWatch(config, fleet, hub, printer.emit, sleep=jobs_sleep)
    await fleet.start()
    await logs.start()
    await hub.start()
    jobs.start()
    printer.emit({"event": "started", "time": iso_time(fleet.clock.time()), "pid": os.getpid(),
                  "hosts": fleet.names(), "logs": list(logs.tails),
                  "rules": [r.name for r in hub.rules]})
    try:
        await stop.wait()
    finally:
        await jobs.stop()
        await hub.stop(timeout=3.0)
        await logs.stop()
        await fleet.stop()
        store.close()
        printer.emit({"event": "stopped", "time": iso_time(fleet.clock.time())})


def run(args: argparse.Namespace) -> int:
    config = config_from(args)
    asyncio.run(watch(config, states=args.states))
    return 0
