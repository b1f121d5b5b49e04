"""The workspace's fleet pane: with room, each host's GPUs under it, worst first."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ui_data

from nomadlab.core.clock import ManualClock
from nomadlab.core.config import SourceConfig, load_config_text
from nomadlab.core.promfleet import PromFleet
from nomadlab.core.store import Store
from nomadlab.remote.fleet import Fleet
from nomadlab.ui.fleet.pane import FleetPane
from nomadlab.ui.fleet.screen import FleetScreen
from nomadlab.ui.fleet.table import FleetTable
from nomadlab.ui.workspace import WorkspaceScreen


def pane_lines(app: Any) -> list[str]:
    """The pane's rows as the user sees them (inside its border)."""
    pane = app.screen.query_one(FleetPane)
    region = pane.content_region
    lines = [strip.text for strip in app.screen._compositor.render_strips()]
    return [line[region.x:region.right].rstrip() for line in lines[region.y:region.bottom]]


async def test_gpus_listed_under_their_hosts_worst_first(tmp_path: Path) -> None:
    app, _fleet, _clock = ui_data.build(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, WorkspaceScreen)
        lines = pane_lines(app)
        used = [line for line in lines if line.strip()]
        assert len(used) == 5 + 8 + 8 + 1  # hosts, then runpod's, lambda's and home's GPUs
        names = [line.split()[0] for line in used]
        # hosts worst first; the live hosts' GPUs under them, the worst GPU first
        assert names[:3] == ["new-box", "gcp-l40s", "runpod-h200"]
        runpod = used[3:11]
        assert runpod[0].split()[0] == "5" and "91°C" in runpod[0]  # the hot one
        assert all("alice python train.py" in line for line in runpod)
        assert all("G/140.4G" in line and "%" in line for line in runpod)
        assert names[11] == "lambda-h100"
        lambda_gpus = used[12:20]
        assert [line.split()[0] for line in lambda_gpus[:2]] == ["6", "7"]  # paid and idle
        assert "idle" in lambda_gpus[0] and "4M/79.6G" in lambda_gpus[0]
        assert names[20] == "home-4090" and used[21].split()[0] == "0"
        assert "bob" in used[21] and "\x1b" not in used[21]
        assert "$31.92/h" in used[2]
        # the reconnecting host keeps one line: its GPU figures are old
        assert not any("L40S" in line for line in used)
        # Enter on a GPU row opens that host on the fleet screen
        pane = app.screen.query_one(FleetPane)
        pane.focus()
        pane.move_cursor(row=12)  # lambda-h100's first GPU
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, FleetScreen)
        table = app.screen.query_one(FleetTable)
        selected = table.selected()
        assert selected is not None and selected[0] == "lambda-h100"


async def test_short_pane_keeps_one_line_per_host(tmp_path: Path) -> None:
    app, _fleet, _clock = ui_data.build(tmp_path)
    async with app.run_test(size=(160, 20)) as pilot:
        await pilot.pause()
        pane = app.screen.query_one(FleetPane)
        keys = [str(k.value) for k in pane.rows]
        assert len(keys) <= pane.size.height  # nothing scrolls out of the pane
        hosts = [k for k in keys if "\x00" not in k]
        assert hosts == ["new-box", "gcp-l40s", "runpod-h200", "lambda-h100", "home-4090"]
        # runpod-h200's 8 GPUs fit; lambda-h100's 8 more do not: it stays one line,
        # and home-4090's single GPU still fits under it
        gpus_of = [k.split("\x00")[0] for k in keys if "\x00" in k]
        assert gpus_of == ["runpod-h200"] * 8 + ["home-4090"]
        used = [line for line in pane_lines(app) if line.strip()]
        assert used[11].split()[0] == "lambda-h100" and "$23.92/h" in used[11]
        assert used[12].split()[0] == "home-4090"


async def test_narrow_pane_keeps_costs_whole(tmp_path: Path) -> None:
    app, _fleet, _clock = ui_data.build(tmp_path)
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.pause()
        text = "\n".join(pane_lines(app))
        for cost in ("$7.30/h", "$31.92/h", "$23.92/h"):
            assert cost in text
        assert "$…" not in text


@dataclass(frozen=True)
class Series:
    labels: dict[str, str]
    value: float | None


def source_fleet(tmp: Path, hosts: int) -> tuple[Any, Fleet, PromFleet, ManualClock]:
    """A Prometheus source's many hosts (8 GPUs each), the last 3 hot, 2 targets down."""
    from nomadlab.cli.tui import build_app

    clock = ManualClock(ui_data.START)
    config = load_config_text(f'show_local = false\ndata_dir = "{tmp}"\n')
    config.sources = [SourceConfig(name="lab", kind="prometheus", url="http://127.0.0.1:9")]
    store = Store(config.database)
    fleet = Fleet(config, store=store, clock=clock)
    model = PromFleet("lab")
    series = []
    for h in range(hosts):
        host = f"node{h:03d}"
        for g in range(8):
            labels = {"Hostname": host, "instance": f"{host}:9400", "gpu": str(g),
                      "UUID": f"GPU-{host}-{g}", "modelName": "NVIDIA H100 80GB HBM3"}
            hot = h >= hosts - 3 and g == 0
            for name, value in (("DCGM_FI_DEV_GPU_UTIL", 97.0), ("DCGM_FI_DEV_FB_USED", 40000.0),
                                ("DCGM_FI_DEV_FB_FREE", 41559.0),
                                ("DCGM_FI_DEV_GPU_TEMP", 91.0 if hot else 60.0)):
                series.append(Series({**labels, "__name__": name}, value))
    up = [Series({"instance": f"node{h:03d}:9400"}, 0.0 if h in (5, 6) else 1.0)
          for h in range(hosts)]
    result = model.update(clock.time(), series, up=up)
    for status in result.statuses.values():
        fleet.publish_status(status)
    for sample in result.samples.values():
        fleet.publish_sample(sample)
    app = build_app(config, clock=clock, start_fleet=False, store=store, fleet=fleet)
    return app, fleet, model, clock


async def test_more_hosts_than_lines_shows_the_worst_and_how_many_more(tmp_path: Path) -> None:
    """A thousand hosts in a pane of a few lines: the worst ones (down, then hot), one
    line each, and a last line with how many more and their states; Enter there opens
    the fleet table, where every host is."""
    app, fleet, _model, _clock = source_fleet(tmp_path, 300)
    async with app.run_test(size=(160, 30)) as pilot:
        await pilot.pause()
        pane = app.screen.query_one(FleetPane)
        keys = [str(k.value) for k in pane.rows]
        assert len(keys) <= pane.size.height  # nothing scrolls out of the pane
        assert keys[:5] == ["node005", "node006", "node297", "node298", "node299"]
        lines = [line for line in pane_lines(app) if line.strip()]
        assert lines[0].split()[0] == "node005" and "down" in lines[0]
        assert lines[2].split()[0] == "node297" and "91°C" in lines[2]
        shown = len(keys) - 1
        assert lines[-1].split()[0] == f"+{300 - shown}"
        assert f"{300 - shown} live" in lines[-1] and "enter: the fleet table" in lines[-1]
        pane.focus()
        pane.move_cursor(row=len(keys) - 1)
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, FleetScreen)
        table = app.screen.query_one(FleetTable)
        assert sum(1 for k in table.keys if k.startswith("h")) == 300
        assert len(fleet.names()) == 300
