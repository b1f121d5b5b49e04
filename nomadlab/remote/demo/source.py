"""The demo as a :class:`Source`: simulated hosts sampled in-process, no SSH.

Each simulated host runs the real agent's message builders (:class:`SimAgent`) the
way this machine runs them (:class:`InProcessHost`), so the fleet gets the same
samples the demo's SSH servers would stream, at a fraction of the cost. A host can be
unplugged (``unplug``): its samples fail with the reason, the host turns stale, and
when every host is failing the source has failed as a whole.
"""

from __future__ import annotations

from collections.abc import Sequence

from nomadlab.core.clock import SYSTEM_CLOCK, Clock
from nomadlab.core.model import AgentInfo, HostSample, HostState, HostStatus
from nomadlab.core.source import UNHEARD, Source, SourceListener, SourceState, SourceStatus
from nomadlab.remote.demo.profiles import PROFILES, HostProfile
from nomadlab.remote.demo.simagent import SimAgent
from nomadlab.remote.demo.world import SimHost, build_hosts
from nomadlab.remote.local import InProcessHost
from nomadlab.remote.protocol import AgentDecoder


class DemoProbe:
    """One simulated host as :class:`InProcessHost` asks for it."""

    def __init__(self, host: SimHost) -> None:
        self.host = host
        self.agent: SimAgent | None = None
        self.unplugged: str | None = None  # why the host does not answer, when it does not
        self._decoder = AgentDecoder(host.name)

    def open(self) -> AgentInfo:
        self.agent = self.host.agent()
        return self._decoder.hello_event(self.agent.hello())

    def sample(self) -> HostSample:
        if self.unplugged is not None:
            raise ConnectionError(self.unplugged)
        assert self.agent is not None
        # source stays None: the agent's own samples, as over SSH (exported, merged alike)
        return self._decoder.sample_event(self.agent.sample(), self.host.clock.time())

    def close(self) -> None:
        if self.agent is not None:
            self.agent.close()


class DemoSource(Source):
    """Simulated hosts (:func:`build_hosts`), sampled in-process: a source of kind ``demo``."""

    kind = "demo"

    def __init__(self, hosts: int = 4, gpus: int = 8, *, seed: int = 0,
                 clock: Clock = SYSTEM_CLOCK, interval: float = 1.0, name: str = "demo",
                 epoch: float | None = None,
                 profiles: Sequence[HostProfile] = PROFILES) -> None:
        self._name = name
        self.clock = clock
        self.listener = UNHEARD
        self.world = build_hosts(hosts, gpus, seed=seed, clock=clock, epoch=epoch,
                                 profiles=profiles)
        self.probes = {h.name: DemoProbe(h) for h in self.world}
        self.hosts = {
            h.name: InProcessHost(h.name, clock, interval, self.probes[h.name],
                                  on_status=self._host_status, on_sample=self._host_sample)
            for h in self.world
        }
        self.status = SourceStatus(name, self.kind, hosts=sorted(self.hosts))

    # ------------------------------------------------------------------ the simulation

    def unplug(self, host: str, reason: str = "host unreachable (simulated)") -> None:
        """``host`` stops answering: its next samples fail with ``reason``."""
        self.probes[host].unplugged = reason

    def plug(self, host: str) -> None:
        self.probes[host].unplugged = None

    # ------------------------------------------------------------------ as a Source

    @property
    def name(self) -> str:
        return self._name

    @property
    def source_status(self) -> SourceStatus:
        return self.status

    def attach(self, listener: SourceListener) -> None:
        self.listener = listener

    def initial_hosts(self) -> list[HostStatus]:
        return [h.status for h in self.hosts.values()]

    def start(self) -> None:
        for host in self.hosts.values():
            host.start()

    async def stop(self) -> None:
        for host in self.hosts.values():
            await host.stop()

    def set_interval(self, interval: float) -> None:
        for host in self.hosts.values():
            host.interval = interval

    def hourly_cost(self, host: str) -> float | None:
        sim = next((h for h in self.world if h.name == host), None)
        return sim.hourly_cost if sim is not None else None

    # ------------------------------------------------------------------ what hosts tell

    def _host_sample(self, sample: HostSample) -> None:
        self.listener.host_sample(sample)

    def _host_status(self, status: HostStatus) -> None:
        self.listener.host_status(status)
        states = [h.status for h in self.hosts.values()]
        if any(s.state is HostState.LIVE for s in states):
            state, error = SourceState.LIVE, None
        elif all(s.state.is_problem for s in states):
            first = next((s for s in states if s.error), states[0])
            state = SourceState.FAILED
            error = f"every host is failing; {first.name}: {first.error}"
        else:
            state, error = SourceState.CONNECTING, None
        if (state, error) != (self.status.state, self.status.error):
            self.status.state, self.status.error = state, error
            if state is SourceState.LIVE:
                self.status.refreshed = self.clock.time()
            self.listener.source_status(self.status)
