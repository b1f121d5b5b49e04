"""Log tails, remote and local: one tail agent per followed log.

A :class:`~nomadlab.remote.tail_follow.LogTail` follows one configured log. On a host
it rides the host's existing SSH connection (``HostSupervisor.wait_connected()``): one
channel running the tail agent (:mod:`nomadlab.hostside.tailagent`) through the same
``python3 -c`` bootstrap as the sampler; the path and every other argument travel
inside the payload on stdin, never on a command line. On "local" the same agent runs
as a child process (``sys.executable -c BOOT``), so both take the same code path.

When the channel or the connection dies, the tail waits for the connection to come
back and asks the new agent to resume from the last (dev, inode, offset) it received:
no line is lost or repeated, unless the file was rotated or truncated meanwhile (the
agent then says so and starts the current file from 0, after draining the old one
if it can still find it next to the new one).

:class:`Logs` (here) owns every tail (configured ones and ad hoc ones opened from the
UI), fans their lines and statuses out to :class:`LogListener` objects, and completes
remote paths over SFTP. The parts: :mod:`.tail_follow` (one tail), :mod:`.tail_links`
(where its agent runs: SSH channel or child process), :mod:`.tail_wire` (the agent's
frames decoded, within limits), :mod:`.tail_complete` (path completion).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from typing import TYPE_CHECKING, Protocol

import asyncssh

from nomadlab.core.clock import SYSTEM_CLOCK, Clock
from nomadlab.core.config import Config, LogConfig
from nomadlab.core.logs import LogLine, LogState, LogStatus
from nomadlab.core.model import LOCAL_HOST
from nomadlab.remote.fleet import Fleet

if TYPE_CHECKING:
    from nomadlab.remote.tail_follow import LogTail
    from nomadlab.remote.tail_links import Link

# The follower, its links and path completion are imported when a log is first
# followed or completed: a TUI with no [[logs]] paints its first frame without them.

COMPLETE_TIMEOUT = 5.0


class LogListener(Protocol):
    def log_lines(self, name: str, lines: list[LogLine]) -> None: ...

    def log_status(self, status: LogStatus) -> None: ...


class Logs:
    """Every followed log: the configured ones and those opened ad hoc."""

    def __init__(self, config: Config, fleet: Fleet | None, clock: Clock = SYSTEM_CLOCK, *,
                 max_line: int | None = None, heartbeat: float = 10.0,
                 heartbeat_timeout: float = 60.0, retry: float = 3.0) -> None:
        self.config = config
        self.fleet = fleet
        self.clock = clock
        self.max_line = max_line  # None: the tail agent's own default (DEFAULT_MAX_LINE)
        self.heartbeat = heartbeat
        self.heartbeat_timeout = heartbeat_timeout
        self.retry = retry
        self.tails: dict[str, LogTail] = {}
        self.statuses: dict[str, LogStatus] = {}
        self.listeners: list[LogListener] = []
        self._started = False
        self._closing: set[asyncio.Task[None]] = set()
        self._sftp: dict[str, tuple[asyncssh.SSHClientConnection, asyncssh.SFTPClient]] = {}
        for log in config.logs:
            self._add(log)

    # ------------------------------------------------------------------ events

    def _lines(self, name: str, lines: list[LogLine]) -> None:
        tail = self.tails.get(name)
        if tail is not None:
            self.statuses[name] = tail.status  # line count, last_line_at
        for listener in list(self.listeners):
            listener.log_lines(name, lines)

    def _status(self, status: LogStatus) -> None:
        self.statuses[status.name] = status
        for listener in list(self.listeners):
            listener.log_status(status)

    # ------------------------------------------------------------------ tails

    def _link(self, host: str) -> Link:
        from nomadlab.remote.tail_links import LocalLink, MissingLink, RemoteLink

        if host == LOCAL_HOST:
            return LocalLink()
        supervisor = self.fleet.supervisors.get(host) if self.fleet is not None else None
        if supervisor is None:
            return MissingLink(host)
        return RemoteLink(supervisor)

    def _add(self, log: LogConfig) -> LogTail:
        from nomadlab.hostside.tailagent.output import DEFAULT_MAX_LINE
        from nomadlab.remote.tail_follow import LogTail

        max_line = self.max_line if self.max_line is not None else DEFAULT_MAX_LINE
        tail = LogTail(log, self.config.tail, self._link(log.host), self.clock,
                       on_lines=self._lines, on_status=self._status, max_line=max_line,
                       heartbeat=self.heartbeat, heartbeat_timeout=self.heartbeat_timeout,
                       retry=self.retry)
        self.tails[log.name] = tail
        self.statuses[log.name] = tail.status
        return tail

    async def start(self) -> None:
        self._started = True
        for tail in self.tails.values():
            self._status(tail.status)  # listeners learn of every log, CONNECTING first
            tail.start()

    async def stop(self) -> None:
        self._started = False
        await asyncio.gather(*(t.stop() for t in self.tails.values()), return_exceptions=True)
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        if self._sftp:
            await self._close_sftp()

    async def _close_sftp(self) -> None:
        from nomadlab.remote.tail_links import CLOSE_WAIT

        for _conn, sftp in self._sftp.values():
            sftp.exit()
        for _conn, sftp in self._sftp.values():
            with contextlib.suppress(Exception):
                await asyncio.wait_for(sftp.wait_closed(), CLOSE_WAIT)
        self._sftp.clear()

    def open_adhoc(self, host: str, path: str) -> str:
        """Follow ``path`` on ``host`` now (not saved in the config); returns its name.

        Raises KeyError for a host the fleet does not run, ValueError for an empty path.
        """
        if not path.strip():
            raise ValueError("no path given")
        if host != LOCAL_HOST and (self.fleet is None or host not in self.fleet.supervisors):
            raise KeyError(f"host {host!r} is not monitored")
        name = f"{host}:{path}"
        if name not in self.tails:
            tail = self._add(LogConfig(name=name, host=host, path=path))
            self._status(tail.status)
            if self._started:
                tail.start()
        return name

    def close(self, name: str) -> None:
        """Stop following a log (configured or ad hoc); its agent ends on the host."""
        tail = self.tails.pop(name, None)
        if tail is None:
            raise KeyError(name)
        tail.detach()
        status = replace(tail.status, state=LogState.STOPPED, since=self.clock.time())
        self.statuses.pop(name, None)
        for listener in list(self.listeners):
            listener.log_status(status)
        task = asyncio.get_running_loop().create_task(tail.stop())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    # ------------------------------------------------------------------ path completion

    async def complete_path(self, host: str, partial: str) -> list[str]:
        """Completions of a path typed for ``host``: folders end in "/"; [] when unknown."""
        found, _reason = await self.complete_path_explained(host, partial)
        return found

    async def complete_path_explained(self, host: str,
                                      partial: str) -> tuple[list[str], str | None]:
        """Completions, and why there are none when the host could not be asked
        (not connected, no SFTP, a timeout); the reason is None when it answered."""
        from nomadlab.remote.tail_complete import complete_local, complete_sftp

        if host == LOCAL_HOST:
            return await asyncio.to_thread(complete_local, partial), None
        try:
            async with asyncio.timeout(COMPLETE_TIMEOUT):  # wait_for can drop a cancel: gh-86296
                sftp = await self._sftp_for(host)
        except TimeoutError:
            return [], f"{host} did not open SFTP within {COMPLETE_TIMEOUT:g} s"
        except (asyncssh.Error, OSError) as exc:
            return [], f"no SFTP on {host}: {exc}"
        if sftp is None:
            return [], f"{host} is not connected yet"
        try:
            return await asyncio.wait_for(complete_sftp(sftp, partial), COMPLETE_TIMEOUT), None
        except asyncssh.SFTPError:  # no such folder, no permission: nothing to offer
            return [], None
        except TimeoutError:
            return [], f"{host} did not answer within {COMPLETE_TIMEOUT:g} s"
        except (asyncssh.Error, OSError) as exc:
            return [], f"SFTP on {host} failed: {exc}"

    async def _sftp_for(self, host: str) -> asyncssh.SFTPClient | None:
        supervisor = self.fleet.supervisors.get(host) if self.fleet is not None else None
        if supervisor is None:
            return None
        conn = supervisor.connection
        if conn is None:
            return None
        cached = self._sftp.get(host)
        if cached is not None:
            if cached[0] is conn:
                return cached[1]
            cached[1].exit()
            del self._sftp[host]
        sftp = await conn.start_sftp_client(path_errors="replace")
        self._sftp[host] = (conn, sftp)
        return sftp
