"""Log tails, remote and local: one tail agent per followed log.

A :class:`LogTail` follows one configured log. On a host it rides the host's existing
SSH connection (``HostSupervisor.wait_connected()``): one channel running the tail
agent (:mod:`nomadlab.remote.tailagent`) through the same ``python3 -c`` bootstrap as
the sampler; the path and every other argument travel inside the payload on stdin,
never on a command line. On "local" the same agent runs as a child process
(``sys.executable -c BOOT``), so both take the same code path.

When the channel or the connection dies, the tail waits for the connection to come
back and asks the new agent to resume from the last (dev, inode, offset) it received:
no line is lost or repeated, unless the file was rotated or truncated meanwhile (the
agent then says so and starts the current file from 0, after draining the old one
if it can still find it next to the new one).

:class:`Logs` owns every tail (configured ones and ad hoc ones opened from the UI),
fans their lines and statuses out to :class:`LogListener` objects, and completes
remote paths over SFTP.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import stat
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol, cast

import asyncssh

from nomadlab.core.clock import SYSTEM_CLOCK, Clock
from nomadlab.core.config import Config, LogConfig, TailSettings
from nomadlab.core.logs import LogBuffer, LogLine, LogState, LogStatus
from nomadlab.core.model import LOCAL_HOST
from nomadlab.remote import bootstrap
from nomadlab.remote.agent import NO_PYTHON_MARKER
from nomadlab.remote.fleet import Fleet
from nomadlab.remote.supervisor import HostSupervisor
from nomadlab.remote.tailagent import DEFAULT_MAX_LINE

READ_CHUNK = 1 << 20
SLICE_LINES = 2000  # lines handled before the event loop gets a turn
INGEST_YIELD = 0.5  # after each slice, wait this fraction of the time it took
# Data bytes the tail agent may send ahead of what this side has handled (it waits for
# "ack N" lines). Without it a flood outruns the screen and piles up in memory:
# asyncssh re-opens the SSH window as soon as it buffers data, not when it is read.
FLOW_WINDOW = 4 << 20
ACK_EVERY = 256 << 10
STDERR_KEEP = 4096
MAX_HEADER = 1 << 16  # a header line longer than this is not one of ours
CLOSE_WAIT = 2.0  # seconds to wait for an agent to go after its stdin closed
COMPLETE_TIMEOUT = 5.0
LONG_SESSION = 10.0  # an agent that ran this long and ended is restarted at once
MAX_RETRY = 60.0
COMPLETE_LIMIT = 200
# A frame larger than this is not one of ours: the agent reads the file in READ_SIZE
# pieces and sends each as one frame (plus a held partial line and cut heads).
MAX_FRAME = 2 << 20
# Bytes a host may have sent that this side has not handled yet: the flow window, one
# frame past it (the agent checks the window before each frame), and slack for events
# and headers. Beyond it the host ignores the window: the channel ends.
RECEIVE_CAP = FLOW_WINDOW + MAX_FRAME + (256 << 10)
TOO_MUCH = "host sent too much"

Event = dict[str, Any]
LinesCallback = Callable[[str, list[LogLine]], None]
StatusCallback = Callable[[LogStatus], None]


# --------------------------------------------------------------------------- the wire


@dataclass(slots=True, frozen=True)
class DataFrame:
    end: int  # file offset just after the last byte these lines consumed
    payload: bytes  # complete lines, each ending in b"\n"
    cuts: str  # "-" or "i:n,i:n": line i lost n bytes


class TooMuch(Exception):
    """The host sent more than any agent of ours would: a frame over its limit, or data
    beyond the flow window. The channel ends; the message says what happened."""


class FrameDecoder:
    """Splits the agent's stdout into events (dicts) and :class:`DataFrame` objects.

    Lines that are neither (a login script's chatter, the no-python marker) are
    counted in ``garbage`` and the last few kept in ``junk`` for error messages. A
    frame header announcing more than ``max_frame`` bytes raises :class:`TooMuch`: the
    decoder never holds more than one frame and one header line.
    """

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()
        self._frame: tuple[int, int, str] | None = None  # (end, nbytes, cuts) awaited
        self.garbage = 0
        self.junk: list[str] = []
        self.no_python = False

    def _garbage(self, line: bytes) -> None:
        self.garbage += 1
        text = line[:300].decode("utf-8", "replace").strip()
        if text.startswith(NO_PYTHON_MARKER):
            self.no_python = True
        if text:
            self.junk = [*self.junk[-4:], text]

    def feed(self, data: bytes) -> list[DataFrame | Event]:
        buf = self._buf
        buf += data
        out: list[DataFrame | Event] = []
        pos = 0
        size = len(buf)
        while pos < size:
            if self._frame is not None:
                end, nbytes, cuts = self._frame
                if size - pos < nbytes:
                    break
                out.append(DataFrame(end, bytes(buf[pos:pos + nbytes]), cuts))
                pos += nbytes
                self._frame = None
                continue
            newline = buf.find(b"\n", pos)
            if newline < 0:
                if size - pos > MAX_HEADER:
                    self._garbage(bytes(buf[pos:pos + 300]))
                    pos = size
                break
            line = bytes(buf[pos:newline])
            pos = newline + 1
            kind = line[:2]
            if kind == b"D ":
                parts = line.split(b" ")
                try:
                    if len(parts) != 4:
                        raise ValueError(line)
                    end, nbytes = int(parts[1]), int(parts[2])
                    if end < 0 or nbytes < 0:
                        raise ValueError(line)
                except ValueError:
                    self._garbage(line)
                    continue
                if nbytes > self.max_frame:
                    del buf[:]
                    raise TooMuch(f"{TOO_MUCH}: a frame of {nbytes} bytes "
                                  f"(limit {self.max_frame})")
                self._frame = (end, nbytes, parts[3].decode("ascii", "replace"))
            elif kind == b"E ":
                try:
                    event = json.loads(line[2:])
                except ValueError:
                    event = None
                if isinstance(event, dict) and isinstance(event.get("e"), str):
                    out.append(event)
                else:
                    self._garbage(line)
            elif line.strip():
                self._garbage(line)
        del buf[:pos]
        return out


def parse_cuts(cuts: str, count: int) -> list[int] | None:
    """``"1:400,7:12"`` -> per-line dropped bytes (None when nothing was cut)."""
    if cuts == "-" or not cuts:
        return None
    out = [0] * count
    for item in cuts.split(","):
        index, _, dropped = item.partition(":")
        try:
            i, n = int(index), int(dropped)
        except ValueError:
            continue
        if 0 <= i < count and n >= 0:
            out[i] = n
    return out


def split_lines(payload: bytes) -> list[str]:
    """A frame's payload -> its lines: decoded once, split once, never raising."""
    text = payload.decode("utf-8", "replace")
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    lines = text.split("\n")
    lines.pop()  # the payload ends with a newline: nothing after it
    return lines


# --------------------------------------------------------------------------- where it runs


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


class _StderrTail:
    def __init__(self) -> None:
        self.data = bytearray()

    def add(self, chunk: bytes) -> None:
        self.data.extend(chunk)
        del self.data[:-STDERR_KEEP]

    def last_line(self) -> str:
        lines = bytes(self.data).decode("utf-8", "replace").strip().splitlines()
        return lines[-1][:200] if lines else ""


def _why(status: int | None, stderr: _StderrTail) -> str:
    last = stderr.last_line()
    detail = f": {last}" if last else ""
    if status not in (None, 0):
        return f"tail agent exited with status {status}{detail}"
    return f"tail agent ended{detail}"


class _TailChannel:
    """The tail agent's channel, read directly: asyncssh's stream readers re-open the
    SSH window as soon as data is buffered, so a host that ignores our flow window
    could fill memory. Here every byte is counted as it arrives; more than ``cap``
    bytes waiting to be handled closes the channel. (An ``asyncssh.SSHClientSession``:
    :func:`_tail_channel` makes one, the class on first use, as asyncssh may be
    imported lazily: core/lazyimport.py.)"""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.chan: asyncssh.SSHClientChannel[bytes] | None = None
        self.buffer = bytearray()
        self.stderr = _StderrTail()
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
def _tail_channel_class() -> type[_TailChannel]:
    return type("_TailChannel", (_TailChannel, asyncssh.SSHClientSession), {})


def _tail_channel(cap: int) -> _TailChannel:
    return _tail_channel_class()(cap)


class SshPipe:
    def __init__(self, conn: asyncssh.SSHClientConnection,
                 chan: asyncssh.SSHClientChannel[bytes], session: _TailChannel) -> None:
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
        return _why(self.chan.get_exit_status(), self.stderr)


class RemoteLink:
    """The tail agent on a host, over the connection its supervisor keeps."""

    remote = True

    def __init__(self, supervisor: HostSupervisor) -> None:
        self.supervisor = supervisor

    async def open(self) -> AgentPipe:
        conn = await self.supervisor.wait_connected()
        command = bootstrap.agent_command(self.supervisor.host.python)
        session = _tail_channel(RECEIVE_CAP)
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
        self.stderr = _StderrTail()
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
        return _why(self.proc.returncode, self.stderr)


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


# --------------------------------------------------------------------------- one tail


@dataclass(slots=True, frozen=True)
class Position:
    """Where the tail is in which file: what a new agent resumes from."""

    dev: int
    ino: int
    offset: int
    file: str


@dataclass(slots=True, frozen=True)
class _Ending:
    lost: bool  # the connection went: wait for it, no ERROR
    reason: str
    too_much: bool = False  # the host flooded us: ERROR, and back off before trying again


def _nothing_lines(name: str, lines: list[LogLine]) -> None:
    return None


def _nothing_status(status: LogStatus) -> None:
    return None


class LogTail:
    """One followed log: its agent session(s), its buffer and its status."""

    def __init__(self, config: LogConfig, settings: TailSettings, link: Link,
                 clock: Clock = SYSTEM_CLOCK, *, on_lines: LinesCallback | None = None,
                 on_status: StatusCallback | None = None, max_line: int = DEFAULT_MAX_LINE,
                 heartbeat: float = 10.0, heartbeat_timeout: float = 60.0,
                 retry: float = 3.0) -> None:
        self.config = config
        self.name = config.name
        self.settings = settings
        self.link = link
        self.clock = clock
        self.on_lines: LinesCallback = on_lines or _nothing_lines
        self.on_status: StatusCallback = on_status or _nothing_status
        self.max_line = max_line
        self.heartbeat = heartbeat
        self.heartbeat_timeout = heartbeat_timeout
        self.retry = retry
        self.buffer = LogBuffer(settings.max_lines)
        self.status = LogStatus(name=config.name, host=config.host, path=config.path,
                                state=LogState.CONNECTING, since=clock.time())
        self.position: Position | None = None
        # Bytes of the file that were there before following began (the last N lines
        # read at start): lines from them are history, not news, for the alerts.
        self._history_end: int | None = None
        self.sessions = 0  # agents started so far (1 + reconnects and restarts)
        self.garbage = 0  # stdout lines that were not frames
        self.events: list[Event] = []  # the agent's recent events (rotated, truncated ...)
        # Which file behind the path the lines come from (LogLine.run): +1 whenever the
        # agent moves to another file (new dev/inode) or the file is truncated or goes.
        self.run = 0
        self._task: asyncio.Task[None] | None = None
        self._waited = False  # the file did not exist: when it comes, all of it is new

    # ------------------------------------------------------------------ status

    def _set(self, state: LogState, *, file: str | None = None, error: str | None = None,
             keep_file: bool = False) -> None:
        old = self.status
        if keep_file:
            file = old.file
        if state is old.state and file == old.file and error == old.error:
            return
        since = old.since if state is old.state else self.clock.time()
        self.status = replace(old, state=state, since=since, file=file, error=error)
        self.on_status(self.status)

    def detach(self) -> None:
        """Stop reporting (the log was closed; what is left is teardown)."""
        self.on_lines = _nothing_lines
        self.on_status = _nothing_status

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"tail {self.name}")
            self._task.add_done_callback(self._ended)

    def _ended(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:  # a bug, or a listener that raised: visible, not silent
            self._set(LogState.ERROR, error=f"internal error: {exc!r}", keep_file=True)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._set(LogState.STOPPED, keep_file=True)

    # ------------------------------------------------------------------ the loop

    def _args(self) -> dict[str, object]:
        if self.position is not None:
            p = self.position
            start: dict[str, object] = {"resume": {"dev": p.dev, "ino": p.ino,
                                                   "offset": p.offset, "file": p.file}}
        elif self._waited:
            start = {"lines": -1}  # created while we were away: read all of it
        else:
            lines = self.config.lines if self.config.lines is not None else self.settings.lines
            start = {"lines": lines}
        return {
            "path": self.config.path,
            "start": start,
            "poll": self.settings.poll,
            "glob_every": self.settings.glob_every,
            "max_line": self.max_line,
            "retry": self.retry,
            "heartbeat_timeout": self.heartbeat_timeout,
            "window": FLOW_WINDOW,
        }

    async def _run(self) -> None:
        failures = 0  # agents in a row that ended soon after they started
        while True:
            try:
                pipe = await self.link.open()
            except LinkLost as exc:
                self._set(LogState.CONNECTING, error=f"connection lost: {exc}",
                          keep_file=True)
                await asyncio.sleep(0.05)  # the supervisor notices the dead link first
                continue
            except LinkError as exc:
                self._set(LogState.ERROR, error=str(exc), keep_file=True)
                if exc.permanent:
                    return
                failures += 1
                await asyncio.sleep(self._backoff(failures))
                continue
            self.sessions += 1
            started = self.clock.monotonic()
            try:
                ending = await self._stream(pipe)
            finally:
                pipe.close()
                with contextlib.suppress(Exception):
                    await asyncio.shield(pipe.wait_closed(CLOSE_WAIT))
            if ending.lost:
                self._set(LogState.CONNECTING, error=ending.reason, keep_file=True)
                failures = 0
                continue
            if not ending.too_much and self.clock.monotonic() - started >= LONG_SESSION:
                # It ran fine for a while (then e.g. missed heartbeats while this
                # machine slept): start again at once, from where it was.
                failures = 0
                continue
            self._set(LogState.ERROR, error=ending.reason, keep_file=True)
            failures += 1
            await asyncio.sleep(self._backoff(failures))

    def _backoff(self, failures: int) -> float:
        """retry, 2 x retry, 4 x retry ... up to a minute (no python3 stays no python3)."""
        return min(MAX_RETRY, self.retry * 2.0 ** min(failures - 1, 16))

    async def _heartbeats(self, pipe: AgentPipe) -> None:
        with contextlib.suppress(asyncssh.Error, OSError, RuntimeError):
            while True:
                await asyncio.sleep(self.heartbeat)
                pipe.write(b"\n")

    async def _stream(self, pipe: AgentPipe) -> _Ending:
        decoder = FrameDecoder(MAX_FRAME + self.max_line)
        beat = asyncio.create_task(self._heartbeats(pipe))
        handled = acked = 0  # data bytes handled / acknowledged to the agent
        try:
            pipe.write(bootstrap.tail_payload(self._args()))
            while True:
                data = await pipe.read()
                if not data:
                    break
                for item in decoder.feed(data):
                    if isinstance(item, DataFrame):
                        await self._frame_sliced(item)
                        handled += len(item.payload)
                        if handled - acked >= ACK_EVERY:
                            pipe.write(f"ack {handled}\n".encode())
                            acked = handled
                    else:
                        self._event(item)
                if handled != acked:
                    pipe.write(f"ack {handled}\n".encode())
                    acked = handled
        except TooMuch as exc:
            return _Ending(False, str(exc), too_much=True)
        except (asyncssh.Error, OSError) as exc:
            return _Ending(True, f"connection lost: {exc}")
        finally:
            beat.cancel()
            self.garbage += decoder.garbage
        if pipe.lost():
            return _Ending(True, "connection closed")
        if decoder.no_python:
            return _Ending(False, "no python3 >= 3.8 on the host (needed to follow logs)")
        reason = await pipe.ending()
        if decoder.junk and reason.startswith("tail agent ended") and ":" not in reason:
            reason += f": {decoder.junk[-1]}"
        return _Ending(False, reason)

    # ------------------------------------------------------------------ what the agent says

    async def _frame_sliced(self, frame: DataFrame) -> None:
        """One frame, in slices of SLICE_LINES with the event loop getting a turn between
        them: a burst of a million lines must not starve the keyboard. The resume
        position moves to the frame's end once all of it is in the buffer."""
        texts = split_lines(frame.payload)
        cuts = parse_cuts(frame.cuts, len(texts))
        history = (self._history_end is not None
                   and frame.end - len(frame.payload) < self._history_end)
        for start in range(0, len(texts), SLICE_LINES):
            began = time.perf_counter()
            self._deliver(texts[start:start + SLICE_LINES],
                          cuts[start:start + SLICE_LINES] if cuts else None, history)
            # Leave the loop a share of the time: under a flood, ingest takes at most
            # about two thirds of it and keys and repaints get the rest.
            await asyncio.sleep((time.perf_counter() - began) * INGEST_YIELD)
        if self.position is not None:
            p = self.position
            self.position = Position(p.dev, p.ino, frame.end, p.file)

    def _deliver(self, texts: list[str], cuts: list[int] | None, history: bool) -> None:
        if not texts:
            return
        received = self.clock.time()
        lines = self.buffer.append(texts, received, cuts, history=history, run=self.run)
        self.status = replace(self.status, lines=self.buffer.next_seq - 1,
                              last_line_at=received)
        self.on_lines(self.name, lines)

    def _event(self, event: Event) -> None:
        kind = event["e"]
        if kind != "hello":
            self.events = [*self.events[-19:], event]
        path = event.get("path")
        path = path if isinstance(path, str) else None
        if kind == "file":
            old = self.position
            try:
                self.position = Position(int(event["dev"]), int(event["ino"]),
                                         int(event["offset"]), path or "")
            except (KeyError, TypeError, ValueError):
                self.position = None
            new = self.position
            if (event.get("how") == "restarted"
                    or (old is not None and (new is None or (new.dev, new.ino)
                                             != (old.dev, old.ino)))):
                self.run += 1
            self._history_end = None
            if event.get("how") == "start":
                size = event.get("size")
                self._history_end = size if isinstance(size, int) else None
            self._waited = False
            self._set(LogState.LIVE, file=path)
        elif kind == "truncated":
            self.run += 1
            if self.position is not None:
                p = self.position
                self.position = Position(p.dev, p.ino, 0, p.file)
        elif kind == "gone":
            self.run += 1
        elif kind == "waiting":
            if self.position is None:
                self._waited = True
            self._set(LogState.WAITING, file=None)
        elif kind == "error":
            error = event.get("error")
            self._set(LogState.ERROR, file=path,
                      error=error if isinstance(error, str) else "error")


# --------------------------------------------------------------------------- all logs


class LogListener(Protocol):
    def log_lines(self, name: str, lines: list[LogLine]) -> None: ...

    def log_status(self, status: LogStatus) -> None: ...


class Logs:
    """Every followed log: the configured ones and those opened ad hoc."""

    def __init__(self, config: Config, fleet: Fleet | None, clock: Clock = SYSTEM_CLOCK, *,
                 max_line: int = DEFAULT_MAX_LINE, heartbeat: float = 10.0,
                 heartbeat_timeout: float = 60.0, retry: float = 3.0) -> None:
        self.config = config
        self.fleet = fleet
        self.clock = clock
        self.max_line = max_line
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
        if host == LOCAL_HOST:
            return LocalLink()
        supervisor = self.fleet.supervisors.get(host) if self.fleet is not None else None
        if supervisor is None:
            return MissingLink(host)
        return RemoteLink(supervisor)

    def _add(self, log: LogConfig) -> LogTail:
        tail = LogTail(log, self.config.tail, self._link(log.host), self.clock,
                       on_lines=self._lines, on_status=self._status, max_line=self.max_line,
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
        if host == LOCAL_HOST:
            return await asyncio.to_thread(complete_local, partial), None
        try:
            sftp = await asyncio.wait_for(self._sftp_for(host), COMPLETE_TIMEOUT)
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


def _split(partial: str) -> tuple[str, str]:
    """"logs/tr" -> ("logs/", "tr"): the folder as typed, and the name's beginning."""
    head, sep, prefix = partial.rpartition("/")
    return head + sep, prefix


def _wanted(name: str, prefix: str) -> bool:
    if name in (".", ".."):
        return False
    if name.startswith(".") and not prefix.startswith("."):
        return False
    return name.startswith(prefix)


def complete_local(partial: str, limit: int = COMPLETE_LIMIT) -> list[str]:
    if partial == "~":
        return ["~/"]
    typed, prefix = _split(partial)
    if typed.startswith("~") and not typed.startswith("~/"):
        folder = os.path.expanduser(typed)  # ~user/
        if folder == typed:
            return []
    else:
        folder = os.path.expanduser(typed) if typed else "."
    out: list[str] = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if not _wanted(entry.name, prefix):
                    continue
                try:
                    is_dir = entry.is_dir()  # follows symlinks
                except OSError:
                    is_dir = False
                out.append(typed + entry.name + ("/" if is_dir else ""))
    except OSError:
        return []
    return sorted(out)[:limit]


async def complete_sftp(sftp: asyncssh.SFTPClient, partial: str,
                        limit: int = COMPLETE_LIMIT) -> list[str]:
    if partial == "~":
        return ["~/"]
    typed, prefix = _split(partial)
    if typed.startswith("~/"):
        home = await sftp.realpath(".")  # an SFTP session starts in the user's home
        folder = home.rstrip("/") + "/" + typed[2:]
    elif typed.startswith("~"):
        return []  # ~user: not resolvable over SFTP
    else:
        folder = typed or "."
    names = await sftp.readdir(folder)
    out: list[str] = []
    links: list[str] = []
    for entry in names:
        name = entry.filename
        if not isinstance(name, str) or not _wanted(name, prefix):
            continue
        mode = entry.attrs.permissions
        kind = entry.attrs.type
        if kind == asyncssh.FILEXFER_TYPE_DIRECTORY or (mode is not None and stat.S_ISDIR(mode)):
            out.append(typed + name + "/")
        elif kind == asyncssh.FILEXFER_TYPE_SYMLINK or (mode is not None and stat.S_ISLNK(mode)):
            links.append(name)
        else:
            out.append(typed + name)
    for name in links[:50]:  # a link to a folder completes as a folder
        try:
            attrs = await sftp.stat(folder.rstrip("/") + "/" + name)
            is_dir = attrs.permissions is not None and stat.S_ISDIR(attrs.permissions)
        except (asyncssh.SFTPError, OSError):
            is_dir = False
        out.append(typed + name + ("/" if is_dir else ""))
    out.extend(typed + name for name in links[50:])
    return sorted(out)[:limit]
