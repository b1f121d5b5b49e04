"""The Prometheus source against a real Prometheus scraping stand-in DCGM exporters."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import pytest
from prom import PromServer, TokenProxy, exporters, prometheus
from standins.dcgm import Gpu, Node, StandinExporters

from nomadlab.core.config import SourceConfig
from nomadlab.core.model import GpuSample, HostSample, HostState, HostStatus
from nomadlab.remote.prometheus import PrometheusClient, PrometheusError
from nomadlab.remote.promsource import PrometheusSource, SourceState, SourceStatus

__all__ = ["exporters", "prometheus"]  # fixtures


def sm_mhz(gpu: GpuSample) -> int | None:
    """The GPU's SM clock, as its health holds it (DCGM_FI_DEV_SM_CLOCK)."""
    return gpu.health.sm_mhz if gpu.health is not None else None


class Seen:
    def __init__(self) -> None:
        self.statuses: dict[str, HostStatus] = {}
        self.samples: dict[str, HostSample] = {}
        self.sources: list[tuple[SourceState, str | None]] = []
        self.backfill: dict[tuple[str, int], list[tuple[float, float]]] = {}

    def status(self, status: HostStatus) -> None:
        self.statuses[status.name] = status

    def sample(self, sample: HostSample) -> None:
        self.samples[sample.host] = sample

    def source(self, status: SourceStatus) -> None:
        self.sources.append((status.state, status.error))

    def history(self, host: str, gpu: int, util: list[tuple[float, float]],
                memory: list[tuple[float, float]]) -> None:
        self.backfill[(host, gpu)] = util


def make_source(url: str, seen: Seen, **kw: Any) -> PrometheusSource:
    config = SourceConfig(name="lab", kind="prometheus", url=url, **kw)
    return PrometheusSource(config, on_status=seen.status, on_sample=seen.sample,
                            on_backfill=seen.history, on_source=seen.source)


def scraped(prometheus: PromServer, count: int) -> None:
    prometheus.wait_for("up", lambda r: len(r) == count and all(x["value"][1] == "1" for x in r))


def busy_node(name: str, **kw: Any) -> Node:
    gpus = [Gpu(util=97.0, used=40000.0, temp=71.0, power=650.0, xid=0.0, copy=35.0,
                sm_clock=1755.0, mem_clock=2619.0, throttle=4.0)] + [Gpu() for _ in range(7)]
    return Node(name, gpus=gpus, **kw)


def refresh(source: PrometheusSource) -> Any:
    return asyncio.run(source.refresh())


def test_dcgm_counters_become_the_gpu_model(prometheus: PromServer,
                                            exporters: StandinExporters) -> None:
    exporters.add(busy_node("node01", node_exporter=True))
    exporters.add(Node("node02"))
    prometheus.set_targets(exporters.targets())
    scraped(prometheus, 3)
    prometheus.wait_for("node_load1", lambda r: len(r) == 1)
    # a few seconds of history for query_range to find
    prometheus.wait_for('count_over_time(DCGM_FI_DEV_GPU_UTIL{Hostname="node01",gpu="0"}[1m])',
                        lambda r: bool(r) and float(r[0]["value"][1]) >= 12)
    seen = Seen()
    source = make_source(prometheus.url, seen, refresh=1.0)
    result = refresh(source)
    assert sorted(result.samples) == ["node01", "node02"]
    assert seen.sources[-1] == (SourceState.LIVE, None)
    node01 = seen.samples["node01"]
    assert node01.source == "lab" and node01.processes_known is False
    assert [g.index for g in node01.gpus] == list(range(8))
    g0 = node01.gpus[0]
    assert (g0.name, g0.uuid) == ("NVIDIA H100 80GB HBM3", "GPU-node01-0000")
    assert (g0.utilization, g0.memory_used_mib, g0.memory_total_mib) == (97.0, 40000.0, 81559.0)
    assert (g0.temperature_c, g0.power_w, g0.memory_copy_util) == (71.0, 650.0, 35.0)
    h0 = g0.health
    assert h0 is not None and h0.xid == []  # DCGM's last XID is 0: no event
    assert (h0.sm_mhz, h0.mem_mhz, h0.throttle_mask) == (1755, 2619, 4)
    assert node01.gpus[1].utilization == 0.0
    # node_exporter on the same machine (other port) gives the host's own figures
    assert node01.load1 == 0.5
    assert node01.memory_total_mib == 512 * 1024
    assert node01.memory_used_mib == 112 * 1024
    assert seen.statuses["node01"].state is HostState.LIVE
    # node02 has no node_exporter: host figures unknown, not zero
    assert (seen.samples["node02"].cpu_percent, seen.samples["node02"].load1) == (None, None)
    # first sight: sparkline history came from query_range
    assert seen.backfill[("node01", 0)] and all(v == 97.0 for _, v in seen.backfill[("node01", 0)])
    # one refresh is a handful of queries whatever the fleet size: a full one is 5 GPU
    # counters, the other counters, the identities, node, CPU, up (+ 1 backfill)
    assert source.client is not None and source.client.stats.queries == 11


