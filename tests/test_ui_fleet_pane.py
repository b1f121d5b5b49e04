"""The workspace's fleet pane: with room, each host's GPUs under it, worst first."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ui_data

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
