"""Per-minute aggregates of every GPU, kept in the store for GPU-hour reports.

A minute is written once it is over (the first sample of a later minute closes it),
so the hot path is a few additions per GPU per sample and one small transaction per
minute for the whole fleet.
"""

from __future__ import annotations

from dataclasses import dataclass

from nomadlab.core.model import HostSample
from nomadlab.core.store import Store


@dataclass(slots=True)
class _Acc:
    """One GPU's sums over the current minute, written as one row when the minute ends."""
    host: str
    uuid: str
    index: int
    name: str
    minute: int
    samples: int = 0
    util_sum: float = 0.0
    util_n: int = 0
    mem_sum: float = 0.0
    mem_n: int = 0
    mem_total: float | None = None
    power_sum: float = 0.0
    power_n: int = 0
    busy: bool = False
    hourly_cost: float | None = None
    gpus_on_host: int = 1


class MinuteAggregator:
    def __init__(self, store: Store | None) -> None:
        self.store = store
        self._open: dict[tuple[str, str], _Acc] = {}
        self._done: list[_Acc] = []
        self._swept = 0  # the minute of the last sweep for hosts that went quiet

    def add(self, sample: HostSample, hourly_cost: float | None = None) -> None:
        minute = int((sample.received or sample.time) // 60)
        for gpu in sample.gpus:
            key = (sample.host, gpu.uuid or f"#{gpu.index}")
            acc = self._open.get(key)
            if acc is not None and acc.minute != minute:
                self._done.append(acc)
                acc = None
            if acc is None:
                acc = _Acc(sample.host, key[1], gpu.index, gpu.name, minute)
                self._open[key] = acc
            acc.samples += 1
            acc.gpus_on_host = len(sample.gpus)
            acc.hourly_cost = hourly_cost
            if gpu.utilization is not None:
                acc.util_sum += gpu.utilization
                acc.util_n += 1
            if gpu.memory_used_mib is not None:
                acc.mem_sum += gpu.memory_used_mib
                acc.mem_n += 1
            if gpu.memory_total_mib is not None:
                acc.mem_total = gpu.memory_total_mib
            if gpu.power_w is not None:
                acc.power_sum += gpu.power_w
                acc.power_n += 1
            if gpu.processes:
                acc.busy = True
        if minute > self._swept:
            # Once a minute: close the minutes of hosts that stopped sending samples.
            self._swept = minute
            for key, acc in list(self._open.items()):
                if acc.minute < minute:
                    self._done.append(acc)
                    del self._open[key]
        if self._done:
            self.flush(closed_only=True)

    def flush(self, closed_only: bool = False) -> int:
        """Write finished minutes (and, at exit, the open ones too)."""
        rows = list(self._done)
        self._done.clear()
        if not closed_only:
            rows.extend(self._open.values())
            self._open.clear()
        if self.store is None or not rows:
            return 0
        with self.store.transaction("fleet") as db:
            db.executemany(
                "INSERT INTO gpu_minutes (host, gpu_uuid, gpu_index, gpu_name, minute, samples,"
                " util_avg, memory_avg_mib, memory_total_mib, power_avg_w, busy, hourly_cost,"
                " gpus_on_host) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)"
                # The same minute written twice (a restart within a minute): combine,
                # weighting each average by its sample count.
                " ON CONFLICT(host, gpu_uuid, minute) DO UPDATE SET"
                " util_avg = " + _combine("util_avg") + ","
                " memory_avg_mib = " + _combine("memory_avg_mib") + ","
                " power_avg_w = " + _combine("power_avg_w") + ","
                " samples = samples + excluded.samples,"
                " busy = MAX(busy, excluded.busy)",
                [
                    (
                        a.host, a.uuid, a.index, a.name, a.minute, a.samples,
                        a.util_sum / a.util_n if a.util_n else None,
                        a.mem_sum / a.mem_n if a.mem_n else None,
                        a.mem_total,
                        a.power_sum / a.power_n if a.power_n else None,
                        int(a.busy), a.hourly_cost, a.gpus_on_host,
                    )
                    for a in rows
                ],
            )
        return len(rows)


def _combine(column: str) -> str:
    return (f"CASE WHEN {column} IS NULL THEN excluded.{column}"
            f" WHEN excluded.{column} IS NULL THEN {column}"
            f" ELSE ({column} * samples + excluded.{column} * excluded.samples)"
            f" / (samples + excluded.samples) END")


def gpu_hours(store: Store, start_minute: int, end_minute: int,
              idle_utilization: float = 5.0) -> list[dict[str, float | str]]:
    """GPU hours used and idle per host in [start, end), with the idle cost.

    A GPU-minute counts as used when a process ran on it or its utilization was above
    ``idle_utilization``; idle cost spreads the host's hourly cost over its GPUs.
    """
    rows = store.query(
        "SELECT host,"
        " SUM(CASE WHEN busy = 1 OR COALESCE(util_avg, 0) > ? THEN 1 ELSE 0 END) AS used,"
        " SUM(CASE WHEN busy = 1 OR COALESCE(util_avg, 0) > ? THEN 0 ELSE 1 END) AS idle,"
        " SUM(CASE WHEN busy = 1 OR COALESCE(util_avg, 0) > ? THEN 0"
        "     ELSE COALESCE(hourly_cost, 0) / gpus_on_host / 60.0 END) AS idle_cost,"
        " SUM(COALESCE(hourly_cost, 0) / gpus_on_host / 60.0) AS cost"
        " FROM gpu_minutes WHERE minute >= ? AND minute < ? GROUP BY host ORDER BY host",
        (idle_utilization, idle_utilization, idle_utilization, start_minute, end_minute),
    )
    return [
        {
            "host": r["host"],
            "used_hours": r["used"] / 60.0,
            "idle_hours": r["idle"] / 60.0,
            "idle_cost": r["idle_cost"] or 0.0,
            "cost": r["cost"] or 0.0,
        }
        for r in rows
    ]
