"""promfleet: PromQL of a refresh, and answers -> samples and statuses (no network)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from nomadlab.core.config import ConfigError, load_config_text
from nomadlab.core.model import GpuSample, HostState
from nomadlab.core.promfleet import PromFleet, address_host
from nomadlab.core.promql import queries


def sm_mhz(gpu: GpuSample) -> int | None:
    """The GPU's SM clock, as its health holds it (DCGM_FI_DEV_SM_CLOCK)."""
    return gpu.health.sm_mhz if gpu.health is not None else None



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
    health = again.samples["a"].gpus[0].health
    assert health is not None and health.xid is not None
    assert [x.code for x in health.xid] == [79]  # not twice


def test_lean_refreshes_keep_identity_and_slow_counters_from_the_last_full_one() -> None:
    """Between full refreshes the GPU answer carries only the moving counters, by host
    and GPU: the model, the UUID, the clocks and the power limit stay as the last full
    refresh read them; a GPU never seen asks for a full refresh; a host whose state did
    not change is not reported as changed again."""

    def full(name: str, value: float) -> S:
        return S({**util("a", 0, 0.0).labels, "__name__": name}, value)

    def lean(name: str, value: float, host: str = "a", gpu: int = 0) -> S:
        return S({"__name__": name, "Hostname": host, "gpu": str(gpu)}, value)

    fleet = PromFleet("lab")
    first = fleet.update(100.0, [util("a", 0, 90.0), full("DCGM_FI_DEV_SM_CLOCK", 1980.0),
                                 full("DCGM_FI_DEV_POWER_MGMT_LIMIT", 700.0)])
    assert first.changed == {"a"}
    second = fleet.update(105.0, [lean("DCGM_FI_DEV_GPU_UTIL", 12.0),
                                  lean("DCGM_FI_DEV_XID_ERRORS", 79.0)],
                          up=[S({"instance": "a:9400"}, 1.0)], full=False)
    assert not second.unknown_gpus and second.changed == set()
    gpu = second.samples["a"].gpus[0]
    assert (gpu.name, gpu.uuid) == ("NVIDIA H100", "U0")
    assert gpu.health is not None
    assert (gpu.utilization, [x.code for x in gpu.health.xid or []], gpu.health.sm_mhz,
            gpu.power_limit_w) == (12.0, [79], 1980, 700.0)
    assert second.statuses["a"].last_sample == 105.0
    # a counter missing from this lean answer is unknown, not the last value
    third = fleet.update(110.0, [lean("DCGM_FI_DEV_XID_ERRORS", 79.0)], full=False)
    assert third.samples["a"].gpus[0].utilization is None
    # the target is down: a change, reported (the instance came from the full refresh)
    down = fleet.update(115.0, [lean("DCGM_FI_DEV_GPU_UTIL", 1.0)],
                        up=[S({"instance": "a:9400"}, 0.0)], full=False)
    assert down.changed == {"a"} and down.statuses["a"].state is HostState.DOWN
    new = fleet.update(120.0, [lean("DCGM_FI_DEV_GPU_UTIL", 1.0),
                               lean("DCGM_FI_DEV_GPU_UTIL", 5.0, gpu=1)], full=False)
    assert new.unknown_gpus and new.samples == {}
    assert fleet.statuses["a"].state is HostState.DOWN  # untouched


def test_the_lean_queries_one_per_moving_counter_by_host_label_or_target() -> None:
    q = queries('cluster="a100"')
    assert list(q.lean) == ["DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED",
                            "DCGM_FI_DEV_GPU_TEMP", "DCGM_FI_DEV_POWER_USAGE",
                            "DCGM_FI_DEV_XID_ERRORS"]
    assert q.lean["DCGM_FI_DEV_GPU_UTIL"] == (
        'max by (Hostname, gpu) (DCGM_FI_DEV_GPU_UTIL{cluster="a100"})')
    assert q.lean_any["DCGM_FI_DEV_GPU_UTIL"] == (
        'max by (Hostname, instance, gpu) (DCGM_FI_DEV_GPU_UTIL{cluster="a100"})')
    assert not any("UUID" in x or "__name__" in x for x in q.lean_any.values())
    assert q.slow.startswith('max by (Hostname, instance, __name__, gpu) ({__name__=~"')
    assert q.identity.startswith(
        'group by (Hostname, instance, gpu, UUID, modelName) ({__name__=~"DCGM_FI_DEV_GPU_UTIL|')
    assert queries("", host_label="node").lean["DCGM_FI_DEV_FB_USED"] == (
        'max by (node, gpu) (DCGM_FI_DEV_FB_USED{})')


