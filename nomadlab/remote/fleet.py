"""The fleet: every source of host samples, and who listens to them.

Data flows one way: sources (SSH hosts, this machine, the demo, a Prometheus; see
:mod:`nomadlab.core.source`) produce statuses and samples; the fleet keeps the latest
of each, feeds the sparkline history and the per-minute aggregates, and tells its
listeners (the UI, ``nomadlab status``, the alert engine). It never asks a source's
kind: per-host actions go to the source that feeds the host.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Protocol

from nomadlab.core.aggregate import MinuteAggregator
from nomadlab.core.clock import SYSTEM_CLOCK, Clock, WakeDetector
from nomadlab.core.config import Config
from nomadlab.core.energy import EnergyRecorder
from nomadlab.core.history import FleetHistory
from nomadlab.core.model import HostSample, HostState, HostStatus
from nomadlab.core.source import Points, Source, SourceError, SourceStatus
from nomadlab.core.store import Store
from nomadlab.core.tasks import BackgroundTask
from nomadlab.remote.sources import configured_sources
from nomadlab.remote.ssh import Connector
from nomadlab.remote.ssh_keys import KeyStore

STOP_TIMEOUT = 5.0  # seconds stop() waits for the hosts and sources to let go


class FleetListener(Protocol):
    def fleet_status(self, status: HostStatus) -> None: ...

    def fleet_sample(self, sample: HostSample) -> None: ...

    # and, optionally: def fleet_source(self, status: SourceStatus) -> None


class _Sink:
    """What one source tells the fleet, with the source it came from."""

    __slots__ = ("fleet", "source")

    def __init__(self, fleet: Fleet, source: Source) -> None:
        self.fleet = fleet
        self.source = source

    def host_status(self, status: HostStatus) -> None:
        self.fleet.host_status(self.source, status)

    def host_sample(self, sample: HostSample) -> None:
        self.fleet.host_sample(self.source, sample)

    def source_status(self, status: SourceStatus) -> None:
        self.fleet.publish_source(status, listed=not self.source.one_host)

    def host_history(self, host: str, gpu: int, util: Points, memory: Points) -> None:
        self.fleet.backfill(host, gpu, util, memory)


class Fleet:
    def __init__(self, config: Config, *, store: Store | None = None,
                 clock: Clock = SYSTEM_CLOCK, keys: KeyStore | None = None,
                 hosts: Iterable[str] | None = None, local: bool | None = None,
                 local_gpus: object = None, sources: Iterable[Source] = ()) -> None:
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
        built = configured_sources(config, clock, self.connector, hosts=hosts, local=local,
                                   local_gpus=local_gpus)
        self.supervisors = built.ssh  # SSH hosts, for the channels that ride on them
        self.sources: list[Source] = []
        self.owner: dict[str, Source] = {}  # host -> the source whose state it shows
        self.source_statuses: dict[str, SourceStatus] = {}  # sources of many hosts
        self._with_processes: dict[str, HostSample] = {}  # the last that knew processes
        for source in [*built.sources, *sources]:
            self.add(source)
        self._wake_task = BackgroundTask("fleet: watch for sleep")
        self.wake = WakeDetector(clock)

    def add(self, source: Source) -> None:
        """A source the fleet listens to from now on (before :meth:`start`)."""
        self.sources.append(source)
        source.attach(_Sink(self, source))
        for status in source.initial_hosts():
            self.owner.setdefault(status.name, source)
            self.statuses.setdefault(status.name, status)
        if not source.one_host:
            self.source_statuses[source.name] = source.source_status

    def source(self, name: str) -> Source:
        """The source called ``name`` (a host's name for a one-host source)."""
        for source in self.sources:
            if source.name == name:
                return source
        raise KeyError(name)

    # ------------------------------------------------------------------ events

    def host_status(self, source: Source, status: HostStatus) -> None:
        """A host's state from a source; a host fed by two sources shows its first's."""
        if self.owner.setdefault(status.name, source) is source:
            self.publish_status(status)

    def host_sample(self, source: Source, sample: HostSample) -> None:
        """A sample from a source. A host fed by two (in [[hosts]] and a Prometheus):
        its processes from the one that knows them, its metrics from whichever came last."""
        owner = self.owner.setdefault(sample.host, source)
        if sample.host not in self.costs:
            self.costs[sample.host] = self.cost_of(sample.host)
        if sample.processes_known:
            self._with_processes[sample.host] = sample
        elif owner is not source:
            known = self._with_processes.get(sample.host)
            if known is not None:
                procs = {g.uuid or str(g.index): g.processes for g in known.gpus}
                for gpu in sample.gpus:
                    gpu.processes = list(procs.get(gpu.uuid or str(gpu.index), []))
                sample.processes_known = True
        self.publish_sample(sample)

    def publish_status(self, status: HostStatus) -> None:
        """A host's new state (from its source, or a replay), to every listener."""
        self.statuses[status.name] = status
        for listener in list(self.listeners):
            listener.fleet_status(status)

    def publish_source(self, status: SourceStatus, *, listed: bool = True) -> None:
        """A source's own state; ``listed``: a source of many hosts (in source_statuses)."""
        if listed:
            self.source_statuses[status.name] = status
        for listener in list(self.listeners):
            told = getattr(listener, "fleet_source", None)
            if told is not None:
                told(status)

    def backfill(self, host: str, gpu: int, util: Points, memory: Points) -> None:
        """Sparkline history of a host seen for the first time, from the source's past."""
        self.history.add_points(host, gpu, util, memory)

    def cost_of(self, host: str) -> float | None:
        """Per hour: [[hosts]] hourly_cost, else [hosts_cost], else its source's say."""
        cost = self.costs.get(host)
        if cost is not None:
            return cost
        if host in self.config.hosts_cost:
            return self.config.hosts_cost[host]
        owner = self.owner.get(host)
        return owner.hourly_cost(host) if owner is not None else None

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
        for source in self.sources:
            self.publish_source(source.source_status, listed=not source.one_host)
            source.start()
        self._wake_task.start(self._watch_sleep)

    async def stop(self) -> None:
        await self._wake_task.stop()
        stopping = asyncio.gather(*(s.stop() for s in self.sources), return_exceptions=True)
        # Bounded: a host whose connection does not let go (seen once in ~10 SIGINTs of
        # `nomadlab exporter` on a loaded machine) must not keep the process alive.
        # asyncio.wait, not wait_for: wait_for would wait for the cancellation too.
        await asyncio.wait([stopping], timeout=STOP_TIMEOUT)
        if not stopping.done():
            stopping.cancel()
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
        for source in self.sources:
            source.recheck()

    # ------------------------------------------------------------------ user actions

    def is_remote(self, name: str) -> bool:
        """Whether ``name`` is reached over SSH: retry, tmux, log tails and commands."""
        return name in self.supervisors

    def retry(self, name: str) -> None:
        owner = self.owner.get(name)
        if owner is None or not owner.retry(name):
            raise KeyError(name)

    async def request(self, host: str, command: dict[str, object],
                      timeout: float = 10.0) -> dict[str, object]:
        """A command for ``host``'s agent; :class:`SourceError` says why it cannot be."""
        owner = self.owner.get(host)
        if owner is None:
            raise SourceError(f"unknown host {host!r}")
        return await owner.request(host, command, timeout)

    def trust(self, name: str) -> str:
        """Accept the unknown host key the host is waiting on; returns its fingerprint."""
        status = self.statuses.get(name)
        if status is None or status.hostkey is None:
            raise ValueError(f"{name} is not waiting on a host key")
        from nomadlab.remote.hostkeys import trust_host_key

        trust_host_key(status.hostkey)  # refuses a changed key
        for other, st in self.statuses.items():
            if st.hostkey is not None and st.hostkey.line == status.hostkey.line:
                self._wake(other)
        return status.hostkey.fingerprint

    def unlock(self, key_path: str, passphrase: str, remember: bool = False) -> str | None:
        """Decrypt a key; every host waiting on it retries. Raises ValueError if wrong."""
        warning = self.keys.unlock(key_path, passphrase, remember)
        for name, status in self.statuses.items():
            if status.state is HostState.PASSPHRASE and status.key_path == key_path:
                self._wake(name)
        return warning

    def _wake(self, host: str) -> None:
        owner = self.owner.get(host)
        if owner is not None:
            owner.retry(host)

    def set_interval(self, interval: float) -> None:
        for source in self.sources:
            source.set_interval(interval)

    def via(self, host: str) -> str | None:
        """The source of many hosts that feeds ``host`` (shown as "via lab"), or None."""
        owner = self.owner.get(host)
        return owner.name if owner is not None and not owner.one_host else None

    def source_name(self, host: str) -> str:
        """Where a host's figures come from: "ssh", "local" or a [[sources]] name."""
        owner = self.owner.get(host)
        if owner is None:
            return "ssh"
        return owner.kind if owner.one_host else owner.name
