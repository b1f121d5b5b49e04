"""Time, injectable: production uses the system clocks, tests a clock they move."""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def time(self) -> float:
        """Wall clock, seconds since the epoch."""
        ...

    def monotonic(self) -> float:
        """Monotonic seconds; pauses while the machine sleeps on some systems."""
        ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()


class ManualClock:
    """A clock that moves only when told to (tests, snapshots, replays)."""

    def __init__(self, start: float = 1_790_000_000.0, monotonic: float = 1000.0) -> None:
        self._wall = start
        self._mono = monotonic

    def time(self) -> float:
        return self._wall

    def monotonic(self) -> float:
        return self._mono

    def advance(self, seconds: float) -> None:
        self._wall += seconds
        self._mono += seconds

    def jump_wall(self, seconds: float) -> None:
        """Wall time moves but monotonic does not: what a laptop waking up looks like."""
        self._wall += seconds


SYSTEM_CLOCK = SystemClock()


class WakeDetector:
    """Notices that the machine slept: wall time moved much more than monotonic time."""

    def __init__(self, clock: Clock, threshold: float = 10.0) -> None:
        self.clock = clock
        self.threshold = threshold
        self._wall = clock.time()
        self._mono = clock.monotonic()

    def check(self) -> bool:
        wall, mono = self.clock.time(), self.clock.monotonic()
        gap = (wall - self._wall) - (mono - self._mono)
        self._wall, self._mono = wall, mono
        return gap > self.threshold