def test_a_scheduled_full_refresh_is_shown_before_its_slow_half(
        prometheus: PromServer, exporters: StandinExporters) -> None:
    """A scheduled full refresh shows its lean answers at once; the identities and slow
    counters come after (in the background) and republish only the hosts they changed."""
    node = exporters.add(busy_node("node01"))
    exporters.add(Node("node02"))
    prometheus.set_targets(exporters.targets())
    scraped(prometheus, 2)
    seen = Seen()
    published: list[tuple[str, float]] = []

    def sample(s: HostSample) -> None:
        seen.sample(s)
        published.append((s.host, s.time))

    config = SourceConfig(name="lab", kind="prometheus", url=prometheus.url)
    source = PrometheusSource(config, on_status=seen.status, on_sample=sample,
                              on_source=seen.source)
    source.full_every = 1  # every refresh after the first reads them again
    source.background_delay = 0.0  # no frame to wait for here

    async def run() -> None:
        await source.refresh()  # the first: full, every GPU with its model before the frame
        assert seen.samples["node01"].gpus[0].name == "NVIDIA H100 80GB HBM3"
        with exporters.lock:
            node.gpus[0].sm_clock = 1410.0
            node.model = "NVIDIA H200"
        await asyncio.to_thread(
            prometheus.wait_for, 'DCGM_FI_DEV_SM_CLOCK{Hostname="node01",gpu="0"}',
            lambda r: bool(r) and r[0]["value"][1] == "1410")
        await asyncio.to_thread(
            prometheus.wait_for, 'DCGM_FI_DEV_GPU_UTIL{Hostname="node01",gpu="0"}',
            lambda r: len(r) == 1 and r[0]["metric"]["modelName"] == "NVIDIA H200")
        assert source.client is not None
        asked = source.client.stats.queries
        published.clear()
        shown = await source.refresh()
        # shown from the lean queries alone: the 5 moving counters, node, CPU, up
        assert shown is not None and source.client.stats.queries - asked == 8
        gpu = shown.samples["node01"].gpus[0]
        assert (gpu.name, sm_mhz(gpu)) == ("NVIDIA H100 80GB HBM3", 1755.0)
        assert sorted(published) == [("node01", shown.samples["node01"].time),
                                     ("node02", shown.samples["node02"].time)]
        assert source.background is not None
        slow = await source.background
        # then the identities, the other counters and the used memory
        assert slow is not None and not slow.unknown_gpus
        assert source.client.stats.queries - asked == 11
        assert published[2:] == [("node01", shown.samples["node01"].time)]  # only it changed
        gpu = seen.samples["node01"].gpus[0]
        assert (gpu.name, sm_mhz(gpu), gpu.memory_total_mib) == (
            "NVIDIA H200", 1410.0, 81559.0)
        assert seen.statuses["node01"].state is HostState.LIVE
        assert seen.sources[-1] == (SourceState.LIVE, None)
        # the next refresh keeps what the background read
        again = await source.refresh()
        assert again is not None and again.samples["node01"].gpus[0].name == "NVIDIA H200"
        await source.stop()

    asyncio.run(run())


