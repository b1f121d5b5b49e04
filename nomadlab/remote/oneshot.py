"""One sample from each host, then stop: for ``nomadlab status`` and scripts.

A host is done when its second sample arrives (the first has no real CPU figure:
CPU use is the difference between two readings) or its first attempt fails; nobody
waits through a backoff. Hosts run in parallel, so one slow host costs its
own timeout, not everyone's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, replace

from nomadlab.core.clock import SYSTEM_CLOCK, Clock
from nomadlab.core.config import Config
from nomadlab.core.model import HostSample, HostState, HostStatus
from nomadlab.core.source import SourceStatus
from nomadlab.remote.fleet import Fleet

ONESHOT_INTERVAL = 0.5  # seconds between an agent's samples for `nomadlab status`
FINAL = {HostState.RECONNECTING, HostState.AUTH_FAILED, HostState.PASSPHRASE,
         HostState.HOSTKEY_UNKNOWN, HostState.HOSTKEY_CHANGED}


@dataclass(slots=True)
class HostReport:
    name: str
    status: HostStatus
    sample: HostSample | None
    source: str = "ssh"  # "ssh", "local" or the [[sources]] name that fed it

    @property
    def ok(self) -> bool:
        return self.sample is not None


class _Waiter:
    def __init__(self, names: Iterable[str]) -> None:
        self.pending = set(names)
        self.samples: dict[str, int] = {}
        # The failure that ended a host's one attempt. Its supervisor retries after a
        # backoff meanwhile (CONNECTING again, no error): the report says this instead.
        self.failed: dict[str, HostStatus] = {}
        self.done = asyncio.Event()
        if not self.pending:
            self.done.set()

    def _finish(self, name: str) -> None:
        self.pending.discard(name)
        if not self.pending:
            self.done.set()

    def fleet_status(self, status: HostStatus) -> None:
        if status.state in FINAL and status.name in self.pending:
            self.failed[status.name] = status
            self._finish(status.name)

    def fleet_sample(self, sample: HostSample) -> None:
        count = self.samples[sample.host] = self.samples.get(sample.host, 0) + 1
        if count >= 2:
            self._finish(sample.host)


async def sample_once(config: Config, names: Iterable[str] | None = None, *,
                      timeout: float | None = None, clock: Clock = SYSTEM_CLOCK,
                      sources: list[SourceStatus] | None = None) -> list[HostReport]:
    """One report per host; ``sources`` (when given) is filled with each source's state."""
    # The second sample is the one waited for: ask for it sooner than the TUI would.
    interval = min(config.fleet.interval, ONESHOT_INTERVAL)
    fleet = Fleet(replace(config, fleet=replace(config.fleet, interval=interval)),
                  clock=clock, hosts=names)
    waiter = _Waiter(fleet.names())
    fleet.listeners.append(waiter)
    sources_done = [s.ready() for s in fleet.sources]
    limit = timeout if timeout is not None else (
        config.ssh.connect_timeout + config.ssh.login_timeout + 5 * config.fleet.interval + 5)
    await fleet.start()
    try:
        try:
            await asyncio.wait_for(asyncio.gather(waiter.done.wait(), *sources_done), limit)
        except TimeoutError:
            pass
        # A sample may have landed after a failure was reported: take what we have.
        reports = []
        for name in fleet.names():
            sample = fleet.latest.get(name)
            status = fleet.statuses[name]
            if sample is None:
                status = waiter.failed.get(name, status)
            if sample is None and status.state not in FINAL and status.error is None:
                status.error = f"no sample within {limit:.0f}s"
            reports.append(HostReport(name, status, sample, fleet.source_name(name)))
        return reports
    finally:
        if sources is not None:
            sources.extend(fleet.source_statuses.values())
        await fleet.stop()
