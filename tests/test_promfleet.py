"""promfleet: PromQL of a refresh, and answers -> samples and statuses (no network)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from nomadlab.core.config import ConfigError, load_config_text
from nomadlab.core.model import HostState
from nomadlab.core.promfleet import PromFleet, address_host, queries


@dataclass(frozen=True)
class S:
    labels: dict[str, str]
    value: float | None


def util(host: str | None, gpu: int, value: float | None, instance: str = "") -> S:
    labels = {"__name__": "DCGM_FI_DEV_GPU_UTIL", "gpu": str(gpu), "UUID": f"U{gpu}",
              "modelName": "NVIDIA H100", "instance": instance or f"{host}:9400"}
    if host is not None:
        labels["Hostname"] = host
    return S(labels, value)


def test_queries_carry_the_selector_and_group_by_host_and_gpu() -> None:
    q = queries('cluster="a100"')
    assert q.gpus.startswith("max by (Hostname, instance, __name__, gpu, UUID, modelName) ({")
    assert 'cluster="a100"' in q.gpus and "DCGM_FI_DEV_FB_USED" in q.gpus
    assert q.up == 'up{cluster="a100"}'
    assert 'node_cpu_seconds_total{mode="idle", cluster="a100"}[1m]' in q.cpu
    assert queries("", host_label="node").util_range == (
        "max by (node, instance, gpu) (DCGM_FI_DEV_GPU_UTIL{})")


def test_address_host() -> None:
    assert address_host("node1:9400") == "node1"
    assert address_host("[::1]:9400") == "::1"
    assert address_host("node1") == "node1"


def test_live_down_stale_in_turn() -> None:
    fleet = PromFleet("lab")
    first = fleet.update(100.0, [util("a", 0, 50.0), util("a", 1, None), util("b", 0, 1.0)])
    assert first.new_hosts == ["a", "b"]
    a = first.samples["a"]
    assert [g.utilization for g in a.gpus] == [50.0, None]  # NaN is unknown
    assert a.source == "lab" and not a.processes_known
    assert {h: s.state for h, s in first.statuses.items()} == {"a": HostState.LIVE,
                                                               "b": HostState.LIVE}
    second = fleet.update(105.0, [util("b", 0, 1.0)],
                          up=[S({"instance": "a:9400"}, 0.0), S({"instance": "b:9400"}, 1.0)])
    assert second.new_hosts == []
    assert (second.statuses["a"].state, second.statuses["a"].error) == (
        HostState.DOWN, "target a:9400 is down (up == 0)")
    third = fleet.update(110.0, [util("b", 0, 1.0)])
    assert third.statuses["a"].state is HostState.STALE
    assert third.statuses["a"].last_sample == 100.0
    assert third.statuses["b"].since == 100.0  # live all along
    failed = fleet.fail_all(115.0, "cannot reach x")
    assert {s.state for s in failed.values()} == {HostState.STALE}


def test_no_hostname_label_uses_instance() -> None:
    fleet = PromFleet("lab")
    result = fleet.update(1.0, [util(None, 0, 3.0, instance="10.0.0.9:9400")])
    assert list(result.samples) == ["10.0.0.9:9400"]


def test_sources_config_problems() -> None:
    with pytest.raises(ConfigError) as info:
        load_config_text('[[sources]]\nkind = "prometheus"\nname = "a"\nurl = "http://x"\n'
                         'refresh = "0.5s"\nhost_label = "a-b"\n[hosts_cost]\nn = -1\n')
    text = str(info.value)
    assert "sources[0] (\"a\").refresh: must be at least 1s" in text
    assert "host_label: not a Prometheus label name: 'a-b'" in text
    assert "hosts_cost.n: must be at least 0" in text


def test_dcgm_xid_and_clocks_feed_the_health_verdict() -> None:
    """A DCGM host gets the same health column as an SSH host: each new XID value is
    an event, clocks and throttle reasons are what DCGM exported."""
    from nomadlab.core.health import assess, gpu_json

    def metric(name: str, value: float) -> S:
        return S({**util("a", 0, 0.0).labels, "__name__": name}, value)

    fleet = PromFleet("lab")
    quiet = fleet.update(100.0, [util("a", 0, 90.0), metric("DCGM_FI_DEV_XID_ERRORS", 0.0),
                                 metric("DCGM_FI_DEV_SM_CLOCK", 1980.0)])
    gpu = quiet.samples["a"].gpus[0]
    verdict = assess(gpu)
    assert verdict is not None and verdict.state == "ok"
    assert gpu_json(gpu)["clocks"]["sm_mhz"] == 1980
    fell = fleet.update(105.0, [util("a", 0, 90.0), metric("DCGM_FI_DEV_XID_ERRORS", 79.0)])
    gpu = fell.samples["a"].gpus[0]
    verdict = assess(gpu)
    assert verdict is not None and verdict.state == "fail"
    assert verdict.reasons[0].startswith("XID 79")
    assert [x["code"] for x in gpu_json(gpu)["xid"]] == [79]
    again = fleet.update(110.0, [util("a", 0, 90.0), metric("DCGM_FI_DEV_XID_ERRORS", 79.0)])
    assert [x.code for x in again.samples["a"].gpus[0].health.xid] == [79]  # not twice
