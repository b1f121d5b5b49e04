"""A fleet mixing SSH hosts and Prometheus hosts, on screen."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ui_data
from prom import PromServer, exporters, prometheus
from standins.dcgm import Gpu, Node, StandinExporters

from nomadlab.core.clock import ManualClock
from nomadlab.core.config import SourceConfig
from nomadlab.core.promfleet import PromFleet
from nomadlab.core.store import Store
from nomadlab.remote.fleet import Fleet
from nomadlab.ui.fleet.rows import gpu_key, host_key
from nomadlab.ui.fleet.screen import FleetScreen
from nomadlab.ui.fleet.table import FleetTable

__all__ = ["exporters", "prometheus"]  # fixtures


def row_text(table: FleetTable, key: str) -> str:
    return " | ".join(cell.plain for cell in table.row_cells(key))


@dataclass(frozen=True)
class S:
    labels: dict[str, str]
    value: float | None


def dcgm(host: str, gpu: int, name: str, value: float | None) -> S:
    return S({"__name__": name, "Hostname": host, "instance": f"{host}:9400", "gpu": str(gpu),
              "UUID": f"GPU-{host}-{gpu}", "modelName": "NVIDIA A100-SXM4-80GB"}, value)


def mixed(tmp: Path, url: str = "http://127.0.0.1:9"):  # type: ignore[no-untyped-def]
    """ui_data's SSH fleet plus a source "lab" with two DCGM hosts, one of them down."""
    from nomadlab.cli.tui import build_app

    clock = ManualClock(ui_data.START)
    cfg = ui_data.config(tmp)
    cfg.sources = [SourceConfig(name="lab", kind="prometheus", url=url, hourly_cost=4.0)]
    store = Store(cfg.database)
    fleet = Fleet(cfg, store=store, clock=clock)
    ui_data.feed(fleet, clock)
    model = PromFleet("lab")
    series = []
    for gpu, (util, used, temp, power) in enumerate([(88, 61000, 67, 312), (0, 0, 31, 58)]):
        for name, value in (("DCGM_FI_DEV_GPU_UTIL", util), ("DCGM_FI_DEV_FB_USED", used),
                            ("DCGM_FI_DEV_FB_FREE", 81920 - used),
                            ("DCGM_FI_DEV_GPU_TEMP", temp), ("DCGM_FI_DEV_POWER_USAGE", power)):
            series.append(dcgm("dgx-a01", gpu, name, value))
            series.append(dcgm("dgx-a02", gpu, name, value))
    now = clock.time()
    lab: Any = fleet.source("lab")  # replayed through the source's own listener
    first = model.update(now - 10, series)
    for status in first.statuses.values():
        lab.on_status(status)
    for sample in first.samples.values():
        lab.on_sample(sample)
    later = model.update(now, [s for s in series if s.labels["Hostname"] == "dgx-a01"],
                         up=[S({"instance": "dgx-a02:9400"}, 0.0)])
    for status in later.statuses.values():
        lab.on_status(status)
    for sample in later.samples.values():
        lab.on_sample(sample)
    app = build_app(cfg, clock=clock, start_fleet=False, store=store, fleet=fleet)
    return app, fleet, clock


async def test_prometheus_hosts_in_the_fleet_table(tmp_path: Path) -> None:
    app, fleet, _clock = mixed(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("1")
        await pilot.pause()
        assert isinstance(app.screen, FleetScreen)
        table = app.screen.query_one(FleetTable)
        a01 = row_text(table, host_key("dgx-a01"))
        assert "live" in a01 and "via lab" in a01 and "$4.00/h" in a01
        gpu0 = row_text(table, gpu_key("dgx-a01", 0))
        assert "A100-SXM4-80GB" in gpu0 and "88%" in gpu0 and "processes not reported" in gpu0
        a02 = row_text(table, host_key("dgx-a02"))
        assert "down" in a02 and "target dgx-a02:9400 is down (up == 0)" in a02
        # the SSH hosts carry on as before
        assert "alice python train.py" in row_text(table, gpu_key("lambda-h100", 0))
        assert fleet.source_name("dgx-a01") == "lab"
        assert fleet.source_name("lambda-h100") == "ssh"


async def test_real_prometheus_hosts_reach_the_screen(
        tmp_path: Path, prometheus: PromServer, exporters: StandinExporters) -> None:
    exporters.add(Node("dgx-b07", gpus=[Gpu(util=73.0, used=30000.0)] * 4))
    prometheus.set_targets(exporters.targets())
    prometheus.wait_for("DCGM_FI_DEV_GPU_UTIL", lambda r: len(r) == 4)
    app, fleet, _clock = mixed(tmp_path, prometheus.url)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("1")
        lab: Any = fleet.source("lab")
        await lab.refresh()
        await pilot.pause(0.3)  # the table's coalescing window (FLUSH_WINDOW)
        table = app.screen.query_one(FleetTable)
        assert host_key("dgx-b07") in table.keys
        assert "73%" in row_text(table, gpu_key("dgx-b07", 3))
        assert "via lab" in row_text(table, host_key("dgx-b07"))


def test_snapshot_mixed_fleet(snap_compare, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    app, _fleet, _clock = mixed(tmp_path)
    assert snap_compare(app, run_before=ui_data.open_fleet_screen, terminal_size=(160, 48))
