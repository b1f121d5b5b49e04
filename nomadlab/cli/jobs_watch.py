"""Slurm clusters in ``nomadlab watch``: job events as JSON lines and alerts."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from nomadlab.core.config import Config
from nomadlab.core.jobs.alerts import job_alerts, job_rules
from nomadlab.core.jobs.events import JobEvent
from nomadlab.core.jobs.model import ClusterSnapshot
from nomadlab.core.jobs.report import iso, job_json
from nomadlab.notify.hub import AlertHub
from nomadlab.remote.fleet import Fleet
from nomadlab.remote.slurm import ClusterWatch, make_clients


class JobsWatch:
    """Polls the configured clusters; each job event becomes a ``job`` line and,
    through the hub, an alert (stored, delivered, held in deep focus when info)."""

    def __init__(self, config: Config, fleet: Fleet, hub: AlertHub,
                 emit: Callable[[dict[str, Any]], None],
                 sleep: Callable[[float], Awaitable[None]] | None = None) -> None:
        self.hub = hub
        self.emit = emit
        self.rules = job_rules(config)
        self.clock = fleet.clock
        clients = make_clients(config, fleet.connector, shared=self._shared(fleet),
                               clock=fleet.clock)
        self.watch = ClusterWatch(clients, on_snapshot=self._snapshot, on_events=self._events,
                                  sleep=sleep or asyncio.sleep)
        self._states: dict[str, str] = {}

    @staticmethod
    def _shared(fleet: Fleet) -> Callable[[str], Any]:
        def connection(host: str) -> Any:
            sup = fleet.supervisors.get(host)
            return sup.connection if sup is not None else None
        return connection

    def _snapshot(self, snap: ClusterSnapshot) -> None:
        state = str(snap.state)
        if self._states.get(snap.name) != state:
            self._states[snap.name] = state
            self.emit({"event": "cluster", "time": iso(self.clock.time()),
                       "cluster": snap.name, "state": state, "error": snap.error})

    def _events(self, events: list[JobEvent]) -> None:
        now = self.clock.time()
        for event in events:
            self.emit({"event": "job", "time": iso(now), "kind": event.kind,
                       "cluster": event.job.cluster, **job_json(event.job, now)})
        self.hub.emit(job_alerts(events, self.rules, now))

    def start(self) -> None:
        if self.watch.clients:
            self.watch.start()

    async def stop(self) -> None:
        await self.watch.stop()
