"""Acting on a GPU process: find out what a pid is, signal it, see whether it ended.

Every command goes to the host's agent over its own channel; the agent checks the
pid's start time before it signals, so a pid reused since the user looked is never
hit. ``[fleet] read_only = true`` refuses every action here, before anything is sent.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from nomadlab.core.model import LOCAL_HOST
from nomadlab.hostside import agent
from nomadlab.remote.fleet import Fleet
from nomadlab.remote.session import CommandFailed

SIGNAL_NAMES = ("TERM", "INT", "KILL")
KILL_OFFER_AFTER = 10.0  # seconds after SIGTERM before SIGKILL is offered


class ActionRefused(Exception):
    """Why an action was not done, in one line for the user."""


@dataclass(slots=True, frozen=True)
class ProcessRef:
    host: str
    pid: int
    start: int  # start time in clock ticks after boot (pid reuse check)
    user: str
    command: str


def check_writable(fleet: Fleet) -> None:
    if fleet.config.fleet.read_only:
        raise ActionRefused("read-only: [fleet] read_only = true turns actions off")


async def _ask(fleet: Fleet, host: str, command: dict[str, object]) -> dict[str, object]:
    if host == LOCAL_HOST and fleet.local is not None:
        return await asyncio.to_thread(agent.handle_command, dict(command))
    supervisor = fleet.supervisors.get(host)
    if supervisor is None:
        raise ActionRefused(f"unknown host {host!r}")
    try:
        return await supervisor.request(command)
    except CommandFailed as exc:
        raise ActionRefused(f"{host}: {exc}") from None


async def describe(fleet: Fleet, host: str, pid: int) -> ProcessRef:
    """What runs as ``pid`` on ``host`` now (its start time, user and command)."""
    reply = await _ask(fleet, host, {"cmd": "proc", "pid": pid})
    if not reply.get("ok"):
        raise ActionRefused(f"{host}: {reply.get('error') or 'no such process'}")
    start = reply.get("start")
    if not isinstance(start, int):
        raise ActionRefused(f"{host}: the agent gave no start time for {pid}")
    return ProcessRef(host, pid, start, str(reply.get("user", "?")), str(reply.get("command", "")))


async def send_signal(fleet: Fleet, ref: ProcessRef, signal: str = "TERM") -> None:
    """Signal the process ``ref`` names; raises :class:`ActionRefused` with the reason."""
    check_writable(fleet)
    if signal not in SIGNAL_NAMES:
        raise ActionRefused(f"signal must be one of {', '.join(SIGNAL_NAMES)}")
    reply = await _ask(fleet, ref.host, {"cmd": "signal", "pid": ref.pid, "start": ref.start,
                                         "sig": signal})
    if not reply.get("ok"):
        raise ActionRefused(f"{ref.host}: {reply.get('error') or 'refused'}")


async def is_alive(fleet: Fleet, ref: ProcessRef) -> bool:
    """Whether the very process ``ref`` names (same start time) still runs."""
    try:
        now = await describe(fleet, ref.host, ref.pid)
    except ActionRefused:
        return False
    return now.start == ref.start
