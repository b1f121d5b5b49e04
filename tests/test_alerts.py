"""The alert engine with a ManualClock (no sleeping), the default rules, the alert log."""

from __future__ import annotations

from pathlib import Path

import pytest

from nomadlab.core.alert_engine import AlertEngine
from nomadlab.core.alert_store import AlertLog
from nomadlab.core.alerts import (
    DEFAULT_RULES,
    LINE_LIMIT,
    Alert,
    clean_text,
    rules_for,
)
from nomadlab.core.clock import ManualClock
from nomadlab.core.config import AlertRule, load_config_text
from nomadlab.core.logs import LogLine
from nomadlab.core.model import GpuProcess, GpuSample, HostSample, HostState, HostStatus
from nomadlab.core.store import Store

MIN = 60.0
HOUR = 3600.0


def lines(*texts: str, start: int = 1) -> list[LogLine]:
    return [LogLine(start + i, t, 0.0) for i, t in enumerate(texts)]


def defaults() -> list[AlertRule]:
    return rules_for(load_config_text(""))


def gpu(index: int, util: float | None = 0.0, procs: tuple[GpuProcess, ...] = (),
        temp: float | None = 50.0) -> GpuSample:
    return GpuSample(index=index, name="H100", uuid=f"GPU-{index}", utilization=util,
                     memory_used_mib=0.0, memory_total_mib=81559.0, temperature_c=temp,
                     power_w=70.0, power_limit_w=700.0, processes=list(procs))


def sample(host: str, gpus: list[GpuSample], clock: ManualClock) -> HostSample:
    return HostSample(host=host, time=clock.time(), cpu_percent=1.0, memory_used_mib=1.0,
                      memory_total_mib=2.0, load1=0.0, gpus=gpus, received=clock.time())


def status(host: str, state: HostState, clock: ManualClock, error: str | None = None
           ) -> HostStatus:
    return HostStatus(name=host, state=state, since=clock.time(), error=error)


# --------------------------------------------------------------------------- rules


def test_rules_for_defaults_user_rules_and_replacement() -> None:
    assert [r.name for r in defaults()] == [r.name for r in DEFAULT_RULES]
    config = load_config_text(
        '[[alerts]]\nname = "GPUs idle"\nwhen = "gpu_idle"\nduration = "30m"\n'
        '[[alerts]]\nname = "oom"\nwhen = "log"\npattern = "OOM"\n'
    )
    rules = rules_for(config)
    assert [r.name for r in rules] == ["run failed", "run finished", "GPUs idle", "host down",
                                       "GPU health", "oom"]
    idle = next(r for r in rules if r.name == "GPUs idle")
    assert idle.duration == 1800 and idle.paid_only is False  # the user's, whole
    off = load_config_text('[notify]\ndefault_rules = false\n'
                           '[[alerts]]\nname = "oom"\nwhen = "log"\npattern = "OOM"\n')
    assert [r.name for r in rules_for(off)] == ["oom"]
    # the defaults are copies: changing one does not change DEFAULT_RULES
    rules[0].cooldown = 1
    assert DEFAULT_RULES[0].cooldown == 600


@pytest.mark.parametrize("text, rule", [
    ("Traceback (most recent call last):", "run failed"),
    ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB", "run failed"),
    ("step 1200 Loss is NaN, stopping", "run failed"),
    ("WARNING: loss is nan", "run failed"),
    ("nan loss at step 7", "run failed"),
    ("Killed", "run failed"),
    ("\x1b[31mTraceback (most recent call last):\x1b[0m", "run failed"),
    ("Training complete in 4h", "run finished"),
    ("FINISHED TRAINING.", "run finished"),
    ("training completed: 10 epochs", "run finished"),
])
def test_default_log_rules_match(text: str, rule: str) -> None:
    clock = ManualClock()
    engine = AlertEngine(defaults(), clock)
    alerts = engine.on_log_lines("train", "gpu1", lines("epoch 1", text, "epoch 2"))
    assert [a.rule for a in alerts] == [rule]
    alert = alerts[0]
    assert alert.log == "train" and alert.host == "gpu1" and alert.time == clock.time()
    assert alert.outcome == ("failed" if rule == "run failed" else "finished")
    assert alert.severity == ("error" if rule == "run failed" else "info")
    assert alert.line == clean_text(text)
    assert "\x1b" not in alert.message and "train on gpu1" in alert.message
    assert alert.extra["seq"] == 2


