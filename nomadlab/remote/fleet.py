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
from nomadlab.remote.hostkeys import trust_host_key
from nomadlab.remote.local import LocalSampler
from nomadlab.remote.promsource import PrometheusSource, SourceStatus
from nomadlab.remote.ssh import Connector
from nomadlab.remote.ssh_keys import KeyStore
from nomadlab.remote.supervisor import HostSupervisor

STOP_TIMEOUT = 5.0  # seconds stop() waits for the hosts and sources to let go


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
        # [[sources]]: hosts from a monitoring system (only when no host list was asked for)
        self.sources: dict[str, PrometheusSource] = {}
        self.source_statuses: dict[str, SourceStatus] = {}
        self.host_source: dict[str, str] = {}  # host -> the source that feeds it
        self.ssh_latest: dict[str, HostSample] = {}  # hosts in [[hosts]] and a source
        for source in config.sources if wanted is None else []:
            self.sources[source.name] = PrometheusSource(
                source, clock=clock, on_status=self.publish_source_status,
                on_sample=self.publish_sample, on_backfill=self.backfill,
                on_source=self.publish_source)
            self.source_statuses[source.name] = self.sources[source.name].status

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

    def publish_source_status(self, status: HostStatus) -> None:
        """A host's state as a source sees it; a host also in [[hosts]] goes by SSH's."""
        if status.name in self.supervisors:
            return
        self.publish_status(status)

    def publish_source(self, status: SourceStatus) -> None:
        self.source_statuses[status.name] = status
        for listener in list(self.listeners):
            told = getattr(listener, "fleet_source", None)
            if told is not None:
                told(status)

    def backfill(self, host: str, gpu: int, util: list[tuple[float, float]],
                 memory: list[tuple[float, float]]) -> None:
        """Sparkline history of a host seen for the first time, from the source's past."""
        self.history.add_points(host, gpu, util, memory)

    def _merge(self, sample: HostSample) -> HostSample:
        """A host both in [[hosts]] and a source: its processes come from SSH, its
        metrics from whichever arrived last."""
        if sample.source is None:
            self.ssh_latest[sample.host] = sample
            return sample
        ssh = self.ssh_latest.get(sample.host)
        if ssh is None:
            return sample
        procs = {g.uuid or str(g.index): g.processes for g in ssh.gpus}
        for gpu in sample.gpus:
            gpu.processes = list(procs.get(gpu.uuid or str(gpu.index), []))
        sample.processes_known = True
        return sample

    def cost_of(self, host: str) -> float | None:
        """Per hour: [[hosts]] hourly_cost, else [hosts_cost], else the source's default."""
        cost = self.costs.get(host)
        if cost is not None:
            return cost
        if host in self.config.hosts_cost:
            return self.config.hosts_cost[host]
        source = self.sources.get(self.host_source.get(host, ""))
        return source.config.hourly_cost if source is not None else None

    def publish_sample(self, sample: HostSample) -> None:
        """A new sample: kept as the latest, added to history and aggregates, passed on."""
        if sample.source is not None:
            if sample.host not in self.host_source:
                self.host_source[sample.host] = sample.source
                if sample.host not in self.costs:
                    self.costs[sample.host] = self.cost_of(sample.host)
            if sample.host in self.supervisors:
                sample = self._merge(sample)
        elif sample.host in self.supervisors and self.config.sources:
            self._merge(sample)
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
        for source in self.sources.values():
            source.start()
        self._wake_task = asyncio.get_running_loop().create_task(self._watch_sleep())

    async def stop(self) -> None:
        if self._wake_task is not None:
            self._wake_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._wake_task
        stopping = asyncio.gather(*(s.stop() for s in self.supervisors.values()),
                                  *(s.stop() for s in self.sources.values()),
                                  return_exceptions=True)
        # Bounded: a host whose connection does not let go (seen once in ~10 SIGINTs of
        # `nomadlab exporter` on a loaded machine) must not keep the process alive.
        # asyncio.wait, not wait_for: wait_for would wait for the cancellation too.
        await asyncio.wait([stopping], timeout=STOP_TIMEOUT)
        if not stopping.done():
            stopping.cancel()
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

    def source_name(self, host: str) -> str:
        """Where a host's figures come from: "ssh", "local" or a [[sources]] name."""
        if host == LOCAL_HOST:
            return "local"
        if host in self.supervisors:
            return "ssh"
        return self.host_source.get(host, "ssh")