def test_values_change_targets_go_down_and_come_back(prometheus: PromServer,
                                                     exporters: StandinExporters) -> None:
    node = exporters.add(busy_node("node01"))
    exporters.add(Node("node02"))
    prometheus.set_targets(exporters.targets())
    scraped(prometheus, 2)
    seen = Seen()
    source = make_source(prometheus.url, seen)
    refresh(source)
    with exporters.lock:
        node.gpus[0].util = 12.0
        node.gpus[0].xid = 79.0
    prometheus.wait_for('DCGM_FI_DEV_GPU_UTIL{Hostname="node01",gpu="0"}',
                        lambda r: bool(r) and r[0]["value"][1] == "12")
    prometheus.wait_for('DCGM_FI_DEV_XID_ERRORS{Hostname="node01",gpu="0"}',
                        lambda r: bool(r) and r[0]["value"][1] == "79")
    refresh(source)
    assert seen.samples["node01"].gpus[0].utilization == 12.0
    health = seen.samples["node01"].gpus[0].health
    assert health is not None and [x.code for x in health.xid or []] == [79]
    with exporters.lock:
        node.up = False
    prometheus.wait_for('up{instance="node01:9400"}', lambda r: bool(r) and r[0]["value"][1] == "0")
    refresh(source)
    down = seen.statuses["node01"]
    assert down.state is HostState.DOWN
    assert down.error == "target node01:9400 is down (up == 0)"
    assert seen.statuses["node02"].state is HostState.LIVE
    with exporters.lock:
        node.up = True
    prometheus.wait_for('up{instance="node01:9400"}', lambda r: bool(r) and r[0]["value"][1] == "1")
    prometheus.wait_for('DCGM_FI_DEV_GPU_UTIL{Hostname="node01"}', lambda r: len(r) == 8)
    refresh(source)
    assert seen.statuses["node01"].state is HostState.LIVE


def test_a_target_removed_goes_stale(prometheus: PromServer,
                                     exporters: StandinExporters) -> None:
    exporters.add(Node("node01"))
    exporters.add(Node("node02"))
    prometheus.set_targets(exporters.targets())
    scraped(prometheus, 2)
    seen = Seen()
    source = make_source(prometheus.url, seen)
    refresh(source)
    prometheus.set_targets([t for t in exporters.targets() if "node02" not in str(t)])
    prometheus.wait_for("up", lambda r: len(r) == 1)
    prometheus.wait_for("DCGM_FI_DEV_GPU_UTIL", lambda r: len(r) == 8)
    refresh(source)
    stale = seen.statuses["node02"]
    assert stale.state is HostState.STALE
    assert stale.error == "no fresh series from Prometheus"
    assert stale.last_sample is not None


def test_a_target_without_hostname_label_is_named_by_instance(
        prometheus: PromServer, exporters: StandinExporters) -> None:
    exporters.add(Node("node07", hostname_label=False))
    prometheus.set_targets(exporters.targets())
    scraped(prometheus, 1)
    seen = Seen()
    refresh(make_source(prometheus.url, seen))
    assert list(seen.samples) == ["node07:9400"]
    assert len(seen.samples["node07:9400"].gpus) == 8


def test_selector_and_host_label(prometheus: PromServer, exporters: StandinExporters) -> None:
    exporters.add(Node("node01"))
    exporters.add(Node("node02"))
    prometheus.set_targets(exporters.targets())
    scraped(prometheus, 2)
    seen = Seen()
    refresh(make_source(prometheus.url, seen, selector='instance="node02:9400"',
                        host_label="instance"))
    assert list(seen.samples) == ["node02:9400"]


