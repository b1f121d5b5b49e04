"""Focus: sessions and presets read from the store (with the completion of sessions
whose time ran out), purposes resolved against the board and papers; the base of
:class:`~nomadlab.core.focus.service.FocusService`."""

from __future__ import annotations

import logging
import re
import sqlite3
from collections.abc import Callable, Iterable
from datetime import date, tzinfo
from typing import TYPE_CHECKING, Any

from nomadlab.core.alerts import clean_text
from nomadlab.core.clock import SYSTEM_CLOCK, Clock
from nomadlab.core.config import FOCUS_KINDS, Config, FocusPreset, parse_duration
from nomadlab.core.focus.days import Days
from nomadlab.core.focus.model import (
    MAX_MINUTES,
    PURPOSE_LIMIT,
    AlertOutlet,
    Block,
    FocusError,
    Interruption,
    Pause,
    Purpose,
    Session,
)
from nomadlab.core.store import Store
from nomadlab.core.tasks import BackgroundTask

if TYPE_CHECKING:
    from nomadlab.core.features import BoardActivity, PaperActivity

log = logging.getLogger(__name__)


class FocusRecords:
    """Sessions, presets and purposes over the store."""

    def __init__(self, config: Config, store: Store, clock: Clock = SYSTEM_CLOCK, *,
                 tz: tzinfo | None = None, alerts: AlertOutlet | None = None,
                 board: BoardActivity | None = None, papers: PaperActivity | None = None,
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
        self._ticker = BackgroundTask("focus ticker")
        self._releasing = BackgroundTask("focus: release held alerts")

    def link(self, *, board: BoardActivity | None = None,
             papers: PaperActivity | None = None) -> None:
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
            title = self._title(self.board.card_title if self.board else None, int(ref))
            if title is None and self.board is not None:
                raise FocusError(f"there is no card {ref} on the board")
            return Purpose("card", ref, f"#{ref} {title}" if title else f"card #{ref}")
        paper = re.fullmatch(r"paper:#?(\d+)", text, re.IGNORECASE)
        if paper is not None:
            ref = paper.group(1)
            title = self._title(self.papers.paper_title if self.papers else None, int(ref))
            if title is None and self.papers is not None:
                raise FocusError(f"there is no paper {ref} in the queue")
            return Purpose("paper", ref, f"paper {ref}: {title}" if title else f"paper {ref}")
        return Purpose("text", None, text)

    @staticmethod
    def _title(function: Callable[[int], str | None] | None, ref: int) -> str | None:
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

    def blocks(self, day: date) -> list[Block]:
        rows = self.store.query("SELECT * FROM focus_blocks WHERE day = ? ORDER BY start, id",
                                (day.isoformat(),))
        return [_block(r) for r in rows]

    def plan_seconds(self, day: date, blocks: list[Block] | None = None) -> float:
        """The day's planned blocks, or ``daily_target_hours`` when it has none."""
        blocks = self.blocks(day) if blocks is None else blocks
        if blocks:
            return sum(b.minutes for b in blocks) * 60.0
        return self.settings.daily_target_hours * 3600.0


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
