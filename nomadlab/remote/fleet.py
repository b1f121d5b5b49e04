"""The fleet: every host's supervisor, the local machine, and who listens to them.

Data flows one way: supervisors and the local sampler produce statuses and samples;
the fleet keeps the latest of each, feeds the sparkline history and the per-minute
aggregates, and tells its listeners (the UI, ``nomadlab status``, the alert engine).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Protocol

from nomadlab.core.aggregate import MinuteAggregator
from nomadlab.core.clock import SYSTEM_CLOCK, Clock, WakeDetector
from nomadlab.core.config import Config, HostConfig
from nomadlab.core.energy import EnergyRecorder
from nomadlab.core.history import FleetHistory
from nomadlab.core.model import LOCAL_HOST, HostSample, HostState, HostStatus
from nomadlab.core.store import Store
from nomadlab.remote.local import LocalSampler
from nomadlab.remote.ssh import Connector, KeyStore, trust_host_key
from nomadlab.remote.supervisor import HostSupervisor


class FleetListener(Protocol):
    def fleet_status(self, status: HostStatus) -> None: ...

    def fleet_sample(self, sample: HostSample) -> None: ...


class Fleet:
    def __init__(self, config: Config, *, store: Store | None = None,
                 clock: Clock = SYSTEM_CLOCK, keys: KeyStore | None = None,
                 hosts: Iterable[str] | None = None, local: bool | None = None,
                 local_gpus: object = None) -> None:
        self.config = config
        self.clock = clock
        self.store = store
        self.keys = keys if keys is not None else KeyStore()
        self.connector = Connector(config.ssh, config.hosts, self.keys)
        self.history = FleetHistory(config.fleet.history)
        self.aggregator = MinuteAggregator(store)
        self.energy = EnergyRecorder(store, {h.name: h.kwh_price for h in config.hosts})
        self.statuses: dict[str, HostStatus] = {}
        self.latest: dict[str, HostSample] = {}
        self.listeners: list[FleetListener] = []
        self.costs = {h.name: h.hourly_cost for h in config.hosts}
        wanted = set(hosts) if hosts is not None else None
        self.supervisors: dict[str, HostSupervisor] = {}
        for host in config.hosts:
            if not host.enabled or (wanted is not None and host.name not in wanted):
                continue
            self.supervisors[host.name] = self._supervisor(host)
        show_local = config.show_local if local is None else local
        if wanted is not None and local is None:
            show_local = LOCAL_HOST in wanted
        self.local = (
            LocalSampler(clock, config.fleet.interval, self.publish_status, self.publish_sample,
                         local_gpus)
            if show_local else None
        )
        for name, sup in self.supervisors.items():
            self.statuses[name] = sup.status
        if self.local is not None:
            self.statuses[LOCAL_HOST] = self.local.status
        self._wake_task: asyncio.Task[None] | None = None
        self.wake = WakeDetector(clock)

    def _supervisor(self, host: HostConfig) -> HostSupervisor:
        return HostSupervisor(
            host, self.connector, self.config.ssh, self.clock,
            interval=self.config.fleet.interval,
            stale_after=self.config.fleet.stale_seconds,
            on_status=self.publish_status, on_sample=self.publish_sample,
        )

    # ------------------------------------------------------------------ events

    def publish_status(self, status: HostStatus) -> None:
        """A host's new state (from its supervisor, the local sampler, or a replay)."""
        self.statuses[status.name] = status
        for listener in list(self.listeners):
            listener.fleet_status(status)

    def publish_sample(self, sample: HostSample) -> None:
        """A new sample: kept as the latest, added to history and aggregates, passed on."""
        self.latest[sample.host] = sample
        self.history.add(sample)
        try:
            self.aggregator.add(sample, self.costs.get(sample.host))
        except Exception:  # a locked or full disk must not stop monitoring
            pass
        try:
            self.energy.add(sample)
        except Exception:  # the same: energy figures are not worth a lost sample
            pass
        for listener in list(self.listeners):
            listener.fleet_sample(sample)

    # ------------------------------------------------------------------ lifecycle

    def names(self) -> list[str]:
        return list(self.statuses)

    async def start(self) -> None:
        if self.local is not None:
            self.local.start()
        for sup in self.supervisors.values():
            sup.start()
        self._wake_task = asyncio.get_running_loop().create_task(self._watch_sleep())

    async def stop(self) -> None:
        if self._wake_task is not None:
            self._wake_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._wake_task
        await asyncio.gather(*(s.stop() for s in self.supervisors.values()),
                             return_exceptions=True)
        if self.local is not None:
            await self.local.stop()
        await self.connector.close()
        with contextlib.suppress(Exception):
            self.aggregator.flush()

    async def _watch_sleep(self, every: float = 5.0) -> None:
        while True:
            await asyncio.sleep(every)
            if self.wake.check():
                self.recheck_all()

    def recheck_all(self) -> None:
        """After a sleep: every host is re-checked at once, not at its next backoff."""
        for sup in self.supervisors.values():
            sup.recheck()

    # ------------------------------------------------------------------ user actions

    def retry(self, name: str) -> None:
        sup = self.supervisors.get(name)
        if sup is None:
            raise KeyError(name)
        sup.backoff.reset()
        sup.wake()

    def trust(self, name: str) -> str:
        """Accept the unknown host key the host is waiting on; returns its fingerprint."""
        status = self.statuses.get(name)
        if status is None or status.hostkey is None:
            raise ValueError(f"{name} is not waiting on a host key")
        trust_host_key(status.hostkey)  # refuses a changed key
        for other, st in self.statuses.items():
            if st.hostkey is not None and st.hostkey.line == status.hostkey.line:
                self.supervisors[other].wake()
        return status.hostkey.fingerprint

    def unlock(self, key_path: str, passphrase: str, remember: bool = False) -> str | None:
        """Decrypt a key; every host waiting on it retries. Raises ValueError if wrong."""
        warning = self.keys.unlock(key_path, passphrase, remember)
        for name, status in self.statuses.items():
            if status.state is HostState.PASSPHRASE and status.key_path == key_path:
                self.supervisors[name].wake()
        return warning

    def set_interval(self, interval: float) -> None:
        for sup in self.supervisors.values():
            sup.set_interval(interval)
        if self.local is not None:
            self.local.interval = interval
