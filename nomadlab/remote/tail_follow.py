"""One followed log (:class:`LogTail`): its agent session(s), resumed where the last
ended, its buffer and its status."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import asyncssh

from nomadlab.core.clock import SYSTEM_CLOCK, Clock
from nomadlab.core.config import LogConfig, TailSettings
from nomadlab.core.logs import LogBuffer, LogLine, LogState, LogStatus
from nomadlab.core.tasks import BackgroundTask
from nomadlab.hostside.tailagent.output import DEFAULT_MAX_LINE
from nomadlab.remote import bootstrap
from nomadlab.remote.tail_links import CLOSE_WAIT, AgentPipe, Link, LinkError, LinkLost
from nomadlab.remote.tail_wire import (
    FLOW_WINDOW,
    MAX_FRAME,
    DataFrame,
    Event,
    FrameDecoder,
    TooMuch,
    parse_cuts,
    split_lines,
)

SLICE_LINES = 2000  # lines handled before the event loop gets a turn
INGEST_YIELD = 0.5  # after each slice, wait this fraction of the time it took
ACK_EVERY = 256 << 10
LONG_SESSION = 10.0  # an agent that ran this long and ended is restarted at once
MAX_RETRY = 60.0
LinesCallback = Callable[[str, list[LogLine]], None]
StatusCallback = Callable[[LogStatus], None]


@dataclass(slots=True, frozen=True)
class Position:
    """Where the tail is in which file: what a new agent resumes from."""

    dev: int
    ino: int
    offset: int
    file: str


@dataclass(slots=True, frozen=True)
class Ending:
    lost: bool  # the connection went: wait for it, no ERROR
    reason: str
    too_much: bool = False  # the host flooded us: ERROR, and back off before trying again


def nothing_lines(name: str, lines: list[LogLine]) -> None:
    return None


def nothing_status(status: LogStatus) -> None:
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
        self.on_lines: LinesCallback = on_lines or nothing_lines
        self.on_status: StatusCallback = on_status or nothing_status
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
        self._task = BackgroundTask(on_error=self._failed)
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
        self.on_lines = nothing_lines
        self.on_status = nothing_status

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._task.start(self._run, name=f"tail {self.name}")

    def _failed(self, exc: BaseException) -> None:
        # a bug, or a listener that raised: visible, not silent
        self._set(LogState.ERROR, error=f"internal error: {exc!r}", keep_file=True)

    async def stop(self) -> None:
        await self._task.stop()
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

    async def _stream(self, pipe: AgentPipe) -> Ending:
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
            return Ending(False, str(exc), too_much=True)
        except (asyncssh.Error, OSError) as exc:
            return Ending(True, f"connection lost: {exc}")
        finally:
            beat.cancel()
            self.garbage += decoder.garbage
        if pipe.lost():
            return Ending(True, "connection closed")
        if decoder.no_python:
            return Ending(False, "no python3 >= 3.8 on the host (needed to follow logs)")
        reason = await pipe.ending()
        if decoder.junk and reason.startswith("tail agent ended") and ":" not in reason:
            reason += f": {decoder.junk[-1]}"
        return Ending(False, reason)

    # ------------------------------------------------------------------ what the agent says

    async def _frame_sliced(self, frame: DataFrame) -> None:
        """One frame, in slices of SLICE_LINES with the event loop getting a turn between
        them: a burst of a million lines must not starve the keyboard. The resume
        position moves to the frame's end once all of it is in the buffer."""
        texts = split_lines(frame.payload)
        cuts = parse_cuts(frame.cuts, len(texts))
        old = self._history_lines(frame, cuts, len(texts))
        for start in range(0, len(texts), SLICE_LINES):
            began = time.perf_counter()
            stop = min(start + SLICE_LINES, len(texts))
            for a, b, history in ((start, min(stop, old), True), (max(start, old), stop, False)):
                if a < b:
                    self._deliver(texts[a:b], cuts[a:b] if cuts else None, history)
            # Leave the loop a share of the time: under a flood, ingest takes at most
            # about two thirds of it and keys and repaints get the rest.
            await asyncio.sleep((time.perf_counter() - began) * INGEST_YIELD)
        if self.position is not None:
            p = self.position
            self.position = Position(p.dev, p.ino, frame.end, p.file)

    def _history_lines(self, frame: DataFrame, cuts: list[int] | None, count: int) -> int:
        """How many of the frame's first lines began before ``_history_end`` (history).

        Line by line, not per frame: one frame can hold both old and new lines, when
        the file grew between the agent's open and its first read (a loaded host), or
        when its last line, unfinished at the start, was completed with more after it.
        """
        end = self._history_end
        if end is None:
            return 0
        payload = frame.payload
        # The file offset where the frame's first line began (cut lines lost bytes).
        offset = frame.end - len(payload) - (sum(cuts) if cuts else 0)
        if frame.end <= end:
            return count
        pos = 0
        for i in range(count):
            if offset >= end:
                return i
            after = payload.find(b"\n", pos) + 1
            offset += after - pos + (cuts[i] if cuts else 0)
            pos = after
        return count

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
            self._history_end = None  # what comes now was written after the start
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
