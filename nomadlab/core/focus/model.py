"""Focus: the model (sessions with their pauses and interruptions, planned blocks,
retros), its errors and texts, and what focus needs from the alerts. No I/O."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from nomadlab.core.alerts import Alert
from nomadlab.core.durations import countdown as format_clock


class HeldAlerts(Protocol):
    """The part of the notifier focus needs (nomadlab.notify.notifier.Notifier): the hold
    policy it sets, the alerts it holds, and their release."""

    hold: Callable[[], bool] | None

    @property
    def held(self) -> list[Alert]: ...

    async def release(self) -> None: ...


class AlertOutlet(Protocol):
    """Where focus sends its notices (nomadlab.notify.hub.AlertHub, passed in by the
    cli/tui wiring: core never imports notify)."""

    @property
    def notifier(self) -> HeldAlerts: ...

    def emit(self, alerts: Iterable[Alert]) -> None: ...

OPEN_STATES = ("running", "paused")
ENDED_STATES = ("completed", "finished", "abandoned")
FOCUS_RULE = "focus"  # the rule name of session-end alerts
NOTICE_WINDOW = 1800.0  # a session that ran out longer ago than this ends silently
PURPOSE_LIMIT = 200
NOTE_LIMIT = 500
MAX_MINUTES = 24 * 60
STEP_MINUTES = 15  # moving and resizing blocks, extending a session

KIND_LABELS = {"deep": "deep work", "sprint": "sprint", "pomodoro": "pomodoro",
               "light": "light work"}


class FocusError(Exception):
    """Something the user asked that cannot be done; the message says why."""


class AlreadyRunning(FocusError):
    """A session is open already (in this or another process)."""

    def __init__(self, session: Session, now: float) -> None:
        self.session = session
        left = format_clock(session.remaining(now))
        what = f"{session.preset} ({session.state}, {left} left"
        what += f", for {session.purpose})" if session.purpose else ")"
        super().__init__(f"a focus session is already open: #{session.id} {what}")


class NoSession(FocusError):
    """Pause, resume, stop ... with no open session."""


# --------------------------------------------------------------------------- time


def parse_clock_time(text: str) -> int:
    """'07:00', '7:30', '7', '0730' -> minutes after midnight."""
    text = text.strip()
    match = re.fullmatch(r"(\d{1,2})(?::?(\d{2}))?", text)
    if match is None:
        raise FocusError(f"expected a time like 07:00, got {text!r}")
    hours, minutes = int(match.group(1)), int(match.group(2) or 0)
    if hours > 24 or minutes > 59 or (hours == 24 and minutes):
        raise FocusError(f"not a time of day: {text!r}")
    return hours * 60 + minutes
@dataclass(slots=True)
class Pause:
    start: float
    end: float | None = None


@dataclass(slots=True)
class Interruption:
    id: int
    time: float
    note: str = ""


@dataclass(slots=True)
class Purpose:
    kind: str = "none"  # card | paper | text | none
    ref: str | None = None  # the card or paper id
    text: str = ""  # as shown: "#42 Tune the LR schedule", "paper 7: Attention ..."

    @property
    def spec(self) -> str:
        """What a user would type to get this purpose again."""
        if self.kind == "card":
            return str(self.ref)
        if self.kind == "paper":
            return f"paper:{self.ref}"
        return self.text


@dataclass(slots=True)
class Session:
    id: int
    preset: str
    kind: str
    purpose: str
    purpose_kind: str
    purpose_ref: str | None
    started: float
    planned: float  # seconds
    extended: float  # seconds added since the start
    state: str  # running | paused | completed | finished | abandoned
    ended: float | None
    block: int | None = None
    pauses: list[Pause] = field(default_factory=list)
    interruptions: list[Interruption] = field(default_factory=list)

    @property
    def open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def length(self) -> float:
        """Planned seconds, extensions included."""
        return self.planned + self.extended

    def _end(self, now: float) -> float:
        return self.ended if self.ended is not None else max(now, self.started)

    def paused_seconds(self, now: float) -> float:
        end = self._end(now)
        total = 0.0
        for pause in self.pauses:
            stop = min(pause.end if pause.end is not None else end, end)
            if stop > pause.start:
                total += stop - pause.start
        return total

    def focus_seconds(self, now: float) -> float:
        """Time spent in the session, pauses excluded (up to ``now`` while open)."""
        return max(0.0, self._end(now) - self.started - self.paused_seconds(now))

    def remaining(self, now: float) -> float:
        return max(0.0, self.length - self.focus_seconds(now))

    def due(self) -> float | None:
        """When a running session's time runs out (None unless running)."""
        if self.state != "running":
            return None
        closed = sum(p.end - p.start for p in self.pauses if p.end is not None)
        return self.started + self.length + closed

    def active_intervals(self, now: float) -> list[tuple[float, float]]:
        """The stretches between pauses, as (start, end) wall-clock pairs."""
        end = self._end(now)
        out: list[tuple[float, float]] = []
        cursor = self.started
        for pause in sorted(self.pauses, key=lambda p: p.start):
            if pause.start > cursor:
                out.append((cursor, min(pause.start, end)))
            cursor = max(cursor, pause.end if pause.end is not None else end)
            if cursor >= end:
                break
        if cursor < end:
            out.append((cursor, end))
        return [(a, b) for a, b in out if b > a]

    def longest_unbroken(self, now: float) -> float:
        """The longest stretch with neither a pause nor a logged interruption."""
        cuts = sorted(i.time for i in self.interruptions)
        best = 0.0
        for a, b in self.active_intervals(now):
            points = [a, *[c for c in cuts if a < c < b], b]
            best = max(best, *(y - x for x, y in itertools.pairwise(points)))
        return best

    @property
    def label(self) -> str:
        return self.preset if self.preset == self.kind else f"{self.preset} ({self.kind})"


@dataclass(slots=True)
class Block:
    """A planned block of a day: start in minutes after the day's local midnight (may
    pass 24:00 up to the next day's start), length in minutes."""

    id: int
    day: date
    start: int
    minutes: int
    kind: str
    purpose: str = ""
    purpose_kind: str = "none"
    purpose_ref: str | None = None

    @property
    def end(self) -> int:
        return self.start + self.minutes

    @property
    def label(self) -> str:
        return f"{minute_text(self.start)}-{minute_text(self.end)}"

    @property
    def purpose_spec(self) -> str:
        return Purpose(self.purpose_kind, self.purpose_ref, self.purpose).spec


def minute_text(minute: int) -> str:
    hours, minutes = divmod(minute % (24 * 60), 60)
    return f"{hours:02d}:{minutes:02d}"


@dataclass(slots=True)
class Retro:
    week: str
    worked: str = ""
    didnt: str = ""
    change: str = ""

    @property
    def empty(self) -> bool:
        return not (self.worked or self.didnt or self.change)


RETRO_PROMPTS = (("worked", "What worked?"), ("didnt", "What did not?"),
                 ("change", "What will you change?"))