def by_counter(host: str, gpu: int, **values: float | None) -> dict[str, list[S]]:
    """A lean answer: counter -> its series, labelled by host and GPU only."""
    return {f"DCGM_FI_DEV_{name}": [S({"Hostname": host, "gpu": str(gpu)}, value)]
            for name, value in values.items()}


def test_lean_answers_by_counter_keep_the_memory_total_of_the_full_refresh() -> None:
    """The lean queries do not read the free memory (the total does not change): the
    total is what the last full refresh read, the used memory what this one read."""
    fleet = PromFleet("lab")
    free = S({**util("a", 0, 0.0).labels, "__name__": "DCGM_FI_DEV_FB_FREE"}, 60000.0)
    used = S({**util("a", 0, 0.0).labels, "__name__": "DCGM_FI_DEV_FB_USED"}, 20000.0)
    first = fleet.update(100.0, [util("a", 0, 90.0), free, used])
    assert first.samples["a"].gpus[0].memory_total_mib == 80000.0
    second = fleet.update(105.0, by_counter("a", 0, GPU_UTIL=10.0, FB_USED=30000.0),
                          full=False)
    gpu = second.samples["a"].gpus[0]
    assert (gpu.utilization, gpu.memory_used_mib, gpu.memory_total_mib) == (
        10.0, 30000.0, 80000.0)
    assert (gpu.name, gpu.uuid) == ("NVIDIA H100", "U0")
    # used memory unknown this time: no total either (nothing to show a bar against)
    third = fleet.update(110.0, by_counter("a", 0, GPU_UTIL=10.0), full=False)
    assert third.samples["a"].gpus[0].memory_total_mib is None
    assert not third.unknown_gpus


def test_a_new_target_or_a_gpu_without_host_label_asks_for_a_full_refresh() -> None:
    """A lean refresh reads only series with the host label, unless the last full one
    met a GPU without it; a target `up` names that the last full refresh did not know
    (it may have no host label) makes the next refresh a full one."""
    fleet = PromFleet("lab")
    up = [S({"instance": "a:9400"}, 1.0), S({"instance": "a:9100"}, 1.0)]
    fleet.update(100.0, [util("a", 0, 90.0)], up=up)
    hostless = [fleet.hostless]
    same = fleet.update(105.0, by_counter("a", 0, GPU_UTIL=5.0), up=up, full=False)
    assert not same.unknown_gpus and same.samples["a"].gpus[0].utilization == 5.0
    new_target = [*up, S({"instance": "10.0.0.9:9400"}, 1.0)]
    asked = fleet.update(110.0, by_counter("a", 0, GPU_UTIL=5.0), up=new_target, full=False)
    assert asked.unknown_gpus and asked.samples == {}
    full = fleet.update(115.0, [util("a", 0, 90.0),
                                util(None, 0, 3.0, instance="10.0.0.9:9400")], up=new_target)
    hostless.append(fleet.hostless)
    assert sorted(full.samples) == ["10.0.0.9:9400", "a"] and hostless == [False, True]
    # lean: `max by (Hostname, gpu)` puts the series without the label in one group
    # per GPU index, with no host: skipped
    lean = {"DCGM_FI_DEV_GPU_UTIL": [S({"Hostname": "a", "gpu": "0"}, 1.0),
                                     S({"gpu": "0"}, 99.0)]}
    fleet.hostless = False
    skipped = fleet.update(118.0, lean, up=new_target, full=False)
    assert not skipped.unknown_gpus and sorted(skipped.samples) == ["a"]
    fleet.hostless = True
    # lean_any: `max by (Hostname, instance, gpu)` names them by target
    lean = {"DCGM_FI_DEV_GPU_UTIL": [
        S({"Hostname": "a", "instance": "a:9400", "gpu": "0"}, 1.0),
        S({"instance": "10.0.0.9:9400", "gpu": "0"}, 2.0)]}
    later = fleet.update(120.0, lean, up=new_target, full=False)
    assert not later.unknown_gpus and sorted(later.samples) == ["10.0.0.9:9400", "a"]
    assert [later.samples[h].gpus[0].utilization for h in ("a", "10.0.0.9:9400")] == [1.0, 2.0]