@pytest.mark.parametrize("text", [
    "import traceback", "print_traceback()", "unkilled", "skilled worker", "nano loss=0.3",
    "training completes soon? no",
])
def test_default_log_rules_do_not_match(text: str) -> None:
    engine = AlertEngine(defaults(), ManualClock())
    assert engine.on_log_lines("train", "gpu1", lines(text)) == []


def test_log_cooldown_per_rule_and_log() -> None:
    clock = ManualClock()
    engine = AlertEngine(defaults(), clock)
    first = engine.on_log_lines("a", "gpu1", lines("Traceback x", "Traceback y"))
    assert len(first) == 1 and first[0].line == "Traceback x"  # one per batch in cooldown
    assert engine.on_log_lines("b", "gpu1", lines("Traceback z"))  # another log: its own
    # a different rule on the same log is not held back by the first one's cooldown
    assert [a.rule for a in engine.on_log_lines("a", "gpu1", lines("Training complete"))] == [
        "run finished"]
    clock.advance(9 * MIN + 59)
    assert engine.on_log_lines("a", "gpu1", lines("Traceback again")) == []
    clock.advance(1)
    again = engine.on_log_lines("a", "gpu1", lines("ok", "Traceback again"))
    assert len(again) == 1 and again[0].line == "Traceback again"


def test_log_rule_globs_zero_cooldown_and_batch_order() -> None:
    rule = AlertRule(name="oom", when="log", pattern="OOM", logs=["train-*"], hosts=["gpu?"],
                     cooldown=0, severity="error")
    engine = AlertEngine([rule], ManualClock())
    assert engine.on_log_lines("eval", "gpu1", lines("OOM")) == []
    assert engine.on_log_lines("train-a", "cpu1", lines("OOM")) == []
    out = engine.on_log_lines("train-a", "gpu1", lines("OOM 1", "fine", "OOM 2", "oom 3"))
    assert [a.line for a in out] == ["OOM 1", "OOM 2"]  # case-sensitive as written
    assert [a.extra["seq"] for a in out] == [1, 3]


def test_log_match_never_spans_lines_and_anchors_work() -> None:
    rules = [
        AlertRule(name="spaced", when="log", pattern=r"loss:\s+nan", cooldown=0),
        AlertRule(name="anchored", when="log", pattern=r"^ERROR$", cooldown=0),
        AlertRule(name="dotall", when="log", pattern=r"(?s)start.*end", cooldown=0),
    ]
    engine = AlertEngine(rules, ManualClock())
    assert engine.on_log_lines("l", "h", lines("loss:", "nan", "x ERROR", "ERROR x",
                                               "start", "end")) == []
    out = engine.on_log_lines("l", "h", lines("start", "loss:  nan", "ERROR", "start and end"))
    assert sorted(a.rule for a in out) == ["anchored", "dotall", "spaced"]


def test_log_line_is_cut_and_cleaned() -> None:
    engine = AlertEngine(defaults(), ManualClock())
    long = "Traceback " + "x" * 5000
    (alert,) = engine.on_log_lines("l", "", lines(long))
    assert alert.line is not None and len(alert.line) == LINE_LIMIT
    assert alert.host is None and "l matched" not in alert.message
    assert len(alert.message) < 300
    evil = "Traceback \x1b]0;pwned\x07\x1b[2J[bold]x\x9b"
    (alert,) = AlertEngine(defaults(), ManualClock()).on_log_lines("l", "h", lines(evil))
    assert alert.line == "Traceback [bold]x"


def test_user_pattern_with_inline_ignorecase() -> None:
    rule = AlertRule(name="diverged", when="log", pattern="(?i)diverged", cooldown=0)
    engine = AlertEngine([rule], ManualClock())
    assert len(engine.on_log_lines("l", "h", lines("Run DIVERGED", "diverged"))) == 2


# --------------------------------------------------------------------------- gpu_idle


