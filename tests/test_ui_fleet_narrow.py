"""The fleet on small terminals: what gives way first, and hosts without a GPU.

Everything is read from the screen as drawn (the compositor's lines), the way a
user reads it: full costs, full CUDA_VISIBLE_DEVICES lines, no wide empty gap.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import ui_data
from conftest import config_for, host_for, wait_for
from sshd import SshServer

from nomadlab.core.model import GpuSample, HostSample, HostState, HostStatus
from nomadlab.ui.fleet.dialogs import FreeGpusScreen
from nomadlab.ui.fleet.pane import FleetPane
from nomadlab.ui.fleet.processes import ProcessTable
from nomadlab.ui.fleet.rows import host_key
from nomadlab.ui.fleet.screen import FleetScreen
from nomadlab.ui.fleet.table import FleetTable


def screen_lines(app: Any) -> list[str]:
    """The terminal's rows as the user sees them."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


def table_lines(app: Any) -> list[str]:
    """The rows of the fleet table (inside its border, less its scrollbar)."""
    table = app.screen.query_one(FleetTable)
    region = table.scrollable_content_region
    return [line[region.x:region.right] for line in screen_lines(app)[region.y:region.bottom]]


@pytest.mark.parametrize("size", [(80, 24), (100, 30)])
async def test_costs_are_whole_and_the_width_is_used(tmp_path: Path,
                                                     size: tuple[int, int]) -> None:
    app, _fleet, _clock = ui_data.build(tmp_path)
    async with app.run_test(size=size) as pilot:
        await pilot.press("1")
        await pilot.pause()
        assert isinstance(app.screen, FleetScreen)
        table = app.screen.query_one(FleetTable)
        first = "\n".join(table_lines(app))
        assert "$7.30/h" in first  # gcp-l40s, the first host
        table.select_host("lambda-h100")
        await pilot.pause()
        text = "\n".join(table_lines(app))
        assert "$23.92/h" in text, text
        assert "$…" not in first + text and "$2…" not in text
        # The columns fill the table: the last one ends at most 2 cells from the edge.
        spec = table.columns_spec
        assert spec is not None
        width = len(table_lines(app)[0])
        assert width - 2 <= sum(w + 2 for w in spec.widths()) <= width
        # GPU figures are never cut into '…'
        for line in table_lines(app):
            if "°C" in line:
                assert re.search(r"\d+(\.\d)?[GM]/\d+(\.\d)?G", line), line
                assert re.search(r"\d+/\d+W", line), line
        if size[0] >= 100:  # room for who runs what
            assert "Processes" in table_lines(app)[0]
            assert "alice python" in text


async def test_free_gpu_line_is_never_cut(tmp_path: Path) -> None:
    app, fleet, clock = ui_data.build(tmp_path)
    now = clock.time()
    gpus = [GpuSample(i, "NVIDIA H100 80GB HBM3 with a long marketing name", f"GPU-{i}", 0, 4,
                      81559, 30, 70, 700, []) for i in range(16)]
    fleet.publish_sample(HostSample("gcp-l40s", now, 5.0, 20_000, 184_320, 0.4, gpus,
                                    received=now))
    fleet.publish_status(HostStatus("gcp-l40s", HostState.LIVE, now, last_sample=now))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("1")
        await pilot.press("f")
        await pilot.pause()
        assert isinstance(app.screen, FreeGpusScreen)
        assert app.screen.free[0].host == "gcp-l40s"
        line = "CUDA_VISIBLE_DEVICES=" + ",".join(str(i) for i in range(16))
        rows = screen_lines(app)
        assert not any("CUDA_VISIBLE_DEVICES" in r and "…" in r for r in rows)
        flat = "".join(re.sub(r"[^A-Za-z0-9_=,:]", "", r) for r in rows)
        assert "Linetocopy:" + line in flat
        await pilot.press("y")
        assert app.clipboard == line


async def test_host_without_gpu_says_why(make_sshd: Any, tmp_path: Path) -> None:
    """A real host over real sshd whose driver cannot be loaded (no stand-in NVML, no
    nvidia-smi): the fleet, the workspace pane and the processes pane say why."""
    from nomadlab.cli.tui import build_app

    server: SshServer = make_sshd({"NOMADLAB_FAKE_NVML": "/nonexistent"})
    server.write_known_hosts(server.base / "known_hosts")
    config = config_for(host_for(server, "cpu-box"), tmp=tmp_path)
    app = build_app(config)
    fleet = app.services.fleet
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(lambda: fleet.latest.get("cpu-box") is not None
                       and fleet.statuses["cpu-box"].state is HostState.LIVE,
                       timeout=30, what="the host live")
        status = fleet.statuses["cpu-box"]
        assert status.info is not None and status.info.gpu_count == 0
        await pilot.pause(0.3)  # the bridge's coalescing window (real clock here)
        pane = app.screen.query_one(FleetPane)
        pane.refresh_rows()
        row = " ".join(cell.plain for cell in pane.get_row("cpu-box"))
        assert "no GPU" in row and "no NVIDIA" in row
        await pilot.press("1")
        await pilot.pause()
        assert isinstance(app.screen, FleetScreen)
        table = app.screen.query_one(FleetTable)
        text = "\n".join(table_lines(app))
        assert "live · no GPU  no NVIDIA driver (" in text
        table.select_host("cpu-box")
        await pilot.pause()
        procs = app.screen.query_one(ProcessTable)
        hint = procs.get_row_at(0)[4].plain
        assert hint.startswith("This host has no GPU to list processes of: no NVIDIA driver")
        assert procs.selected_process() is None
        assert host_key("cpu-box") in table.keys
