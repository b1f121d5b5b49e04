"""GPU energy: the driver's total-energy counter, kept once a minute, summed into kWh.

``EnergyRecorder`` writes the newest counter reading of each GPU once per minute
(table ``gpu_energy``); ``energy_by_host`` turns readings into kWh per host over a
span, with its cost where the host has a ``kwh_price``. A counter that went down
(driver reloaded, GPU reset) starts over: the drop is not counted as energy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from nomadlab.core.model import HostSample
from nomadlab.core.store import Store

MJ_PER_KWH = 3.6e9


@dataclass(slots=True, frozen=True)
class HostEnergy:
    """A host's energy over a period: kWh and their cost."""
    host: str
    kwh: float
    cost: float | None  # None: no kwh_price for this host


class EnergyRecorder:
    def __init__(self, store: Store | None, prices: Mapping[str, float | None] | None = None
                 ) -> None:
        self.store = store
        self.prices: dict[str, float | None] = dict(prices or {})
        self._written: dict[tuple[str, str], int] = {}  # (host, gpu) -> last minute written

    def add(self, sample: HostSample) -> int:
        """Record this sample's counters if their minute is not written yet; rows written."""
        if self.store is None:
            return 0
        minute = int((sample.received or sample.time) // 60)
        rows = []
        for gpu in sample.gpus:
            if gpu.health is None or gpu.health.energy_mj is None:
                continue
            key = (sample.host, gpu.uuid or f"#{gpu.index}")
            if self._written.get(key) == minute:
                continue
            self._written[key] = minute
            rows.append((sample.host, key[1], minute, gpu.health.energy_mj,
                         self.prices.get(sample.host)))
        if rows:
            with self.store.transaction("energy") as db:
                db.executemany(
                    "INSERT INTO gpu_energy (host, gpu_uuid, minute, energy_mj, kwh_price)"
                    " VALUES (?,?,?,?,?) ON CONFLICT(host, gpu_uuid, minute) DO UPDATE SET"
                    " energy_mj = excluded.energy_mj, kwh_price = excluded.kwh_price", rows)
        return len(rows)


def energy_by_host(store: Store, start_minute: int, end_minute: int) -> dict[str, HostEnergy]:
    """kWh per host used in [start, end) (between readings inside it), with its cost."""
    rows = store.query(
        "SELECT host, SUM(delta) AS mj, SUM(delta * kwh_price) AS priced,"
        " SUM(CASE WHEN kwh_price IS NULL THEN delta ELSE 0 END) AS unpriced FROM ("
        "  SELECT host, kwh_price, energy_mj - LAG(energy_mj) OVER"
        "   (PARTITION BY host, gpu_uuid ORDER BY minute) AS delta"
        "  FROM gpu_energy WHERE minute >= ? AND minute < ?"
        ") WHERE delta > 0 GROUP BY host ORDER BY host",
        (start_minute, end_minute),
    )
    out: dict[str, HostEnergy] = {}
    for r in rows:
        kwh = (r["mj"] or 0) / MJ_PER_KWH
        priced = r["priced"]
        cost = None if priced is None or r["unpriced"] else priced / MJ_PER_KWH
        out[r["host"]] = HostEnergy(r["host"], kwh, cost)
    return out
