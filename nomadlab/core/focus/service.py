"""Focus: the daily plan, notes and weekly retros on top of the timer; the service
the UI and the CLI use, and :func:`make_service` (the app's wiring)."""

from __future__ import annotations

import re
from datetime import date, tzinfo

from nomadlab.core.alerts import clean_text
from nomadlab.core.clock import Clock
from nomadlab.core.config import FOCUS_KINDS, Config, parse_duration
from nomadlab.core.focus.model import (
    NOTE_LIMIT,
    STEP_MINUTES,
    AlertOutlet,
    Block,
    FocusError,
    Purpose,
    Retro,
    Session,
    minute_text,
    parse_clock_time,
)
from nomadlab.core.focus.records import _block
from nomadlab.core.focus.timer import FocusTimer
from nomadlab.core.store import Store


class FocusService(FocusTimer):
    """Timers, plans, notes and retros over the store; the hold policy for alerts.

    ``board`` and ``papers`` are the other features' services when they exist
    (core/features.py: :class:`BoardActivity`, :class:`PaperActivity`); :meth:`link`
    sets them.
    """

    # ------------------------------------------------------------------ the plan

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


def make_service(*, config: Config, store: Store, clock: Clock, fleet: object = None,
                 logs: object = None, alerts: AlertOutlet | None = None,
                 tz: tzinfo | None = None) -> FocusService:
    """The app's focus service; it becomes the alerts' hold policy."""
    service = FocusService(config, store, clock, tz=tz, alerts=alerts)
    if alerts is not None:
        alerts.notifier.hold = service.holding
    return service
