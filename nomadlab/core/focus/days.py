"""Focus days (starting at ``[focus] day_starts``) and ISO weeks in a time zone."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta, tzinfo
from datetime import time as dtime

from nomadlab.core.focus.model import FocusError, parse_clock_time


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
