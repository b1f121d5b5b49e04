"""Log lines and log state: the model of a followed log, and its bounded buffer."""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple


class LogLine(NamedTuple):
    """One line. A tuple of plain values on purpose: the garbage collector need not
    track a hundred thousand of them per log (fewer and shorter pauses under a flood)."""

    seq: int  # 1, 2, 3 ... for every line seen since nomadlab began following the log
    text: str  # decoded as UTF-8 with replacement characters; no newline; may be long
    received: float  # wall clock when it arrived
    cut: int = 0  # bytes the transport dropped from an over-long line (0: whole line)
    history: bool = False  # already in the file when following began: shown, not alerted on
    # Which file behind the log's path the line came from: 0 for the first one followed,
    # +1 for each new file (rotated, replaced, recreated) or truncation. A new number
    # is a new run for the alerts (their cooldown starts over).
    run: int = 0


class LogState(enum.StrEnum):
    CONNECTING = "connecting"  # waiting for the host's connection
    WAITING = "waiting"  # connected; the file does not exist (yet)
    LIVE = "live"  # following the file
    ERROR = "error"  # e.g. permission denied: shown, retried now and then
    STOPPED = "stopped"


@dataclass(slots=True)
class LogStatus:
    """A followed log's state: the file followed, lines read, the last error."""
    name: str
    host: str
    path: str  # as configured (may be a glob, may start with ~)
    state: LogState
    since: float
    file: str | None = None  # the file actually followed (after ~ and glob)
    error: str | None = None
    lines: int = 0  # lines seen in total
    last_line_at: float | None = None


class LogBuffer:
    """The newest ``max_lines`` lines of one log (memory stays flat past that)."""

    def __init__(self, max_lines: int = 100_000) -> None:
        self.max_lines = max_lines
        self.lines: deque[LogLine] = deque(maxlen=max_lines)
        self.next_seq = 1

    def append(self, texts: list[str], received: float, cuts: list[int] | None = None,
               history: bool = False, run: int = 0) -> list[LogLine]:
        out = []
        seq = self.next_seq
        for i, text in enumerate(texts):
            out.append(LogLine(seq, text, received, cuts[i] if cuts else 0, history, run))
            seq += 1
        self.next_seq = seq
        self.lines.extend(out)
        return out

    def __len__(self) -> int:
        return len(self.lines)

    def __iter__(self) -> Iterator[LogLine]:
        return iter(self.lines)

    def __getitem__(self, index: int) -> LogLine:
        return self.lines[index]

    @property
    def first_seq(self) -> int:
        return self.lines[0].seq if self.lines else self.next_seq

    def index_of(self, seq: int) -> int | None:
        """Position of the line with ``seq`` in the buffer, None if dropped or unseen."""
        if not self.lines:
            return None
        index = seq - self.lines[0].seq
        return index if 0 <= index < len(self.lines) else None

    def clear(self) -> None:
        self.lines.clear()