def test_gpu_idle_cost_hand_computed_and_reminder() -> None:
    clock = ManualClock()
    engine = AlertEngine(defaults(), clock, costs={"gpu1": 32.0})
    busy = (GpuProcess(1, "me", "python train.py", 1000.0),)
    gpus = [gpu(i, 0.0) for i in range(3)] + [gpu(i, 95.0, busy) for i in range(3, 8)]
    engine.on_status(status("gpu1", HostState.LIVE, clock))
    assert engine.on_sample(sample("gpu1", gpus, clock)) == []
    clock.advance(14 * MIN + 59)
    assert engine.on_sample(sample("gpu1", gpus, clock)) == []
    assert engine.tick() == []
    clock.advance(1)
    (alert,) = engine.tick()
    assert alert.rule == "GPUs idle" and alert.severity == "warning" and alert.host == "gpu1"
    # 32/h for 8 GPUs; 3 idle for a quarter hour: 32 x 3/8 x 0.25 = 3.00
    assert alert.extra["idle_cost"] == pytest.approx(3.0)
    assert alert.extra["gpus"] == [0, 1, 2] and alert.extra["total_gpus"] == 8
    assert alert.message == ("3 of 8 GPUs on gpu1 idle for 15m, about 3.00 spent on idle GPUs "
                             "so far (32.00/h for the host).")
    assert engine.tick() == []  # said once, not every second
    clock.advance(HOUR - 1)
    assert engine.on_sample(sample("gpu1", gpus, clock)) == []
    clock.advance(1)
    (reminder,) = engine.tick()  # still idle an hour later: reminded with the cost so far
    # 32 x 3/8 x 1.25 h = 15.00
    assert reminder.extra["idle_cost"] == pytest.approx(15.0)
    assert "idle for 1h15m" in reminder.message


def test_gpu_idle_clears_and_rearms() -> None:
    clock = ManualClock()
    rule = AlertRule(name="idle", when="gpu_idle", duration=10 * MIN, cooldown=0,
                     utilization=5.0)
    engine = AlertEngine([rule], clock, costs={"h": None})
    idle = [gpu(0, 3.0), gpu(1, 5.0)]
    engine.on_sample(sample("h", idle, clock))
    clock.advance(9 * MIN)
    # GPU 1 gets busy: its idle time starts over; GPU 0 keeps going
    engine.on_sample(sample("h", [gpu(0, 3.0), gpu(1, 60.0)], clock))
    clock.advance(1 * MIN)
    (alert,) = engine.on_sample(sample("h", [gpu(0, 3.0), gpu(1, 0.0)], clock))
    assert alert.extra["gpus"] == [0] and alert.message == "1 of 2 GPUs on h idle for 10m."
    assert "idle_cost" not in alert.extra  # no hourly cost: no money said
    clock.advance(HOUR)
    assert engine.tick() == []  # cooldown 0: once per episode
    engine.on_sample(sample("h", [gpu(0, 50.0), gpu(1, 50.0)], clock))  # clears
    engine.on_sample(sample("h", idle, clock))  # comes back: a new duration
    clock.advance(10 * MIN - 1)
    assert engine.tick() == []
    clock.advance(1)
    (again,) = engine.tick()
    assert again.extra["gpus"] == [0, 1] and again.message.startswith("2 of 2 GPUs on h idle")


def test_gpu_idle_paid_only_unknown_utilization_and_processes() -> None:
    clock = ManualClock()
    engine = AlertEngine(defaults(), clock, costs={"paid": 10.0, "free": None})
    engine.on_sample(sample("free", [gpu(0, 0.0)], clock))
    engine.on_sample(sample("paid", [gpu(0, None), gpu(1, 0.0, (GpuProcess(5, "u", "x", 1.0),))],
                            clock))
    clock.advance(2 * HOUR)
    engine.on_sample(sample("free", [gpu(0, 0.0)], clock))
    assert engine.tick() == []  # free host (paid_only), unknown utilization, a process


def test_gpu_idle_resets_when_host_goes_away() -> None:
    clock = ManualClock()
    engine = AlertEngine(defaults(), clock, costs={"h": 8.0})
    engine.on_status(status("h", HostState.LIVE, clock))
    engine.on_sample(sample("h", [gpu(0)], clock))
    clock.advance(10 * MIN)
    engine.on_status(status("h", HostState.STALE, clock))
    engine.on_status(status("h", HostState.LIVE, clock))
    engine.on_sample(sample("h", [gpu(0)], clock))
    clock.advance(10 * MIN)
    assert engine.tick() == []  # 20 minutes, but not 15 seen in one stretch
    clock.advance(5 * MIN)
    (alert,) = engine.tick()
    # 8/h, 1 of 1 GPU, 15 minutes: 2.00
    assert alert.extra["idle_cost"] == pytest.approx(2.0)
    assert alert.message.startswith("1 of 1 GPU on h idle for 15m, about 2.00")


# --------------------------------------------------------------------------- host_down


