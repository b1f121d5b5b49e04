"""Focus: the timer (start, pause, extend, stop a session), its status, and guarding
the block: the hold policy for alerts and the end-of-session notice."""

from __future__ import annotations

import logging
import sqlite3
from typing import TYPE_CHECKING, Any

from nomadlab.core.alerts import Alert, clean_text
from nomadlab.core.durations import compact as human_duration
from nomadlab.core.durations import countdown as format_clock
from nomadlab.core.focus.model import (
    FOCUS_RULE,
    KIND_LABELS,
    MAX_MINUTES,
    NOTE_LIMIT,
    NOTICE_WINDOW,
    STEP_MINUTES,
    AlreadyRunning,
    FocusError,
    Interruption,
    NoSession,
    Purpose,
    Session,
)
from nomadlab.core.focus.records import FocusRecords, _close_pauses, _complete_due

if TYPE_CHECKING:  # asyncio is imported where used: `focus status --short` is sync
    pass

log = logging.getLogger(__name__)


class FocusTimer(FocusRecords):
    """The open session and its notices."""

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
        notifier = self.alerts.notifier if self.alerts is not None else None
        if notifier is None or not notifier.held or self.holding():
            return
        if self._releasing.running:
            return
        import asyncio

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return  # a command outside the app: nothing to release into
        self._releasing.start(notifier.release)

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
        if not self._ticker.running:
            self.poll()
            self._ticker.start(self._tick_forever)

    async def _tick_forever(self) -> None:
        import asyncio

        while True:
            await asyncio.sleep(self.tick_every)
            self.poll()

    async def stop(self) -> None:
        await self._ticker.stop()
        await self._releasing.stop()
