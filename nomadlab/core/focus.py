"""Focus: deep-work timers, the daily plan and the weekly retro (no Textual here).

A session is stored as wall-clock facts: when it started, its planned length, the
minutes added since, each pause with its own start and end, and when it ended. What
is left is *computed* from those and the clock, never counted down in memory, so a
timer survives quitting nomadlab, a second TUI, the CLI and a laptop that slept.

Only one session is open (running or paused) at a time, in every process: starting
one happens inside ``BEGIN IMMEDIATE`` after a check, and a partial unique index on
open sessions refuses a second one even if that check were skipped.

A running session whose time is up is *completed* by whoever looks next (the TUI's
tick, ``nomadlab focus status``, another start), with ``ended`` set to the moment the
time ran out, not the moment someone noticed. The end notice (bell, desktop
notification, webhooks: an :class:`~nomadlab.core.alerts.Alert` with rule "focus")
is sent once, by the first TUI that claims it in the store.

Days follow the user's wall clock: a focus day starts at ``[focus] day_starts``
(04:00: a session at 01:00 belongs to the previous day) in a time zone that can be
injected (``zoneinfo``), so daylight-saving changes are handled by the calendar, and
durations, being differences of epoch seconds, are never off by an hour.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import re
import sqlite3
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, tzinfo
from datetime import time as dtime
from typing import TYPE_CHECKING, Any, Protocol

from nomadlab.core.alerts import Alert, clean_text
from nomadlab.core.clock import SYSTEM_CLOCK, Clock
from nomadlab.core.config import FOCUS_KINDS, Config, FocusPreset, parse_duration
from nomadlab.core.durations import compact as human_duration
from nomadlab.core.durations import countdown as format_clock
from nomadlab.core.durations import total as format_hours
from nomadlab.core.store import Store

if TYPE_CHECKING:  # asyncio is imported where used: `focus status --short` is sync
    import asyncio


class HeldAlerts(Protocol):
    """The part of the notifier focus needs (nomadlab.notify.Notifier): the hold
    policy it sets, the alerts it holds, and their release."""

    hold: Callable[[], bool] | None

    @property
    def held(self) -> list[Alert]: ...

    async def release(self) -> None: ...


class AlertOutlet(Protocol):
    """Where focus sends its notices (nomadlab.notify.AlertHub, passed in by the
    cli/tui wiring: core never imports notify)."""

    @property
    def notifier(self) -> HeldAlerts: ...

    def emit(self, alerts: Iterable[Alert]) -> None: ...

log = logging.getLogger(__name__)

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


class Days:
    """Focus days and ISO weeks in a time zone (``None``: the system's local time)."""

    def __init__(self, day_starts: str = "04:00", tz: tzinfo | None = None) -> None:
        self.starts = parse_clock_time(day_starts)
        self.tz = tz

    def local(self, t: float) -> datetime:
        """The wall-clock time at ``t``, as a naive datetime."""
        if self.tz is None:
            return datetime.fromtimestamp(t)
        return datetime.fromtimestamp(t, self.tz).replace(tzinfo=None)

    def epoch(self, wall: datetime) -> float:
        """A wall-clock time (naive) back to epoch seconds; a time skipped by a DST
        change counts as the moment of the change (with the earlier offset)."""
        if self.tz is None:
            return wall.timestamp()
        return wall.replace(tzinfo=self.tz).timestamp()

    def day_of(self, t: float) -> date:
        return (self.local(t) - timedelta(minutes=self.starts)).date()

    def at(self, day: date, minute: int) -> float:
        """``minute`` minutes of wall-clock time after the midnight that begins ``day``."""
        return self.epoch(datetime.combine(day, dtime()) + timedelta(minutes=minute))

    def day_start(self, day: date) -> float:
        return self.at(day, self.starts)

    def day_range(self, day: date) -> tuple[float, float]:
        return self.day_start(day), self.day_start(day + timedelta(days=1))

    def clock_text(self, t: float) -> str:
        return self.local(t).strftime("%H:%M")

    # ------------------------------------------------------------------ weeks

    @staticmethod
    def week_id(day: date) -> str:
        year, week, _ = day.isocalendar()
        return f"{year}-W{week:02d}"

    @staticmethod
    def parse_week(text: str) -> tuple[int, int]:
        match = re.fullmatch(r"\s*(\d{4})-?[Ww](\d{1,2})\s*", text)
        if match is None:
            raise FocusError(f"expected a week like 2026-W48, got {text!r}")
        year, week = int(match.group(1)), int(match.group(2))
        try:
            date.fromisocalendar(year, week, 1)
        except ValueError:
            raise FocusError(f"{year} has no week {week}") from None
        return year, week

    def week_days(self, week: str) -> list[date]:
        year, number = self.parse_week(week)
        return [date.fromisocalendar(year, number, d) for d in range(1, 8)]

    def week_range(self, week: str) -> tuple[float, float]:
        days = self.week_days(week)
        return self.day_start(days[0]), self.day_start(days[-1] + timedelta(days=1))

    @staticmethod
    def shift_week(week: str, by: int) -> str:
        year, number = Days.parse_week(week)
        return Days.week_id(date.fromisocalendar(year, number, 1) + timedelta(weeks=by))


# --------------------------------------------------------------------------- the model


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


# --------------------------------------------------------------------------- the service


class FocusService:
    """Timers, plans, notes and retros over the store; the hold policy for alerts.

    ``board`` and ``papers`` are the other features' services when they exist
    (duck-typed: ``card_title``, ``paper_title``, ...); :meth:`link` sets them.
    """

    def __init__(self, config: Config, store: Store, clock: Clock = SYSTEM_CLOCK, *,
                 tz: tzinfo | None = None, alerts: AlertOutlet | None = None,
                 board: Any = None, papers: Any = None,
                 tick_every: float = 1.0) -> None:
        self.config = config
        self.settings = config.focus
        self.store = store
        self.clock = clock
        self.days = Days(self.settings.day_starts, tz)
        self.alerts = alerts
        self.board = board
        self.papers = papers
        self.tick_every = tick_every
        self._key: tuple[int, int] | None = None  # (data_version, total_changes) of the cache
        self._open: Session | None = None
        self._claimed_key: tuple[int, int] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._releasing: asyncio.Task[None] | None = None

    def link(self, *, board: Any = None, papers: Any = None) -> None:
        """Fill in the board and paper services (the first ones linked stay)."""
        if self.board is None:
            self.board = board
        if self.papers is None:
            self.papers = papers

    # ------------------------------------------------------------------ presets

    @property
    def presets(self) -> list[FocusPreset]:
        return list(self.settings.presets)

    def preset(self, name: str) -> FocusPreset | None:
        for preset in self.settings.presets:
            if preset.name.lower() == name.strip().lower():
                return preset
        return None

    def _choose(self, what: str | float | None, kind: str | None) -> tuple[str, str, float]:
        """(preset name, kind, seconds) for a preset name, minutes or a duration."""
        if kind is not None and kind not in FOCUS_KINDS:
            raise FocusError(f"unknown kind {kind!r} (kinds: {', '.join(FOCUS_KINDS)})")
        if what is None or (isinstance(what, str) and not what.strip()):
            if not self.settings.presets:
                raise FocusError("no presets configured: give the minutes, e.g. 90")
            chosen = self.settings.presets[0]
            return chosen.name, kind or chosen.kind, chosen.minutes * 60
        if isinstance(what, str):
            preset = self.preset(what)
            if preset is not None:
                return preset.name, kind or preset.kind, preset.minutes * 60
            text = what.strip()
            try:
                seconds = float(text) * 60 if re.fullmatch(r"\d+(\.\d+)?", text) \
                    else parse_duration(text)
            except ValueError:
                names = ", ".join(p.name for p in self.settings.presets) or "none"
                raise FocusError(f"unknown preset {text!r} (presets: {names}; or minutes, "
                                 "e.g. 50)") from None
        else:
            seconds = float(what) * 60
        if not 60 <= seconds <= MAX_MINUTES * 60:
            raise FocusError("a session lasts from 1 minute to 24 hours")
        return "custom", kind or "sprint", seconds

    # ------------------------------------------------------------------ purposes

    def resolve_purpose(self, spec: str | None) -> Purpose:
        """'42' or '#42' or 'card:42': a board card; 'paper:7': a paper; else free text."""
        text = clean_text(spec or "", PURPOSE_LIMIT)
        if not text:
            return Purpose()
        card = re.fullmatch(r"(?:#|card:)?(\d+)", text)
        if card is not None:
            ref = card.group(1)
            title = self._title(self.board, "card_title", int(ref))
            if title is None and self.board is not None:
                raise FocusError(f"there is no card {ref} on the board")
            return Purpose("card", ref, f"#{ref} {title}" if title else f"card #{ref}")
        paper = re.fullmatch(r"paper:#?(\d+)", text, re.IGNORECASE)
        if paper is not None:
            ref = paper.group(1)
            title = self._title(self.papers, "paper_title", int(ref))
            if title is None and self.papers is not None:
                raise FocusError(f"there is no paper {ref} in the queue")
            return Purpose("paper", ref, f"paper {ref}: {title}" if title else f"paper {ref}")
        return Purpose("text", None, text)

    @staticmethod
    def _title(service: Any, method: str, ref: int) -> str | None:
        function = getattr(service, method, None)
        if function is None:
            return None
        try:
            title = function(ref)
        except (LookupError, ValueError, sqlite3.Error):
            return None
        return clean_text(str(title), PURPOSE_LIMIT - 20) if title else None

    # ------------------------------------------------------------------ reading

    def _cache_key(self) -> tuple[int, int]:
        return self.store.data_version(), self.store.db.total_changes

    def _sessions(self, where: str, params: Iterable[Any]) -> list[Session]:
        params = list(params)
        rows = self.store.query(f"SELECT * FROM focus_sessions WHERE {where} ORDER BY started, id",
                                params)
        if not rows:
            return []
        sessions = {int(r["id"]): _session(r) for r in rows}
        marks = ",".join("?" for _ in sessions)
        for r in self.store.query(f"SELECT session, started, ended FROM focus_pauses"
                                  f" WHERE session IN ({marks}) ORDER BY started, id",
                                  list(sessions)):
            sessions[int(r["session"])].pauses.append(Pause(r["started"], r["ended"]))
        for r in self.store.query(f"SELECT id, session, time, note FROM focus_interruptions"
                                  f" WHERE session IN ({marks}) ORDER BY time, id",
                                  list(sessions)):
            sessions[int(r["session"])].interruptions.append(
                Interruption(int(r["id"]), r["time"], r["note"]))
        return list(sessions.values())

    def session(self, session_id: int) -> Session | None:
        found = self._sessions("id = ?", [session_id])
        return found[0] if found else None

    def _load_open(self) -> Session | None:
        found = self._sessions("state IN ('running', 'paused')", [])
        return found[0] if found else None

    def current(self, now: float | None = None) -> Session | None:
        """The open session (running or paused), or None. One whose time is up is
        completed here, with ``ended`` when its time ran out."""
        now = self.clock.time() if now is None else now
        key = self._cache_key()
        if key != self._key:
            self._open = self._load_open()
            self._key = key
        session = self._open
        if session is not None and session.state == "running":
            due = session.due()
            if due is not None and now >= due and self._complete_due(now):
                self._open = self._load_open()  # None, unless another process started one
                self._key = self._cache_key()
                return self._open
        return session

    def _complete_due(self, now: float) -> bool:
        try:
            with self.store.transaction() as db:
                _complete_due(db, now)
        except sqlite3.OperationalError as exc:  # locked for longer than the timeout
            log.warning("focus session not completed: %s", exc)
            return False
        return True

    def sessions_between(self, start: float, end: float) -> list[Session]:
        """Sessions that started in [start, end), oldest first."""
        return self._sessions("started >= ? AND started < ?", [start, end])

    def last_ended(self) -> Session | None:
        found = self._sessions("id = (SELECT id FROM focus_sessions WHERE ended IS NOT NULL"
                               " ORDER BY ended DESC, id DESC LIMIT 1)", [])
        return found[0] if found else None

    def today(self, now: float | None = None) -> date:
        return self.days.day_of(self.clock.time() if now is None else now)

    @staticmethod
    def counted(sessions: Iterable[Session]) -> list[Session]:
        """The sessions that count in totals: all but the abandoned ones."""
        return [s for s in sessions if s.state != "abandoned"]

    def focus_seconds(self, sessions: Iterable[Session], now: float) -> float:
        """Focus time of sessions; abandoned ones do not count."""
        return sum(s.focus_seconds(now) for s in sessions if s.state != "abandoned")

    def day_focus(self, day: date, now: float | None = None) -> float:
        now = self.clock.time() if now is None else now
        self.current(now)
        return self.focus_seconds(self.sessions_between(*self.days.day_range(day)), now)

    def plan_seconds(self, day: date, blocks: list[Block] | None = None) -> float:
        """The day's planned blocks, or ``daily_target_hours`` when it has none."""
        blocks = self.blocks(day) if blocks is None else blocks
        if blocks:
            return sum(b.minutes for b in blocks) * 60.0
        return self.settings.daily_target_hours * 3600.0

    # ------------------------------------------------------------------ the timer

    def _open_in(self, db: sqlite3.Connection, now: float) -> int | None:
        _complete_due(db, now)
        row = db.execute("SELECT id FROM focus_sessions WHERE state IN ('running', 'paused')"
                         ).fetchone()
        return int(row["id"]) if row is not None else None

    def _no_session(self, now: float) -> NoSession:
        last = self.last_ended()
        text = "no focus session is running"
        if last is not None and last.ended is not None and now - last.ended < 3600:
            text += (f" (the last one, {last.preset}, {last.state} at "
                     f"{self.days.clock_text(last.ended)})")
        return NoSession(text)

    def start_session(self, what: str | float | None = None, purpose: str | Purpose | None = None,
                      *, kind: str | None = None) -> Session:
        """Start a timer: a preset name, minutes (or '1h30m'), or the first preset.

        Raises AlreadyRunning when a session is open, in this process or another.
        """
        preset, kind, seconds = self._choose(what, kind)
        chosen = purpose if isinstance(purpose, Purpose) else self.resolve_purpose(purpose)
        return self._insert(preset, kind, seconds, chosen, None)

    def _insert(self, preset: str, kind: str, seconds: float, purpose: Purpose,
                block: int | None) -> Session:
        now = self.clock.time()
        new_id: int | None = None
        try:
            with self.store.transaction() as db:
                if self._open_in(db, now) is None:
                    cursor = db.execute(
                        "INSERT INTO focus_sessions (preset, kind, purpose_kind, purpose_ref,"
                        " purpose, started, planned, state, block)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, 'running', ?)",
                        (preset, kind, purpose.kind, purpose.ref, purpose.text, now, seconds,
                         block))
                    new_id = int(cursor.lastrowid or 0)
        except sqlite3.IntegrityError:  # the unique index: another process was quicker
            new_id = None
        self._key = None
        if new_id is None:
            running = self.current(now)
            if running is None:  # it ended in between; the caller may simply retry
                raise FocusError("another session was just started and ended; try again")
            raise AlreadyRunning(running, now)
        session = self.session(new_id)
        assert session is not None
        return session

    def _change(self, action: str) -> Session:
        now = self.clock.time()
        with self.store.transaction() as db:
            session_id = self._open_in(db, now)
            if session_id is None:
                raise self._no_session(now)
            state = db.execute("SELECT state FROM focus_sessions WHERE id = ?",
                               (session_id,)).fetchone()["state"]
            if action == "pause":
                if state == "paused":
                    raise FocusError("the session is paused already")
                db.execute("INSERT INTO focus_pauses (session, started) VALUES (?, ?)",
                           (session_id, now))
                db.execute("UPDATE focus_sessions SET state = 'paused' WHERE id = ?",
                           (session_id,))
            elif action == "resume":
                if state != "paused":
                    raise FocusError("the session is not paused")
                _close_pauses(db, session_id, now)
                db.execute("UPDATE focus_sessions SET state = 'running' WHERE id = ?",
                           (session_id,))
            else:  # finish | abandon
                _close_pauses(db, session_id, now)
                db.execute("UPDATE focus_sessions SET state = ?, ended = ?, notified = 1"
                           " WHERE id = ?",
                           ("finished" if action == "finish" else "abandoned", now, session_id))
        self._key = None
        self._after_change()
        session = self.session(session_id)
        assert session is not None
        return session

    def pause(self) -> Session:
        return self._change("pause")

    def resume(self) -> Session:
        return self._change("resume")

    def toggle_pause(self) -> Session:
        session = self.current()
        if session is not None and session.state == "paused":
            return self.resume()
        return self.pause()

    def finish(self) -> Session:
        """End the session now, early; its time so far counts."""
        return self._change("finish")

    def abandon(self) -> Session:
        """End the session now; its time does not count as focus."""
        return self._change("abandon")

    def extend(self, minutes: float = STEP_MINUTES) -> Session:
        if not 0 < minutes <= MAX_MINUTES:
            raise FocusError("extend by 1 minute to 24 hours")
        now = self.clock.time()
        with self.store.transaction() as db:
            session_id = self._open_in(db, now)
            if session_id is None:
                raise self._no_session(now)
            db.execute("UPDATE focus_sessions SET extended = extended + ? WHERE id = ?",
                       (minutes * 60.0, session_id))
        self._key = None
        session = self.session(session_id)
        assert session is not None
        return session

    def interrupt(self, note: str = "") -> Interruption:
        """Log an interruption of the open session; the timer goes on."""
        now = self.clock.time()
        with self.store.transaction() as db:
            session_id = self._open_in(db, now)
            if session_id is None:
                raise self._no_session(now)
            cursor = db.execute(
                "INSERT INTO focus_interruptions (session, time, note) VALUES (?, ?, ?)",
                (session_id, now, clean_text(note, NOTE_LIMIT)))
        self._key = None
        return Interruption(int(cursor.lastrowid or 0), now, clean_text(note, NOTE_LIMIT))

    def note_interruption(self, interruption_id: int, note: str) -> None:
        with self.store.transaction() as db:
            db.execute("UPDATE focus_interruptions SET note = ? WHERE id = ?",
                       (clean_text(note, NOTE_LIMIT), interruption_id))
        self._key = None

    # ------------------------------------------------------------------ status

    def status_text(self, now: float) -> str | None:
        """The compact countdown of every screen's status bar: 'deep 2:41:07'."""
        try:
            session = self.current(now)
        except sqlite3.Error:
            return None
        if session is None:
            return None
        text = f"{session.preset} {format_clock(session.remaining(now))}"
        return text + " paused" if session.state == "paused" else text

    def describe(self, session: Session, now: float) -> dict[str, Any]:
        """A session as JSON-ready data (``nomadlab focus status --json``)."""
        due = session.due()
        return {
            "id": session.id,
            "preset": session.preset,
            "kind": session.kind,
            "state": session.state,
            "purpose": session.purpose,
            "for": ({"kind": session.purpose_kind, "ref": session.purpose_ref}
                    if session.purpose_kind != "none" else None),
            "started": session.started,
            "ends": due,
            "ended": session.ended,
            "planned_seconds": session.planned,
            "extended_seconds": session.extended,
            "focus_seconds": round(session.focus_seconds(now), 3),
            "paused_seconds": round(session.paused_seconds(now), 3),
            "remaining_seconds": round(session.remaining(now), 3),
            "remaining": format_clock(session.remaining(now)),
            "interruptions": len(session.interruptions),
            "block": session.block,
        }

    def status(self, now: float | None = None) -> dict[str, Any]:
        now = self.clock.time() if now is None else now
        session = self.current(now)
        day = self.today(now)
        return {
            "state": session.state if session is not None else "idle",
            "now": now,
            "session": self.describe(session, now) if session is not None else None,
            "today": {"day": day.isoformat(), "focus_seconds": round(self.day_focus(day, now), 3),
                      "plan_seconds": self.plan_seconds(day)},
        }

    # ------------------------------------------------------------------ guarding the block

    def holding(self) -> bool:
        """The alert hold predicate: True while a deep-work session runs (not paused).

        Reads the cached session (refreshed when the store changed), never writes.
        """
        try:
            key = self._cache_key()
            if key != self._key:
                self._open = self._load_open()
                self._key = key
        except sqlite3.Error:
            return False
        session = self._open
        if session is None or session.kind != "deep" or session.state != "running":
            return False
        due = session.due()
        return due is not None and self.clock.time() < due

    def _after_change(self) -> None:
        """Held alerts go out once nothing holds them (a session ended or paused here
        or in another process)."""
        notifier = getattr(self.alerts, "notifier", None)
        if notifier is None or not notifier.held or self.holding():
            return
        if self._releasing is not None and not self._releasing.done():
            return
        import asyncio

        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._releasing = loop.create_task(notifier.release())

    def poll(self) -> list[Alert]:
        """One tick: complete a session whose time is up, send its end notice (once,
        across processes), release held alerts. Returns the notices sent."""
        now = self.clock.time()
        notices: list[Alert] = []
        try:
            self.current(now)
            key = self._cache_key()
            if self.alerts is not None and key != self._claimed_key:
                notices = self._claim_notices(now)
                self._claimed_key = self._cache_key()
        except sqlite3.Error as exc:
            log.warning("focus tick failed: %s", exc)
            return []
        if notices and self.alerts is not None:
            self.alerts.emit(notices)
        self._after_change()
        return notices

    def _claim_notices(self, now: float) -> list[Alert]:
        pending = self.store.query("SELECT id FROM focus_sessions WHERE notified = 0"
                                   " AND state = 'completed'")
        if not pending:
            return []
        with self.store.transaction() as db:
            rows = db.execute("SELECT id, ended FROM focus_sessions WHERE notified = 0"
                              " AND state = 'completed'").fetchall()
            db.executemany("UPDATE focus_sessions SET notified = 1 WHERE id = ?",
                           [(r["id"],) for r in rows])
        fresh = [int(r["id"]) for r in rows if now - float(r["ended"] or 0) <= NOTICE_WINDOW]
        out = []
        for session_id in fresh:
            session = self.session(session_id)
            if session is not None:
                out.append(self.end_notice(session))
        return out

    def end_notice(self, session: Session) -> Alert:
        """The alert that says a session's time is up: bell, desktop, webhooks."""
        when = session.ended if session.ended is not None else self.clock.time()
        label = KIND_LABELS.get(session.kind, session.kind)
        title = f"Focus: {session.preset} done"
        message = f"{human_duration(session.length)} of {label}"
        if session.purpose:
            message += f" for {session.purpose}"
        message += " is over."
        count = len(session.interruptions)
        if count:
            message += f" {count} interruption{'s' if count != 1 else ''}."
        message += " Take a break."
        return Alert(time=when, rule=FOCUS_RULE, severity="info", title=title, message=message,
                     extra={"session": session.id, "kind": session.kind})

    async def start(self) -> None:
        """Tick every ``tick_every`` seconds while the app runs."""
        import asyncio

        if self._ticker is None:
            self.poll()
            self._ticker = asyncio.get_running_loop().create_task(self._tick_forever())

    async def _tick_forever(self) -> None:
        import asyncio

        while True:
            await asyncio.sleep(self.tick_every)
            self.poll()

    async def stop(self) -> None:
        import asyncio

        for task in (self._ticker, self._releasing):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._ticker = None
        self._releasing = None

    # ------------------------------------------------------------------ the plan

    def blocks(self, day: date) -> list[Block]:
        rows = self.store.query("SELECT * FROM focus_blocks WHERE day = ? ORDER BY start, id",
                                (day.isoformat(),))
        return [_block(r) for r in rows]

    def block(self, block_id: int) -> Block | None:
        rows = self.store.query("SELECT * FROM focus_blocks WHERE id = ?", (block_id,))
        return _block(rows[0]) if rows else None

    def parse_span(self, text: str) -> tuple[int, int]:
        """'07:00-11:00', '19:00 60m', '7-11' -> (start, minutes) on a focus day.

        Times before ``day_starts`` are after midnight (the day goes on until then).
        """
        text = text.strip()
        match = re.fullmatch(r"([\d:]+)\s*(?:-|–|to)\s*([\d:]+)", text)
        if match is not None:
            start = self._on_day(parse_clock_time(match.group(1)))
            end = parse_clock_time(match.group(2))
            end = end + 24 * 60 if end < start % (24 * 60) else end
            minutes = end - start % (24 * 60)
        else:
            match = re.fullmatch(r"([\d:]+)\s*(?:\+|for)?\s*(\S+)", text)
            if match is None:
                raise FocusError(f"expected a time span like 07:00-11:00 or 19:00 60m, "
                                 f"got {text!r}")
            start = self._on_day(parse_clock_time(match.group(1)))
            spec = match.group(2)
            try:
                minutes = int(float(spec)) if re.fullmatch(r"\d+", spec) \
                    else int(parse_duration(spec) // 60)
            except ValueError:
                raise FocusError(f"not a length: {spec!r}") from None
        if minutes <= 0 or start + minutes > self.days.starts + 24 * 60:
            raise FocusError(f"{text!r} does not fit in one day (the day starts at "
                             f"{minute_text(self.days.starts)})")
        return start, minutes

    def _on_day(self, minute: int) -> int:
        return minute + 24 * 60 if minute < self.days.starts else minute

    def add_block(self, day: date, start: int, minutes: int, kind: str = "deep",
                  purpose: str | Purpose | None = None) -> Block:
        if kind not in FOCUS_KINDS:
            raise FocusError(f"unknown kind {kind!r} (kinds: {', '.join(FOCUS_KINDS)})")
        self._check_span(start, minutes)
        chosen = purpose if isinstance(purpose, Purpose) else self.resolve_purpose(purpose)
        with self.store.transaction() as db:
            cursor = db.execute(
                "INSERT INTO focus_blocks (day, start, minutes, kind, purpose_kind, purpose_ref,"
                " purpose) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (day.isoformat(), start, minutes, kind, chosen.kind, chosen.ref, chosen.text))
        block = self.block(int(cursor.lastrowid or 0))
        assert block is not None
        return block

    def _check_span(self, start: int, minutes: int) -> None:
        if minutes < 1 or start < self.days.starts or start + minutes > self.days.starts + 1440:
            edge = minute_text(self.days.starts)
            raise FocusError(f"a block must lie within its day ({edge} to {edge})")

    def update_block(self, block_id: int, *, start: int | None = None,
                     minutes: int | None = None, kind: str | None = None,
                     purpose: str | Purpose | None = None) -> Block:
        block = self.block(block_id)
        if block is None:
            raise FocusError(f"no block {block_id}")
        new_start = block.start if start is None else start
        new_minutes = block.minutes if minutes is None else minutes
        self._check_span(new_start, new_minutes)
        if kind is not None and kind not in FOCUS_KINDS:
            raise FocusError(f"unknown kind {kind!r} (kinds: {', '.join(FOCUS_KINDS)})")
        chosen = (Purpose(block.purpose_kind, block.purpose_ref, block.purpose) if purpose is None
                  else purpose if isinstance(purpose, Purpose) else self.resolve_purpose(purpose))
        with self.store.transaction() as db:
            db.execute("UPDATE focus_blocks SET start = ?, minutes = ?, kind = ?,"
                       " purpose_kind = ?, purpose_ref = ?, purpose = ? WHERE id = ?",
                       (new_start, new_minutes, kind or block.kind, chosen.kind, chosen.ref,
                        chosen.text, block_id))
        updated = self.block(block_id)
        assert updated is not None
        return updated

    def move_block(self, block_id: int, minutes: int) -> Block:
        """Earlier (negative) or later, kept inside the day."""
        block = self.block(block_id)
        if block is None:
            raise FocusError(f"no block {block_id}")
        low, high = self.days.starts, self.days.starts + 1440 - block.minutes
        return self.update_block(block_id, start=min(high, max(low, block.start + minutes)))

    def resize_block(self, block_id: int, minutes: int) -> Block:
        """Longer (positive) or shorter, at least STEP_MINUTES, kept inside the day."""
        block = self.block(block_id)
        if block is None:
            raise FocusError(f"no block {block_id}")
        high = self.days.starts + 1440 - block.start
        length = min(high, max(min(STEP_MINUTES, block.minutes), block.minutes + minutes))
        return self.update_block(block_id, minutes=length)

    def delete_block(self, block_id: int) -> None:
        with self.store.transaction() as db:
            db.execute("DELETE FROM focus_blocks WHERE id = ?", (block_id,))

    def start_block(self, block_id: int) -> Session:
        """Start a planned block's timer: its kind, its length, its purpose."""
        block = self.block(block_id)
        if block is None:
            raise FocusError(f"no block {block_id}")
        # The preset of that kind and length keeps its name; otherwise the kind names it.
        name = next((p.name for p in self.settings.presets
                     if p.kind == block.kind and p.minutes == block.minutes), block.kind)
        purpose = Purpose(block.purpose_kind, block.purpose_ref, block.purpose)
        return self._insert(name, block.kind, block.minutes * 60.0, purpose, block.id)

    def block_sessions(self, day: date) -> dict[int, list[Session]]:
        out: dict[int, list[Session]] = {}
        for session in self.sessions_between(*self.days.day_range(day)):
            if session.block is not None:
                out.setdefault(session.block, []).append(session)
        return out

    # ------------------------------------------------------------------ notes and retros

    def note(self, day: date) -> str:
        rows = self.store.query("SELECT note FROM focus_days WHERE day = ?", (day.isoformat(),))
        return str(rows[0]["note"]) if rows else ""

    def set_note(self, day: date, text: str) -> None:
        with self.store.transaction() as db:
            db.execute("INSERT INTO focus_days (day, note, updated) VALUES (?, ?, ?)"
                       " ON CONFLICT(day) DO UPDATE SET note = excluded.note,"
                       " updated = excluded.updated",
                       (day.isoformat(), clean_text(text, NOTE_LIMIT), self.clock.time()))

    def retro(self, week: str) -> Retro | None:
        rows = self.store.query("SELECT * FROM focus_retros WHERE week = ?", (week,))
        if not rows:
            return None
        r = rows[0]
        return Retro(r["week"], r["worked"], r["didnt"], r["change"])

    def set_retro(self, week: str, worked: str, didnt: str, change: str) -> Retro:
        self.days.parse_week(week)
        retro = Retro(week, clean_text(worked, NOTE_LIMIT), clean_text(didnt, NOTE_LIMIT),
                      clean_text(change, NOTE_LIMIT))
        with self.store.transaction() as db:
            db.execute("INSERT INTO focus_retros (week, worked, didnt, change, updated)"
                       " VALUES (?, ?, ?, ?, ?) ON CONFLICT(week) DO UPDATE SET"
                       " worked = excluded.worked, didnt = excluded.didnt,"
                       " change = excluded.change, updated = excluded.updated",
                       (week, retro.worked, retro.didnt, retro.change, self.clock.time()))
        return retro

    def week_of(self, now: float | None = None) -> str:
        return self.days.week_id(self.today(now))

    def retro_due(self, now: float | None = None) -> bool:
        """From the retro day on, while this week has no retro yet."""
        day = self.today(now)
        weekday = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday",
                   "sunday").index(self.settings.retro_day)
        retro = self.retro(self.days.week_id(day))
        return day.weekday() >= weekday and (retro is None or retro.empty)


# --------------------------------------------------------------------------- rows


def _session(r: sqlite3.Row) -> Session:
    return Session(id=int(r["id"]), preset=r["preset"], kind=r["kind"], purpose=r["purpose"],
                   purpose_kind=r["purpose_kind"], purpose_ref=r["purpose_ref"],
                   started=float(r["started"]), planned=float(r["planned"]),
                   extended=float(r["extended"]), state=r["state"],
                   ended=None if r["ended"] is None else float(r["ended"]),
                   block=None if r["block"] is None else int(r["block"]))


def _block(r: sqlite3.Row) -> Block:
    return Block(id=int(r["id"]), day=date.fromisoformat(r["day"]), start=int(r["start"]),
                 minutes=int(r["minutes"]), kind=r["kind"], purpose=r["purpose"],
                 purpose_kind=r["purpose_kind"], purpose_ref=r["purpose_ref"])


def _close_pauses(db: sqlite3.Connection, session_id: int, now: float) -> None:
    db.execute("UPDATE focus_pauses SET ended = MAX(started, ?) WHERE session = ?"
               " AND ended IS NULL", (now, session_id))


def _complete_due(db: sqlite3.Connection, now: float) -> list[int]:
    """Complete running sessions whose time ran out (inside a write transaction)."""
    done: list[int] = []
    for r in db.execute("SELECT id, started, planned, extended FROM focus_sessions"
                        " WHERE state = 'running'").fetchall():
        paused = db.execute("SELECT COALESCE(SUM(ended - started), 0) AS p FROM focus_pauses"
                            " WHERE session = ? AND ended IS NOT NULL", (r["id"],)).fetchone()["p"]
        due = float(r["started"]) + float(r["planned"]) + float(r["extended"]) + float(paused)
        if now >= due:
            db.execute("UPDATE focus_sessions SET state = 'completed', ended = ?"
                       " WHERE id = ? AND state = 'running'", (due, r["id"]))
            done.append(int(r["id"]))
    return done


def make_service(*, config: Config, store: Store, clock: Clock, fleet: Any = None,
                 logs: Any = None, alerts: AlertOutlet | None = None,
                 tz: tzinfo | None = None) -> FocusService:
    """The app's focus service; it becomes the alerts' hold policy."""
    service = FocusService(config, store, clock, tz=tz, alerts=alerts)
    if alerts is not None:
        alerts.notifier.hold = service.holding
    return service


__all__ = [
    "ENDED_STATES",
    "FOCUS_RULE",
    "OPEN_STATES",
    "AlertOutlet",
    "AlreadyRunning",
    "Block",
    "Days",
    "FocusError",
    "FocusService",
    "HeldAlerts",
    "Interruption",
    "NoSession",
    "Pause",
    "Purpose",
    "Retro",
    "Session",
    "format_clock",
    "format_hours",
    "make_service",
    "minute_text",
    "parse_clock_time",
]