def test_host_down_after_duration_with_cooldown_and_rearm() -> None:
    clock = ManualClock()
    engine = AlertEngine(defaults(), clock)
    assert engine.on_status(status("gpu1", HostState.LIVE, clock)) == []
    engine.on_status(status("gpu1", HostState.RECONNECTING, clock, "Connection refused"))
    clock.advance(2 * MIN)
    engine.on_status(status("gpu1", HostState.CONNECTING, clock))  # states cycle: still down
    clock.advance(2 * MIN)
    engine.on_status(status("gpu1", HostState.RECONNECTING, clock, "Connection refused"))
    clock.advance(59)
    assert engine.tick() == []
    clock.advance(1)
    (alert,) = engine.tick()
    assert alert.rule == "host down" and alert.host == "gpu1" and alert.severity == "warning"
    assert alert.message == ("gpu1 has not been reachable for 5m "
                             "(reconnecting: Connection refused).")
    assert alert.extra["down_seconds"] == 300
    assert engine.tick() == []
    # back, then down again within the hour: a new duration, but the cooldown holds it
    engine.on_status(status("gpu1", HostState.LIVE, clock))
    clock.advance(10 * MIN)
    engine.on_status(status("gpu1", HostState.AUTH_FAILED, clock, "Permission denied"))
    clock.advance(5 * MIN)
    assert engine.tick() == []
    clock.advance(45 * MIN)  # an hour after the first alert; down for 50 minutes now
    (again,) = engine.tick()
    assert "50m" in again.message and "auth failed: Permission denied" in again.message


def test_host_down_not_for_stopped_hosts_and_host_globs() -> None:
    clock = ManualClock()
    rules = [AlertRule(name="down", when="host_down", duration=60, hosts=["gpu*"])]
    engine = AlertEngine(rules, clock)
    engine.on_status(status("gpu1", HostState.STOPPED, clock))
    engine.on_status(status("laptop", HostState.RECONNECTING, clock))
    clock.advance(HOUR)
    assert engine.tick() == []
    engine.on_status(status("gpu2", HostState.HOSTKEY_UNKNOWN, clock))
    clock.advance(60)
    assert [a.host for a in engine.tick()] == ["gpu2"]


# --------------------------------------------------------------------------- process_exit


def test_process_exit_says_how_long_and_where() -> None:
    clock = ManualClock()
    rule = AlertRule(name="run ended", when="process_exit", pattern=r"train\.py",
                     severity="info", cooldown=0)
    engine = AlertEngine([rule], clock)
    train = GpuProcess(100, "me", "python train.py --lr 3e-4", 40000.0)
    other = GpuProcess(200, "me", "jupyter-kernel", 1000.0)
    engine.on_sample(sample("gpu1", [gpu(0, 99, (train,)), gpu(1, 99, (train,)),
                                     gpu(2, 10, (other,))], clock))
    clock.advance(1 * MIN)
    late = GpuProcess(300, "me", "python train.py --seed 2", 1.0)
    engine.on_sample(sample("gpu1", [gpu(0, 99, (train,)), gpu(1, 99, (train,)),
                                     gpu(2, 10, (other,)), gpu(3, 99, (late,))], clock))
    clock.advance(2 * HOUR)
    assert engine.on_sample(sample("gpu1", [gpu(0, 99, (train,)), gpu(1, 99, (train,)),
                                            gpu(2, 0), gpu(3, 99, (late,))], clock)) == []
    clock.advance(12 * MIN)
    (alert,) = engine.on_sample(sample("gpu1", [gpu(0, 99, (train,)), gpu(1, 0), gpu(2, 0),
                                                gpu(3, 0)], clock))
    assert alert.rule == "run ended" and alert.host == "gpu1"
    assert alert.message == ("On gpu1: python train.py --seed 2 (pid 300, GPU 3) ran 2h12m "
                             "and ended.")
    assert alert.extra["gpus"] == [3]
    clock.advance(MIN)
    (alert,) = engine.on_sample(sample("gpu1", [gpu(0, 0), gpu(1, 0), gpu(2, 0), gpu(3, 0)],
                                       clock))
    # running when nomadlab first saw the host: "at least"
    assert "(pid 100, GPU 0, 1) ran at least 2h14m" in alert.message