def test_nan_is_unknown_not_a_number(prometheus: PromServer,
                                     exporters: StandinExporters) -> None:
    node = exporters.add(Node("node01"))
    with exporters.lock:
        node.gpus[3].temp = math.nan
        node.gpus[3].power = math.nan
    prometheus.set_targets(exporters.targets())
    scraped(prometheus, 1)
    seen = Seen()
    refresh(make_source(prometheus.url, seen))
    gpu = seen.samples["node01"].gpus[3]
    assert (gpu.temperature_c, gpu.power_w) == (None, None)
    assert gpu.utilization == 0.0


def test_bearer_token(prometheus: PromServer, exporters: StandinExporters,
                      monkeypatch: pytest.MonkeyPatch) -> None:
    exporters.add(Node("node01"))
    prometheus.set_targets(exporters.targets())
    scraped(prometheus, 1)
    proxy = TokenProxy(prometheus.url, "s3cret-token")
    try:
        monkeypatch.setenv("NOMADLAB_SECRET_LAB_PROM", "wrong")
        seen = Seen()
        assert refresh(make_source(proxy.url, seen, secret="LAB_PROM")) is None
        state, error = seen.sources[-1]
        assert state is SourceState.FAILED
        assert error == f"{proxy.url} answered 401 unauthorized: the token was refused"
        assert "wrong" not in (error or "")
        monkeypatch.delenv("NOMADLAB_SECRET_LAB_PROM")
        seen = Seen()
        assert refresh(make_source(proxy.url, seen, secret="LAB_PROM")) is None
        assert seen.sources[-1][1] == (
            "secret 'LAB_PROM' is not set: store it with `nomadlab secret set LAB_PROM` or "
            "set the environment variable NOMADLAB_SECRET_LAB_PROM")
        monkeypatch.setenv("NOMADLAB_SECRET_LAB_PROM", "s3cret-token")
        seen = Seen()
        assert refresh(make_source(proxy.url, seen, secret="LAB_PROM")) is not None
        assert seen.sources[-1] == (SourceState.LIVE, None)
        assert list(seen.samples) == ["node01"]
    finally:
        proxy.close()


def test_promql_error_is_said_with_prometheus_words(prometheus: PromServer) -> None:
    client = PrometheusClient(prometheus.url)
    with pytest.raises(PrometheusError) as info:
        client.query_blocking("sum by (")
    assert info.value.kind == "query"
    assert str(info.value) == ('PromQL bad_data: invalid parameter "query": 1:9: parse error: '
                               "unclosed left parenthesis")
    seen = Seen()
    source = make_source(prometheus.url, seen, selector='cluster=~"("')
    assert refresh(source) is None
    state, error = seen.sources[-1]
    assert state is SourceState.FAILED
    assert error is not None and error.startswith("PromQL bad_data:")


def test_prometheus_stopped_mid_run(prometheus: PromServer,
                                    exporters: StandinExporters) -> None:
    exporters.add(Node("node01"))
    prometheus.set_targets(exporters.targets())
    scraped(prometheus, 1)
    seen = Seen()
    source = make_source(prometheus.url, seen, timeout=5.0)
    refresh(source)
    assert seen.statuses["node01"].state is HostState.LIVE
    prometheus.stop()
    assert refresh(source) is None
    state, error = seen.sources[-1]
    assert state is SourceState.FAILED
    assert error == f"cannot reach {prometheus.url}: connection refused"
    node = seen.statuses["node01"]
    assert (node.state, node.error) == (HostState.STALE, error)
    prometheus.start()
    prometheus.wait_for("DCGM_FI_DEV_GPU_UTIL", lambda r: len(r) == 8)
    assert refresh(source) is not None
    assert seen.statuses["node01"].state is HostState.LIVE
    assert seen.sources[-1] == (SourceState.LIVE, None)
