"""The ``gpu_health`` alert kind, on by default, timed with a ManualClock."""

from __future__ import annotations

from nomadlab.core.alert_engine import AlertEngine
from nomadlab.core.alerts import rules_for
from nomadlab.core.clock import ManualClock
from nomadlab.core.config import load_config_text
from nomadlab.core.health import assess
from nomadlab.core.model import GpuHealth, GpuSample, HostSample, HostState, HostStatus, XidEvent


def gpu(index: int, health: GpuHealth, util: float = 100.0) -> GpuSample:
    return GpuSample(index=index, name="H100", uuid=f"GPU-{index}", utilization=util,
                     memory_used_mib=0.0, memory_total_mib=81559.0, temperature_c=60.0,
                     power_w=600.0, power_limit_w=700.0, health=health)


def sample(gpus: list[GpuSample], clock: ManualClock, host: str = "gpu1") -> HostSample:
    return HostSample(host=host, time=clock.time(), cpu_percent=1.0, memory_used_mib=1.0,
                      memory_total_mib=2.0, load1=0.0, gpus=gpus, received=clock.time())


def healthy() -> GpuHealth:
    return GpuHealth(throttle_mask=0, pcie_gen=5, pcie_width=16, pcie_max_gen=5,
                     pcie_max_width=16, ecc_enabled=True, ecc_volatile_uncorrected=0,
                     remap_pending=False, remap_failure=False, xid=[])


def engine(clock: ManualClock, config: str = "") -> AlertEngine:
    return AlertEngine(rules_for(load_config_text(config)), clock)


def test_on_by_default_each_xid_said_once() -> None:
    clock = ManualClock()
    alerts = engine(clock)
    assert alerts.on_sample(sample([gpu(0, healthy()), gpu(1, healthy())], clock)) == []
    sick = healthy()
    sick.xid = [XidEvent(79, clock.time())]
    clock.advance(1)
    [alert] = alerts.on_sample(sample([gpu(0, healthy()), gpu(1, sick)], clock))
    assert alert.rule == "GPU health" and alert.severity == "error"
    assert alert.title == "GPU health: gpu1 GPU 1"
    assert alert.message.startswith("GPU 1 on gpu1: XID 79: fell off the bus. ")
    clock.advance(1)
    assert alerts.on_sample(sample([gpu(0, healthy()), gpu(1, sick)], clock)) == []
    sick.xid = [*sick.xid, XidEvent(13, clock.time())]
    [again] = alerts.on_sample(sample([gpu(0, healthy()), gpu(1, sick)], clock))
    assert "XID 13" in again.message and again.severity == "warning"


def test_ecc_and_remap_pending() -> None:
    clock = ManualClock()
    alerts = engine(clock)
    h = healthy()
    h.ecc_volatile_uncorrected = 2
    h.remap_pending = True
    found = alerts.on_sample(sample([gpu(0, h)], clock))
    assert [a.message.split(". ")[0] for a in found] == [
        "GPU 0 on gpu1: 2 uncorrectable ECC errors",
        "GPU 0 on gpu1: row remap pending: reset needed"]
    assert alerts.on_sample(sample([gpu(0, h)], clock)) == []
    h.ecc_volatile_uncorrected = 3
    [more] = alerts.on_sample(sample([gpu(0, h)], clock))
    assert "3 uncorrectable ECC errors" in more.message


def test_hw_slowdown_only_after_for() -> None:
    clock = ManualClock()
    alerts = engine(clock, '[[alerts]]\nname = "GPU health"\nwhen = "gpu_health"\n'
                           'for = "30s"\n')
    hot = healthy()
    hot.throttle_mask = 0x40
    assert alerts.on_sample(sample([gpu(0, hot)], clock)) == []
    clock.advance(20)
    assert alerts.on_sample(sample([gpu(0, hot)], clock)) == []
    clock.advance(10)
    [alert] = alerts.on_sample(sample([gpu(0, hot)], clock))
    assert "HW thermal slowdown for 30s" in alert.message
    assert alert.severity == "warning"
    clock.advance(10)
    assert alerts.on_sample(sample([gpu(0, hot)], clock)) == []
    # It clears, comes back: a new episode, timed from the start again.
    alerts.on_sample(sample([gpu(0, healthy())], clock))
    clock.advance(1)
    assert alerts.on_sample(sample([gpu(0, hot)], clock)) == []
    # A host that went away starts its durations over.
    clock.advance(29)
    alerts.on_status(HostStatus(name="gpu1", state=HostState.STALE, since=clock.time()))
    assert alerts.on_sample(sample([gpu(0, hot)], clock)) == []