def test_process_exit_ignores_empty_gpu_view_and_reports_outage() -> None:
    clock = ManualClock()
    rule = AlertRule(name="run ended", when="process_exit", pattern="train", cooldown=0)
    engine = AlertEngine([rule], clock)
    train = GpuProcess(7, "me", "train", 1.0)
    engine.on_status(status("h", HostState.LIVE, clock))
    engine.on_sample(sample("h", [gpu(0, 90, (train,))], clock))
    clock.advance(HOUR)
    engine.on_sample(sample("h", [gpu(0, 90, (train,))], clock))
    assert engine.on_sample(sample("h", [], clock)) == []  # no GPU view: nothing concluded
    engine.on_status(status("h", HostState.RECONNECTING, clock))
    clock.advance(HOUR)
    engine.on_status(status("h", HostState.LIVE, clock))
    (alert,) = engine.on_sample(sample("h", [gpu(0, 0)], clock))
    assert alert.message == ("On h: train (pid 7, GPU 0) ran at least 1h00m and ended while "
                             "the host was unreachable.")


# --------------------------------------------------------------------------- temperature


def test_temperature_above_limit_for_duration() -> None:
    clock = ManualClock()
    rule = AlertRule(name="hot", when="temperature", limit=85, duration=2 * MIN,
                     cooldown=10 * MIN, severity="error")
    engine = AlertEngine([rule], clock)
    engine.on_sample(sample("h", [gpu(0, temp=86), gpu(1, temp=85)], clock))  # 85 is not above
    clock.advance(1 * MIN)
    engine.on_sample(sample("h", [gpu(0, temp=80), gpu(1, temp=70)], clock))  # cooled: clears
    engine.on_sample(sample("h", [gpu(0, temp=91), gpu(1, temp=None)], clock))
    clock.advance(2 * MIN - 1)
    assert engine.tick() == []
    clock.advance(1)
    (alert,) = engine.on_sample(sample("h", [gpu(0, temp=92), gpu(1, temp=60)], clock))
    assert alert.severity == "error"
    assert alert.message == "GPU 0 on h above 85\u00b0C for 2m: GPU 0 92\u00b0C."
    assert alert.extra["temperatures"] == {"0": 92}


# --------------------------------------------------------------------------- helpers


# --------------------------------------------------------------------------- the alert log


def test_alert_log_survives_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "data" / "nomadlab.db"
    clock = ManualClock()
    store = Store(db)
    assert store.schema_versions()["alerts"] == 1
    log = AlertLog(store, clock)
    ids = []
    for i, severity in enumerate(("info", "warning", "error", "warning")):
        alert = Alert(time=clock.time() + i, rule="r", severity=severity, title=f"t{i}",
                      message="m", host="h", extra={"idle_cost": 1.5, "gpus": [0, 1]})
        ids.append(log.insert(alert))
        assert alert.id == ids[-1]
    assert log.count_unacknowledged() == 4
    assert log.acknowledge(ids[1]) is True
    assert log.acknowledge(ids[1]) is False  # already
    assert log.acknowledge(999) is False
    store.close()

    store = Store(db)  # a new process, the next day
    log = AlertLog(store, clock)
    assert log.count_unacknowledged() == 3
    assert log.count_unacknowledged(min_severity="warning") == 2
    recent = log.recent()
    assert [a.title for a in recent] == ["t3", "t2", "t1", "t0"]  # newest first
    assert recent[2].acknowledged == clock.time() and recent[0].acknowledged is None
    assert recent[0].extra == {"idle_cost": 1.5, "gpus": [0, 1]}
    assert [a.title for a in log.recent(unacknowledged=True, severity="warning")] == ["t3"]
    assert [a.title for a in log.recent(min_severity="error")] == ["t2"]
    assert log.get(ids[0]) == recent[3]
    clock.advance(10)
    assert log.acknowledge_all() == 3
    assert log.count_unacknowledged() == 0
    assert log.prune(clock.time() - 10 + 2) == 2
    assert len(log.recent()) == 2
    store.close()


def test_a_traceback_alert_quotes_the_exception_that_ended_it() -> None:
    """On a phone, 'CUDA out of memory' says more than 'Traceback (most recent ...'."""
    engine = AlertEngine(list(DEFAULT_RULES), ManualClock(), {})
    alerts = engine.on_log_lines("exp", "gpu1", lines(
        "step 9",
        "Traceback (most recent call last):",
        '  File "train.py", line 88, in <module>',
        "    loss.backward()",
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.50 GiB",
    ))
    assert [a.rule for a in alerts] == ["run failed"]
    assert "torch.OutOfMemoryError: CUDA out of memory" in alerts[0].message
    assert alerts[0].line == "Traceback (most recent call last):"
