"""Energy from the GPUs' total-energy counters: kWh and its cost in the week report."""

from __future__ import annotations

from pathlib import Path

import focus_seed
import ui_data
from focus_seed import FakeBoard, FakePapers

from nomadlab.core.clock import ManualClock
from nomadlab.core.config import load_config_text
from nomadlab.core.energy import EnergyRecorder, energy_by_host
from nomadlab.core.focus import FocusService
from nomadlab.core.focus.report import week_report
from nomadlab.core.model import GpuHealth, GpuSample, HostSample
from nomadlab.core.store import Store

KWH_MJ = 3_600_000_000  # millijoules in a kWh


def sample(host: str, t: float, counters: list[int]) -> HostSample:
    gpus = [GpuSample(i, "H100", f"GPU-{i}", 90.0, 1.0, 2.0, 60.0, 600.0, 700.0,
                      health=GpuHealth(energy_mj=mj)) for i, mj in enumerate(counters)]
    return HostSample(host, t, 1.0, 1.0, 2.0, 0.0, gpus, received=t)


def test_kwh_per_host_from_counter_deltas_and_a_reset(tmp_path: Path) -> None:
    store = Store(tmp_path / "db.sqlite")
    rec = EnergyRecorder(store, {"a": 0.3, "b": None})
    t0 = 60.0 * 1000
    # Several samples in one minute: one row per GPU and minute.
    assert rec.add(sample("a", t0, [0, 10 * KWH_MJ])) == 2
    assert rec.add(sample("a", t0 + 30, [KWH_MJ // 2, 10 * KWH_MJ])) == 0
    rec.add(sample("a", t0 + 60, [KWH_MJ, 11 * KWH_MJ]))
    rec.add(sample("a", t0 + 120, [2 * KWH_MJ, 5]))  # GPU 1 reset: its drop is not energy
    rec.add(sample("b", t0, [0]))
    rec.add(sample("b", t0 + 60, [KWH_MJ // 4]))
    found = energy_by_host(store, 1000, 1003)
    assert found["a"].kwh == 3.0  # GPU 0: 1 + 1, GPU 1: 1
    assert round(found["a"].cost or 0, 6) == 0.9
    assert found["b"].kwh == 0.25 and found["b"].cost is None
    assert energy_by_host(store, 1001, 1003)["a"].kwh == 1.0  # only inside the span


def test_week_report_gives_kwh_and_cost_next_to_idle_cost(tmp_path: Path) -> None:
    cfg = ui_data.config(tmp_path)
    store = Store(cfg.database)
    focus_seed.seed(cfg, store)
    price = load_config_text('[[hosts]]\nname = "lambda-h100"\nhostname = "x"\n'
                             'kwh_price = 0.3\n').hosts[0].kwh_price
    assert price == 0.3
    rec = EnergyRecorder(store, {"lambda-h100": price})
    t = focus_seed.NOW - 3600
    for step, counter in enumerate((0, 5 * KWH_MJ, 12 * KWH_MJ)):
        rec.add(sample("lambda-h100", t + 60 * step, [counter]))
    focus = FocusService(cfg, store, ManualClock(focus_seed.NOW))
    focus.link(board=FakeBoard(), papers=FakePapers())
    report = week_report(focus, "2026-W47")
    assert ("Energy", "12.0 kWh (cost 3.60, next to idle cost 3.00)") in report.stat_lines()
    assert "lambda-h100: 2.0 h used, 1.0 h idle, idle cost 3.00 of 9.00, 12.0 kWh (3.60)" \
        in report.text()
    assert "- **Energy:** 12.0 kWh (cost 3.60, next to idle cost 3.00)" in report.markdown()
    home = next(h for h in report.gpu if h["host"] == "home-4090")
    assert "kwh" not in home  # no energy counter there: nothing made up


def test_bad_kwh_price_is_one_clear_line() -> None:
    try:
        load_config_text('[[hosts]]\nname = "a"\nhostname = "x"\nkwh_price = -1\n')
    except Exception as exc:
        assert "kwh_price" in str(exc) and "\n" not in str(exc).strip()
    else:
        raise AssertionError("a negative price was accepted")
