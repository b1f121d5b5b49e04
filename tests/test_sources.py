"""Every kind of source behind one interface: the same model, states and errors, as a
Fleet listener sees them. Real parts: a real sshd (through a TCP proxy that is cut), a
real Prometheus scraping stand-in DCGM exporters (stopped mid-run), the demo's
simulated hosts (unplugged), and this machine."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import pytest
from conftest import config_for, host_for, wait_for
from prom import PromServer, exporters, prometheus
from sshd import SshServer
from standins.dcgm import Node, StandinExporters
from tcpproxy import TcpProxy

from nomadlab.core.config import SourceConfig
from nomadlab.core.model import LOCAL_HOST, HostSample, HostState, HostStatus
from nomadlab.core.source import Source, SourceError, SourceState, SourceStatus
from nomadlab.remote.demo import DemoSource
from nomadlab.remote.fleet import Fleet

__all__ = ["exporters", "prometheus"]  # fixtures

UP = SourceState.LIVE
FAILED = SourceState.FAILED


class Heard:
    """A fleet listener that keeps what every source told, in order."""

    def __init__(self) -> None:
        self.hosts: list[HostStatus] = []
        self.samples: list[HostSample] = []
        self.sources: list[SourceStatus] = []

    def fleet_status(self, status: HostStatus) -> None:
        self.hosts.append(dataclasses.replace(status))  # sources may change it in place

    def fleet_sample(self, sample: HostSample) -> None:
        self.samples.append(sample)

    def fleet_source(self, status: SourceStatus) -> None:
        self.sources.append(SourceStatus(status.name, status.kind, status.state, status.error,
                                         list(status.hosts), status.refreshed))

    def source_states(self, name: str) -> list[SourceState]:
        out: list[SourceState] = []
        for s in self.sources:
            if s.name == name and (not out or out[-1] is not s.state):
                out.append(s.state)
        return out

    def last_source(self, name: str) -> SourceStatus:
        return [s for s in self.sources if s.name == name][-1]

    def host_states(self, host: str) -> list[HostState]:
        out: list[HostState] = []
        for s in self.hosts:
            if s.name == host and (not out or out[-1] is not s.state):
                out.append(s.state)
        return out


def assert_went_up_then_failed(heard: Heard, source: str, host: str) -> SourceStatus:
    """The shared life of every source: connecting -> live -> failed with a reason, and
    its host: live with a sample, then a problem state with the same kind of reason."""
    assert heard.source_states(source)[:3] == [SourceState.CONNECTING, UP, FAILED]
    failed = heard.last_source(source)
    assert failed.state is FAILED and failed.error
    states = heard.host_states(host)
    assert HostState.LIVE in states
    after = states[states.index(HostState.LIVE) + 1:]
    assert after and after[-1].is_problem, states
    last = [s for s in heard.hosts if s.name == host][-1]
    assert last.error, last
    assert any(s.host == host and s.gpus is not None for s in heard.samples)
    return failed


async def running(fleet: Fleet) -> Heard:
    heard = Heard()
    fleet.listeners.append(heard)
    await fleet.start()
    return heard


def test_every_kind_is_a_source(tmp_path: Path) -> None:
    server = SshServer(tmp_path / "never-started")
    config = config_for(host_for(server), tmp=tmp_path, show_local=True)
    config.sources = [SourceConfig(name="lab", kind="prometheus", url="http://127.0.0.1:9")]
    demo = DemoSource(hosts=2, gpus=2)
    fleet = Fleet(config, sources=[demo])
    assert all(isinstance(s, Source) for s in fleet.sources)
    assert [(s.kind, s.name) for s in fleet.sources] == [
        ("ssh", "gpu1"), ("local", LOCAL_HOST), ("prometheus", "lab"), ("demo", "demo")]
    # known before anything ran: the one-host sources' hosts and the demo's, connecting
    assert fleet.names() == ["gpu1", LOCAL_HOST, *demo.hosts]
    assert {s.state for s in fleet.statuses.values()} == {HostState.CONNECTING}
    # listed as sources (status --json): those of many hosts
    assert sorted(fleet.source_statuses) == ["demo", "lab"]
    assert [fleet.source_name(h) for h in ("gpu1", LOCAL_HOST, *demo.hosts)] == [
        "ssh", "local", "demo", "demo"]
    assert fleet.cost_of(demo.world[0].name) == demo.world[0].hourly_cost


@pytest.mark.sshd
async def test_ssh_host_source(gpu_server: SshServer, tmp_path: Path) -> None:
    gpu_server.write_known_hosts(gpu_server.base / "known_hosts")
    proxy = await TcpProxy(gpu_server.port).start()
    known_hosts = gpu_server.base / "known_hosts"
    known_hosts.write_text(gpu_server.host_key_line.replace(
        f"]:{gpu_server.port} ", f"]:{proxy.port} ") + "\n")
    fleet = Fleet(config_for(host_for(gpu_server, port=proxy.port), tmp=tmp_path))
    try:
        heard = await running(fleet)
        await wait_for(lambda: len(heard.samples) >= 2, what="samples")
        reply = await fleet.request("gpu1", {"cmd": "proc", "pid": 1})
        assert "ok" in reply
        await proxy.close()  # the network goes away
        await wait_for(lambda: FAILED in heard.source_states("gpu1"), what="failed")
    finally:
        await fleet.stop()
        await proxy.close()
    failed = assert_went_up_then_failed(heard, "gpu1", "gpu1")
    assert (failed.kind, failed.hosts) == ("ssh", ["gpu1"])
    assert HostState.RECONNECTING in heard.host_states("gpu1")
    assert fleet.source_statuses == {}  # a host, not listed among the sources


async def test_prometheus_source(tmp_path: Path, prometheus: PromServer,
                                 exporters: StandinExporters) -> None:
    exporters.add(Node("node01"))
    prometheus.set_targets(exporters.targets())
    await asyncio.to_thread(prometheus.wait_for, "DCGM_FI_DEV_GPU_UTIL", lambda r: len(r) == 8)
    config = config_for(tmp=tmp_path)
    config.sources = [SourceConfig(name="lab", kind="prometheus", url=prometheus.url,
                                   refresh=1.0, timeout=5.0)]
    fleet = Fleet(config)
    try:
        heard = await running(fleet)
        await wait_for(lambda: heard.samples, what="a sample")
        with pytest.raises(SourceError, match="takes no commands"):
            await fleet.request("node01", {"cmd": "proc", "pid": 1})
        await asyncio.to_thread(prometheus.stop)
        await wait_for(lambda: FAILED in heard.source_states("lab"), what="failed")
    finally:
        await fleet.stop()
    failed = assert_went_up_then_failed(heard, "lab", "node01")
    assert failed.error == f"cannot reach {prometheus.url}: connection refused"
    assert fleet.source_statuses["lab"].state is FAILED
    assert fleet.statuses["node01"].state is HostState.STALE
    assert fleet.source_name("node01") == "lab"


async def test_demo_source(tmp_path: Path) -> None:
    demo = DemoSource(hosts=2, gpus=2, seed=3, interval=0.1)
    first, second = (h.name for h in demo.world)
    fleet = Fleet(config_for(tmp=tmp_path), sources=[demo])
    try:
        heard = await running(fleet)
        await wait_for(lambda: {s.host for s in heard.samples} == {first, second},
                       what="samples of both hosts")
        sample = fleet.latest[first]
        assert len(sample.gpus) == 2 and sample.gpus[0].name == demo.world[0].gpu_name
        demo.unplug(first)
        await wait_for(lambda: fleet.statuses[first].state is HostState.STALE, what="stale")
        assert demo.source_status.state is UP  # one host still answers
        demo.unplug(second)
        await wait_for(lambda: FAILED in heard.source_states("demo"), what="failed")
        demo.plug(first)
        await wait_for(lambda: heard.source_states("demo")[-1] is UP, what="back")
    finally:
        await fleet.stop()
    assert heard.source_states("demo") == [SourceState.CONNECTING, UP, FAILED, UP]
    failed = next(s for s in heard.sources if s.state is FAILED)
    assert failed.error == (f"every host is failing; {first}: "
                            "sampling failed: host unreachable (simulated)")
    assert heard.host_states(first) == [HostState.CONNECTING, HostState.LIVE, HostState.STALE,
                                        HostState.LIVE]


async def test_local_source(tmp_path: Path) -> None:
    fleet = Fleet(config_for(tmp=tmp_path, interval=0.1), local=True)
    try:
        heard = await running(fleet)
        await wait_for(lambda: len(heard.samples) >= 2, what="samples")
        reply = await fleet.request(LOCAL_HOST, {"cmd": "proc", "pid": 1})
        assert "ok" in reply
    finally:
        await fleet.stop()
    assert heard.source_states(LOCAL_HOST) == [SourceState.CONNECTING, UP]
    assert heard.host_states(LOCAL_HOST) == [HostState.CONNECTING, HostState.LIVE]
    assert fleet.source_name(LOCAL_HOST) == "local"
    assert heard.samples[-1].memory_total_mib
