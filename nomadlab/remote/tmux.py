"""tmux sessions on a host, over its existing SSH connection: list them, start one."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

import asyncssh

# The three numbers first and the name last, split at most three times: a name may
# hold any character, spaces included (tmux turns control characters into "_").
SEP = " "
FORMAT = SEP.join(("#{session_windows}", "#{session_attached}", "#{session_created}",
                   "#{session_name}"))
MAX_SESSIONS = 500
MAX_NAME = 200


class TmuxError(Exception):
    """tmux could not be asked: not installed, or it said why."""


@dataclass(slots=True, frozen=True)
class TmuxSession:
    name: str
    windows: int
    attached: int  # clients attached now
    created: float  # wall clock (the host's)


def parse_sessions(output: str) -> list[TmuxSession]:
    sessions: list[TmuxSession] = []
    for line in output.splitlines()[:MAX_SESSIONS]:
        parts = line.split(SEP, 3)
        if len(parts) != 4:
            continue
        try:
            windows, attached, created = int(parts[0]), int(parts[1]), float(parts[2])
        except ValueError:
            continue
        sessions.append(TmuxSession(parts[3][:MAX_NAME], windows, attached, created))
    return sessions


def check_name(name: str) -> str:
    """A new session's name: tmux turns ':' and '.' into '_'; refuse what it cannot keep."""
    name = name.strip()
    if not name:
        raise ValueError("a session name is needed")
    if len(name) > MAX_NAME or any(ord(c) < 32 or c in ":." for c in name):
        raise ValueError("a session name has no ':', '.' or control characters")
    return name


async def list_sessions(conn: asyncssh.SSHClientConnection) -> list[TmuxSession]:
    command = ("command -v tmux >/dev/null 2>&1 || { echo NOMADLAB-NO-TMUX; exit 0; }; "
               f"tmux list-sessions -F {shlex.quote(FORMAT)} 2>&1")
    result = await conn.run(command, check=False, encoding="utf-8", errors="replace")
    out = str(result.stdout or "")
    if out.strip() == "NOMADLAB-NO-TMUX":
        raise TmuxError("tmux is not installed on this host")
    if result.exit_status not in (0, None):
        text = out.strip()
        if "no server running" in text or "error connecting" in text or not text:
            return []  # no tmux server yet: no sessions
        raise TmuxError(text.splitlines()[-1][:200])
    return parse_sessions(out)


async def new_session(conn: asyncssh.SSHClientConnection, name: str) -> None:
    name = check_name(name)
    result = await conn.run(f"tmux new-session -d -s {shlex.quote(name)} 2>&1", check=False,
                            encoding="utf-8", errors="replace")
    if result.exit_status not in (0, None):
        text = str(result.stdout or "").strip() or f"tmux exited with {result.exit_status}"
        raise TmuxError(text.splitlines()[-1][:200])