def test_a_full_refresh_by_counter_reads_each_gpu_identity_once() -> None:
    """A full refresh as the source asks it: the moving counters by host and GPU, the
    others with their name, and each GPU's UUID, model and target once."""
    fleet = PromFleet("lab")
    identity = [S({"Hostname": "a", "instance": "a:9400", "gpu": "0", "UUID": "U0",
                   "modelName": "NVIDIA H100"}, 1.0),
                S({"instance": "10.0.0.9:9400", "gpu": "0", "UUID": "U9",
                   "modelName": "NVIDIA L40S"}, 1.0)]
    slow = [S({"__name__": "DCGM_FI_DEV_FB_FREE", "Hostname": "a", "gpu": "0"}, 60000.0),
            S({"__name__": "DCGM_FI_DEV_SM_CLOCK", "Hostname": "a", "gpu": "0"}, 1980.0),
            S({"__name__": "DCGM_FI_DEV_FB_FREE", "instance": "10.0.0.9:9400", "gpu": "0"},
              1000.0)]
    lean = {"DCGM_FI_DEV_GPU_UTIL": [S({"Hostname": "a", "gpu": "0"}, 90.0),
                                     S({"instance": "10.0.0.9:9400", "gpu": "0"}, 5.0)],
            "DCGM_FI_DEV_FB_USED": [S({"Hostname": "a", "gpu": "0"}, 20000.0),
                                    S({"instance": "10.0.0.9:9400", "gpu": "0"}, 47000.0)]}
    up = [S({"instance": "a:9400"}, 1.0), S({"instance": "10.0.0.9:9400"}, 0.0)]
    result = fleet.update(100.0, lean, up=up, identity=identity, slow=slow)
    a = result.samples["a"].gpus[0]
    assert a.health is not None
    assert (a.name, a.uuid, a.utilization, a.health.sm_mhz) == ("NVIDIA H100", "U0", 90.0, 1980)
    assert (a.memory_used_mib, a.memory_total_mib) == (20000.0, 80000.0)
    other = result.samples["10.0.0.9:9400"].gpus[0]
    assert (other.name, other.memory_total_mib) == ("NVIDIA L40S", 48000.0)
    assert fleet.hostless is True and fleet.instance_host["a:9400"] == "a"
    assert result.statuses["10.0.0.9:9400"].state is HostState.DOWN
    # the next, lean refresh knows both GPUs: no full refresh asked for
    later = fleet.update(105.0, {"DCGM_FI_DEV_GPU_UTIL": lean["DCGM_FI_DEV_GPU_UTIL"]},
                         up=up, full=False)
    assert not later.unknown_gpus and later.samples["a"].gpus[0].uuid == "U0"


