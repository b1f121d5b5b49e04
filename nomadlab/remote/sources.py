"""The sources a config names: one per ``[[hosts]]`` entry (SSH), this machine, and one
per ``[[sources]]`` entry (by its ``kind``). The only place that knows the kinds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from nomadlab.core.clock import Clock
from nomadlab.core.config import Config, SourceConfig
from nomadlab.core.model import LOCAL_HOST
from nomadlab.core.source import Source
from nomadlab.remote.ssh import Connector
from nomadlab.remote.supervisor import HostSupervisor


# [[sources]] kinds: how each is built from its config entry
def _prometheus(config: SourceConfig, clock: Clock) -> Source:
    # Imported here, as LocalSource below: only the sources a config names load
    # their modules (the TUI imports this one before its first frame).
    from nomadlab.remote.promsource import PrometheusSource

    return PrometheusSource(config, clock=clock)


BUILDERS: dict[str, Callable[[SourceConfig, Clock], Source]] = {
    "prometheus": _prometheus,
}


@dataclass(slots=True)
class SourceSet:
    """The sources a config makes, and the SSH supervisors among them by host name."""
    sources: list[Source] = field(default_factory=list)
    # SSH hosts by name: the ones other channels (log tails, tmux, jobs) ride on
    ssh: dict[str, HostSupervisor] = field(default_factory=dict)


def configured_sources(config: Config, clock: Clock, connector: Connector, *,
                       hosts: Iterable[str] | None = None, local: bool | None = None,
                       local_gpus: object = None) -> SourceSet:
    """What ``config`` names; ``hosts`` narrows it to those hosts (then no [[sources]])."""
    wanted = set(hosts) if hosts is not None else None
    out = SourceSet()
    for host in config.hosts:
        if not host.enabled or (wanted is not None and host.name not in wanted):
            continue
        sup = HostSupervisor(host, connector, config.ssh, clock,
                             interval=config.fleet.interval,
                             stale_after=config.fleet.stale_seconds)
        out.sources.append(sup)
        out.ssh[host.name] = sup
    show_local = config.show_local if local is None else local
    if wanted is not None and local is None:
        show_local = LOCAL_HOST in wanted
    if show_local:
        from nomadlab.remote.local import LocalSource

        out.sources.append(LocalSource(clock, config.fleet.interval, local_gpus))
    for source in config.sources if wanted is None else []:
        out.sources.append(BUILDERS[source.kind](source, clock))
    return out
