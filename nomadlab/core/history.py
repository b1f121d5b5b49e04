"""Recent history per GPU for sparklines: bounded ring buffers, bucketed on demand."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from nomadlab.core.model import HostSample

BARS = " ▁▂▃▄▅▆▇█"


@dataclass(slots=True)
class Series:
    """(time, value) points, oldest first, at most ``keep`` seconds old."""

    keep: float
    points: deque[tuple[float, float]] = field(default_factory=deque)

    def add(self, t: float, value: float | None) -> None:
        if value is None:
            return
        if self.points and t < self.points[-1][0]:
            self.points.clear()  # the host's clock went backwards: start over
        self.points.append((t, value))
        horizon = t - self.keep
        while self.points and self.points[0][0] < horizon:
            self.points.popleft()

    def buckets(self, now: float, width: int, span: float) -> list[float | None]:
        """``width`` values covering the last ``span`` seconds (max per bucket)."""
        if width <= 0:
            return []
        out: list[float | None] = [None] * width
        start = now - span
        step = span / width
        for t, value in self.points:
            if t < start:
                continue
            slot = min(width - 1, int((t - start) / step))
            current = out[slot]
            out[slot] = value if current is None else max(current, value)
        return out

    @property
    def latest(self) -> float | None:
        return self.points[-1][1] if self.points else None


def sparkline(values: list[float | None], maximum: float = 100.0) -> str:
    """Block characters for values in [0, maximum]; a gap where there was no sample."""
    chars = []
    for value in values:
        if value is None:
            chars.append(" ")
            continue
        level = 0 if maximum <= 0 else max(0.0, min(1.0, value / maximum))
        chars.append(BARS[1 + round(level * (len(BARS) - 2))] if level > 0 else BARS[1])
    return "".join(chars)


class FleetHistory:
    """Utilization and memory history of every GPU, keyed by (host, gpu index)."""

    def __init__(self, keep: float = 600.0) -> None:
        self.keep = keep
        self.util: dict[tuple[str, int], Series] = {}
        self.memory: dict[tuple[str, int], Series] = {}
        self.host_cpu: dict[str, Series] = {}

    def add(self, sample: HostSample) -> None:
        t = sample.received or sample.time
        self.host_cpu.setdefault(sample.host, Series(self.keep)).add(t, sample.cpu_percent)
        for gpu in sample.gpus:
            key = (sample.host, gpu.index)
            self.util.setdefault(key, Series(self.keep)).add(t, gpu.utilization)
            fraction = gpu.memory_fraction
            self.memory.setdefault(key, Series(self.keep)).add(
                t, None if fraction is None else 100.0 * fraction)

    def add_points(self, host: str, gpu: int, util: list[tuple[float, float]],
                   memory: list[tuple[float, float]]) -> None:
        """Past points of one GPU (a source's history, oldest first) before any sample."""
        key = (host, gpu)
        for table, points in ((self.util, util), (self.memory, memory)):
            series = table.setdefault(key, Series(self.keep))
            for t, value in points:
                series.add(t, value)

    def forget(self, host: str) -> None:
        for table in (self.util, self.memory):
            for key in [k for k in table if k[0] == host]:
                del table[key]
        self.host_cpu.pop(host, None)