def test_identity_and_slow_counters_read_after_a_lean_refresh() -> None:
    """A scheduled full refresh is shown from its lean answers; its identities and slow
    counters, read after, change the GPUs they name: the hosts where something changed
    get the last sample again (same time, those GPUs made again), the others nothing,
    the statuses nothing; a GPU or target not known asks for a full refresh."""
    fleet = PromFleet("lab")

    def ident(host: str, gpu: int, model: str = "NVIDIA H100") -> S:
        return S({"Hostname": host, "instance": f"{host}:9400", "gpu": str(gpu),
                  "UUID": f"U-{host}{gpu}", "modelName": model}, 1.0)

    def slow(host: str, gpu: int, clock: float, free: float = 60000.0) -> list[S]:
        by = {"Hostname": host, "instance": f"{host}:9400", "gpu": str(gpu)}
        return [S({**by, "__name__": "DCGM_FI_DEV_SM_CLOCK"}, clock),
                S({**by, "__name__": "DCGM_FI_DEV_FB_FREE"}, free)]

    up = [S({"instance": "a:9400"}, 1.0), S({"instance": "b:9400"}, 1.0)]
    lean = {"DCGM_FI_DEV_GPU_UTIL": [S({"Hostname": h, "gpu": "0"}, 50.0) for h in "ab"],
            "DCGM_FI_DEV_FB_USED": [S({"Hostname": h, "gpu": "0"}, 20000.0) for h in "ab"]}
    fleet.update(100.0, lean, up=up, identity=[ident("a", 0), ident("b", 0)],
                 slow=[*slow("a", 0, 1980.0), *slow("b", 0, 1980.0)])
    shown = fleet.update(105.0, lean, up=up, full=False)
    a_before = shown.samples["a"].gpus[0]
    assert (a_before.name, sm_mhz(a_before), a_before.memory_total_mib) == (
        "NVIDIA H100", 1980.0, 80000.0)
    # read after: host a's GPU clocked down, its model renamed, its used memory moved
    used = [S({"Hostname": "a", "gpu": "0"}, 30000.0), S({"Hostname": "b", "gpu": "0"}, 20000.0)]
    later = fleet.update_slow([ident("a", 0, "NVIDIA H100 80GB HBM3"), ident("b", 0)],
                              [*slow("a", 0, 1410.0, free=50000.0), *slow("b", 0, 1980.0)],
                              used)
    assert not later.unknown_gpus and sorted(later.samples) == ["a"]
    again = later.samples["a"]
    assert again.time == 105.0 and again.gpus[0].utilization == 50.0
    gpu = again.gpus[0]
    assert (gpu.name, sm_mhz(gpu), gpu.memory_total_mib) == (
        "NVIDIA H100 80GB HBM3", 1410.0, 80000.0)
    assert fleet.statuses["a"].state is HostState.LIVE and fleet.statuses["a"].since == 100.0
    # the next lean refresh keeps what was read; b, unchanged, keeps its sample
    next_lean = fleet.update(110.0, lean, up=up, full=False)
    assert sm_mhz(next_lean.samples["a"].gpus[0]) == 1410.0
    assert next_lean.samples["a"].gpus[0].name == "NVIDIA H100 80GB HBM3"
    assert next_lean.samples["b"].gpus[0] is shown.samples["b"].gpus[0]
    # the used memory moved and the free with it: same total, nothing to publish again
    moved = fleet.update_slow(
        [ident("a", 0, "NVIDIA H100 80GB HBM3"), ident("b", 0)],
        [*slow("a", 0, 1410.0, free=50000.0), *slow("b", 0, 1980.0, free=10000.0)],
        [S({"Hostname": "a", "gpu": "0"}, 30000.0), S({"Hostname": "b", "gpu": "0"}, 70000.0)])
    assert moved.samples == {} and not moved.unknown_gpus
    # a slow counter gone is unknown, as after a full refresh
    gone = fleet.update_slow([ident("a", 0, "NVIDIA H100 80GB HBM3"), ident("b", 0)],
                             slow("a", 0, 1410.0, free=50000.0), used)
    assert sorted(gone.samples) == ["b"] and sm_mhz(gone.samples["b"].gpus[0]) is None
    # a GPU not known (a second one on a) or a target not known: the next one is full
    new_gpu = fleet.update_slow([ident("a", 0), ident("a", 1), ident("b", 0)], [], used)
    assert new_gpu.unknown_gpus
    new_target = fleet.update_slow([ident("a", 0), ident("b", 0),
                                    S({"instance": "10.0.0.9:9400", "gpu": "0"}, 1.0)], [])
    assert new_target.unknown_gpus
