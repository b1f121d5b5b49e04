"""Where a tail agent runs: over the host's SSH connection (:class:`RemoteLink`), as
a child process here (:class:`LocalLink`), or nowhere (:class:`MissingLink`); each
gives an :class:`AgentPipe` to its stdin and stdout."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import sys
from typing import Protocol, cast

import asyncssh

from nomadlab.remote import bootstrap
from nomadlab.remote.supervisor import HostSupervisor
from nomadlab.remote.tail_wire import RECEIVE_CAP, TOO_MUCH, TooMuch

READ_CHUNK = 1 << 20
STDERR_KEEP = 4096
CLOSE_WAIT = 2.0  # seconds to wait for an agent to go after its stdin closed


class LinkError(Exception):
    """The agent could not be started (shown as ERROR, retried later)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class LinkLost(Exception):
    """The connection went away while starting the agent (back to CONNECTING)."""


class AgentPipe(Protocol):
    """One running tail agent: its stdin, stdout, and why it ended."""

    def write(self, data: bytes) -> None: ...

    async def read(self) -> bytes: ...

    def lost(self) -> bool: ...

    def close(self) -> None: ...

    async def wait_closed(self, timeout: float) -> None: ...

    async def ending(self) -> str: ...


class Link(Protocol):
    remote: bool

    async def open(self) -> AgentPipe: ...


class StderrTail:
    def __init__(self) -> None:
        self.data = bytearray()

    def add(self, chunk: bytes) -> None:
        self.data.extend(chunk)
        del self.data[:-STDERR_KEEP]

    def last_line(self) -> str:
        lines = bytes(self.data).decode("utf-8", "replace").strip().splitlines()
        return lines[-1][:200] if lines else ""


def why_ended(status: int | None, stderr: StderrTail) -> str:
    last = stderr.last_line()
    detail = f": {last}" if last else ""
    if status not in (None, 0):
        return f"tail agent exited with status {status}{detail}"
    return f"tail agent ended{detail}"


class TailChannel:
    """The tail agent's channel, read directly: asyncssh's stream readers re-open the
    SSH window as soon as data is buffered, so a host that ignores our flow window
    could fill memory. Here every byte is counted as it arrives; more than ``cap``
    bytes waiting to be handled closes the channel. (An ``asyncssh.SSHClientSession``:
    :func:`tail_channel` makes one, the class on first use, as asyncssh may be
    imported lazily: core/lazyimport.py.)"""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.chan: asyncssh.SSHClientChannel[bytes] | None = None
        self.buffer = bytearray()
        self.stderr = StderrTail()
        self.ready = asyncio.Event()
        self.closed = asyncio.Event()
        self.ended = False
        self.overflow = False
        self.error: Exception | None = None

    def connection_made(self, chan: asyncssh.SSHClientChannel[bytes]) -> None:
        self.chan = chan

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        if datatype == asyncssh.EXTENDED_DATA_STDERR:
            self.stderr.add(data)
            return
        if self.overflow:
            return
        self.buffer += data
        if len(self.buffer) > self.cap:
            self.overflow = True
            self.buffer = bytearray()
            if self.chan is not None:
                self.chan.close()
        self.ready.set()

    def eof_received(self) -> bool:
        self.ended = True
        self.ready.set()
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.ended = True
        self.error = exc
        self.ready.set()
        self.closed.set()


@functools.cache
def _tail_channel_class() -> type[TailChannel]:
    return type("TailChannel", (TailChannel, asyncssh.SSHClientSession), {})


def tail_channel(cap: int) -> TailChannel:
    return _tail_channel_class()(cap)


class SshPipe:
    def __init__(self, conn: asyncssh.SSHClientConnection,
                 chan: asyncssh.SSHClientChannel[bytes], session: TailChannel) -> None:
        self.conn = conn
        self.chan = chan
        self.session = session
        self.stderr = session.stderr

    def write(self, data: bytes) -> None:
        if self.session.overflow:
            return  # closed for flooding: the next read says so
        self.chan.write(data)

    async def read(self) -> bytes:
        s = self.session
        while not s.buffer and not s.ended and not s.overflow:
            s.ready.clear()
            await s.ready.wait()
        if s.overflow:
            raise TooMuch(f"{TOO_MUCH}: more than {s.cap} bytes ahead of what was "
                          "handled (the flow window is ignored)")
        if s.buffer:
            chunk = bytes(s.buffer[:READ_CHUNK])
            del s.buffer[:READ_CHUNK]
            return chunk
        if isinstance(s.error, (asyncssh.Error, OSError)):
            raise s.error
        return b""

    def lost(self) -> bool:
        return self.conn.is_closed()

    def close(self) -> None:
        self.chan.close()  # the channel closes: the agent gets EOF on stdin and ends

    async def wait_closed(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.session.closed.wait(), timeout)

    async def ending(self) -> str:
        await self.wait_closed(CLOSE_WAIT)
        return why_ended(self.chan.get_exit_status(), self.stderr)


class RemoteLink:
    """The tail agent on a host, over the connection its supervisor keeps."""

    remote = True

    def __init__(self, supervisor: HostSupervisor) -> None:
        self.supervisor = supervisor

    async def open(self) -> AgentPipe:
        conn = await self.supervisor.wait_connected()
        command = bootstrap.agent_command(self.supervisor.host.python)
        session = tail_channel(RECEIVE_CAP)
        try:
            chan, _ = await conn.create_session(
                lambda: cast("asyncssh.SSHClientSession[bytes]", session), command,
                encoding=None)
        except asyncssh.ChannelOpenError as exc:
            if conn.is_closed():
                raise LinkLost(exc.reason) from exc
            raise LinkError(f"cannot start the tail agent: {exc.reason}") from exc
        except (asyncssh.Error, OSError) as exc:
            if conn.is_closed():
                raise LinkLost(str(exc)) from exc
            raise LinkError(f"cannot start the tail agent: {exc}") from exc
        return SshPipe(conn, chan, session)


class LocalPipe:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.stderr = StderrTail()
        self._stderr_task = asyncio.create_task(self._collect())

    async def _collect(self) -> None:
        stream = self.proc.stderr
        if stream is None:
            return
        with contextlib.suppress(OSError):
            while True:
                chunk = await stream.read(STDERR_KEEP)
                if not chunk:
                    return
                self.stderr.add(chunk)

    def write(self, data: bytes) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.write(data)

    async def read(self) -> bytes:
        if self.proc.stdout is None:
            return b""
        return await self.proc.stdout.read(READ_CHUNK)

    def lost(self) -> bool:
        return False

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()  # EOF: the agent ends itself

    async def wait_closed(self, timeout: float) -> None:
        try:
            await asyncio.wait_for(self.proc.wait(), timeout)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()
            await self.proc.wait()

    async def ending(self) -> str:
        self.close()
        await self.wait_closed(CLOSE_WAIT)
        await asyncio.wait({self._stderr_task}, timeout=0.5)  # its last words
        return why_ended(self.proc.returncode, self.stderr)


class LocalLink:
    """The tail agent as a child process of nomadlab: the same bootstrap, the same payload."""

    remote = False

    async def open(self) -> AgentPipe:
        try:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-u", "-c", bootstrap.BOOT,
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE)
        except OSError as exc:
            raise LinkError(f"cannot start the tail agent: {exc}") from exc
        return LocalPipe(proc)


class MissingLink:
    """A log on a host the fleet does not run (unknown, disabled, or filtered out)."""

    remote = True

    def __init__(self, host: str) -> None:
        self.host = host

    async def open(self) -> AgentPipe:
        raise LinkError(f"host {self.host!r} is not monitored", permanent=True)