def test_pcie_downgrade_only_under_load() -> None:
    clock = ManualClock()
    alerts = engine(clock)
    slow = healthy()
    slow.pcie_gen, slow.pcie_width = 3, 8
    idle = gpu(0, slow, util=0.0)
    assert assess(idle) is not None and assess(idle).state == "ok"  # type: ignore[union-attr]
    for _ in range(3):
        assert alerts.on_sample(sample([idle], clock)) == []
        clock.advance(60)
    busy = gpu(0, slow)
    assert alerts.on_sample(sample([busy], clock)) == []
    clock.advance(60)
    [alert] = alerts.on_sample(sample([busy], clock))
    assert "PCIe Gen3 x8 of Gen5 x16 under load for 1m" in alert.message


def test_assess_orders_worst_first() -> None:
    h = healthy()
    h.throttle_mask = 0x40
    h.throttle_seconds = {0x40: 40.0}
    h.pcie_gen, h.pcie_width = 3, 8
    h.ecc_volatile_uncorrected = 2
    h.remap_pending = True
    h.xid = [XidEvent(79, 1.0)]
    verdict = assess(gpu(0, h))
    assert verdict is not None and verdict.state == "fail"
    assert verdict.reasons == ["XID 79: fell off the bus", "2 uncorrectable ECC errors",
                               "row remap pending: reset needed", "HW thermal slowdown 40s",
                               "PCIe Gen3 x8 of Gen5 x16 under load"]
    assert assess(gpu(0, healthy())).state == "ok"  # type: ignore[union-attr]
    no_health = GpuSample(index=0, name="x", uuid="", utilization=None, memory_used_mib=None,
                          memory_total_mib=None, temperature_c=None, power_w=None,
                          power_limit_w=None)
    assert assess(no_health) is None


def test_gpu_health_rule_in_config_and_off() -> None:
    config = load_config_text('[notify]\ndefault_rules = false\n')
    assert [r.when for r in rules_for(config)] == []
    bad = '[[alerts]]\nname = "x"\nwhen = "gpu_healthy"\n'
    try:
        load_config_text(bad)
    except Exception as exc:
        assert "gpu_health" in str(exc)
    else:
        raise AssertionError("an unknown kind was accepted")


def test_health_from_the_wire_is_checked() -> None:
    """Untrusted input: wrong types, absurd numbers and markup become None or text."""
    from nomadlab.remote.health_wire import decode_health, encode_health

    assert decode_health("junk") is None
    h = decode_health({"thr": "0x40", "thr_s": {"64": -5, "x": 1, "8": 12.5},
                       "clk": [1, 2, 3], "pcie": [3, 8, 5, 99], "ecc": [True, 1, 2, 3, 4],
                       "rows": [0, 0, 1, 0], "xid": [[79, 1.5], ["79", 1], [48]],
                       "mig": [["[bold]x[/]", 1.0, 2.0, [5, "6", -1]]], "e": float("nan")})
    assert h is not None
    assert h.throttle_mask is None and h.throttle_seconds == {8: 12.5}
    assert h.sm_mhz is None  # a clock list of the wrong length
    assert (h.pcie_gen, h.pcie_max_width) == (3, None)
    assert h.ecc_enabled is None and h.ecc_volatile_uncorrected == 2
    assert h.remap_pending is True
    assert [(x.code, x.time) for x in h.xid or []] == [(79, 1.5)]
    assert h.mig is not None and h.mig[0].profile == "[bold]x[/]" and h.mig[0].processes == (5,)
    assert h.energy_mj is None
    again = decode_health(encode_health(h))
    assert again == h


def test_the_xid_kind_hears_any_source_through_gpu_health() -> None:
    """`when = "xid"` reads the XID events of the GPU's health, whichever source filled
    them (NVML's event thread over SSH here; DCGM's last-XID counter through
    Prometheus in test_prometheus_fleet): each new event said once, GPU and code named."""
    clock = ManualClock()
    alerts = engine(clock, '[notify]\ndefault_rules = false\n'
                           '[[alerts]]\nname = "xid"\nwhen = "xid"\n')
    sick = healthy()
    assert alerts.on_sample(sample([gpu(0, healthy()), gpu(1, sick)], clock)) == []
    sick.xid = [XidEvent(79, clock.time())]
    clock.advance(1)
    [alert] = alerts.on_sample(sample([gpu(0, healthy()), gpu(1, sick)], clock))
    assert alert.rule == "xid" and alert.message == "gpu1 reported an XID error: GPU 1 XID 79."
    assert alert.extra["gpus"] == [1] and alert.extra["xids"] == [79]
    clock.advance(1)
    assert alerts.on_sample(sample([gpu(0, healthy()), gpu(1, sick)], clock)) == []
    sick.xid = [*sick.xid, XidEvent(79, clock.time())]  # the same code again, later
    [again] = alerts.on_sample(sample([gpu(0, healthy()), gpu(1, sick)], clock))
    assert again.extra["xids"] == [79]
