"""The jobs feature's service for the TUI: clusters polled, snapshots kept, events
turned into alerts, the user's actions carried out.

Made by the feature registry (nomadlab/features.py, ``make_service``), started and
stopped with the app.
Views subscribe for a poke when a snapshot changes; they read ``snapshots``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import asyncssh

from nomadlab.core.clock import SYSTEM_CLOCK, Clock
from nomadlab.core.config import Config
from nomadlab.core.jobs.alerts import job_alerts, job_rules
from nomadlab.core.jobs.events import JobEvent
from nomadlab.core.jobs.history import JobHistory
from nomadlab.core.jobs.model import ClusterSnapshot, Job
from nomadlab.core.store import Store
from nomadlab.remote.fleet import Fleet
from nomadlab.remote.slurm import ClusterClient, ClusterWatch, SlurmError, make_clients

if TYPE_CHECKING:
    from nomadlab.notify.hub import AlertHub


class JobsService:
    def __init__(self, config: Config, fleet: Fleet, *, store: Store | None = None,
                 alerts: AlertHub | None = None, clock: Clock = SYSTEM_CLOCK) -> None:
        self.config = config
        self.clock = clock
        self.alerts = alerts
        self.rules = job_rules(config)
        self.history = JobHistory(store) if store is not None else None

        def shared(host: str) -> asyncssh.SSHClientConnection | None:
            sup = fleet.supervisors.get(host)
            return sup.connection if sup is not None else None

        self.clients: dict[str, ClusterClient] = {
            c.cluster.name: c for c in make_clients(config, fleet.connector, shared=shared,
                                                    clock=clock)}
        self.snapshots: dict[str, ClusterSnapshot] = {
            name: client.snapshot for name, client in self.clients.items()}
        self.version = 0
        self._subscribers: list[Callable[[], None]] = []
        self._event_listeners: list[Callable[[list[JobEvent]], None]] = []
        self.watch = ClusterWatch(list(self.clients.values()), on_snapshot=self.apply,
                                  on_events=self.on_events)

    # ------------------------------------------------------------------ wiring

    def subscribe(self, callback: Callable[[], None]) -> None:
        self._subscribers.append(callback)

    def unsubscribe(self, callback: Callable[[], None]) -> None:
        with contextlib.suppress(ValueError):
            self._subscribers.remove(callback)

    def listen(self, callback: Callable[[list[JobEvent]], None]) -> None:
        """``callback(events)`` for every batch of job events (the board follows jobs)."""
        self._event_listeners.append(callback)

    def apply(self, snapshot: ClusterSnapshot) -> None:
        """A cluster's new state (from a poll; tests and the demo hand one in)."""
        self.snapshots[snapshot.name] = snapshot
        self.version += 1
        if self.history is not None:
            with contextlib.suppress(Exception):
                self.history.record(snapshot.jobs, snapshot.user, self.clock.time())
        for callback in list(self._subscribers):
            callback()

    def on_events(self, events: list[JobEvent]) -> None:
        if self.history is not None:
            with contextlib.suppress(Exception):
                self.history.record([e.job for e in events], None, self.clock.time())
        if self.alerts is not None:
            self.alerts.emit(job_alerts(events, self.rules, self.clock.time()))
        for callback in list(self._event_listeners):
            callback(events)

    async def start(self) -> None:
        if self.clients:
            self.watch.start()

    async def stop(self) -> None:
        await self.watch.stop()

    # ------------------------------------------------------------------ reading

    def jobs(self) -> list[Job]:
        return [job for snap in self.snapshots.values() for job in snap.jobs]

    def find(self, cluster: str, ident: str) -> Job | None:
        snap = self.snapshots.get(cluster)
        if snap is None:
            return None
        return next((j for j in snap.jobs if j.id == ident or str(j.job_id) == ident), None)

    def is_mine(self, job: Job) -> bool:
        snap = self.snapshots.get(job.cluster)
        return snap is not None and snap.user is not None and job.user == snap.user

    # ------------------------------------------------------------------ acting

    def _client(self, cluster: str) -> ClusterClient:
        client = self.clients.get(cluster)
        if client is None:
            raise SlurmError(f"unknown cluster {cluster!r}")
        return client

    async def act(self, action: str, job: Job) -> str:
        client = self._client(job.cluster)
        done = await client.act(action, job.id)
        return f"{action}: {done.key} ({done.name})"

    async def detail(self, job: Job) -> str:
        return await self._client(job.cluster).detail(job.id)

    async def output_path(self, job: Job, stream: str = "stdout") -> str | None:
        return await self._client(job.cluster).output_path(job.id, stream)

    async def job_gpus(self, job: Job, sink: Any, interval: float = 1.0) -> str:
        """Stream the GPUs of ``job`` (the agent inside its allocation) to ``sink``
        until cancelled; returns why the stream ended."""
        from nomadlab.remote.slurm import SshRunner
        from nomadlab.remote.slurm_gpus import JobAgentSession

        client = self._client(job.cluster)
        runner = client.runner
        if not isinstance(runner, SshRunner):
            raise SlurmError("this cluster has no SSH connection")
        conn = await runner.connection()
        session = JobAgentSession(conn, job.job_id, job.key, sink, self.clock,
                                  interval=interval, python=runner.host.python)
        return await session.run()

    def login_host(self, cluster: str) -> str | None:
        conf = self.config.cluster(cluster)
        return conf.host if conf is not None else None


def make_service(*, config: Config, store: Store, clock: Clock, fleet: Fleet,
                 alerts: AlertHub | None = None) -> JobsService:
    return JobsService(config, fleet, store=store, alerts=alerts, clock=clock)
