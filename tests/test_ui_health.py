"""The health column and the GPU detail (``enter``), driven by keys, plus snapshots."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import ui_data
from textual.widgets import Static

from nomadlab.core.model import GpuHealth, HostSample, MigInstance, XidEvent
from nomadlab.ui.fleet.detail import GpuDetailScreen
from nomadlab.ui.fleet.pane import FleetPane
from nomadlab.ui.fleet.rows import gpu_key, host_key, mig_key
from nomadlab.ui.fleet.screen import FleetScreen
from nomadlab.ui.fleet.table import FleetTable

HOST = "lambda-h100"


def healthy() -> GpuHealth:
    return GpuHealth(throttle_mask=0, sm_mhz=1980, sm_max_mhz=1980, mem_mhz=2619,
                     mem_max_mhz=2619, pcie_gen=5, pcie_width=16, pcie_max_gen=5,
                     pcie_max_width=16, ecc_enabled=True, ecc_volatile_corrected=0,
                     ecc_volatile_uncorrected=0, ecc_aggregate_corrected=0,
                     ecc_aggregate_uncorrected=0, remap_corrected=0, remap_uncorrected=0,
                     remap_pending=False, remap_failure=False, nvlink_links=18,
                     nvlink_down=0, persistence=True, compute_mode=0,
                     energy_mj=912_345_000_000, xid=[])


def build_sick(tmp_path: Path) -> Any:
    """The fixed fleet, with lambda-h100's GPU 0 failing and GPU 1 throttled."""
    app, fleet, clock = ui_data.build(tmp_path)
    now = clock.time()
    last = fleet.latest[HOST]
    gpus = []
    for gpu in last.gpus:
        h = healthy()
        if gpu.index == 0:
            h.xid = [XidEvent(79, now - 95), XidEvent(13, now - 400)]
            h.ecc_volatile_uncorrected = 2
            h.ecc_aggregate_uncorrected = 2
            h.remap_pending = True
        elif gpu.index == 1:
            h.throttle_mask = 0x40
            h.throttle_seconds = {0x40: 40.0}
            h.sm_mhz = 990
            h.pcie_gen, h.pcie_width = 3, 8
        elif gpu.index == 6:
            h.mig = [MigInstance("3g.40gb", 11091.0, 40448.0, (21180, 21181, 21198)),
                     MigInstance("2g.20gb", 17.0, 20096.0, ())]
        gpu.health = h
        gpus.append(gpu)
    fleet.publish_sample(HostSample(HOST, now, last.cpu_percent, last.memory_used_mib,
                                    last.memory_total_mib, last.load1, gpus, received=now))
    return app


def cells(table: FleetTable, key: str) -> list[str]:
    return [cell.plain for cell in table.row_cells(key)]


async def test_health_column_worst_reason_first(tmp_path: Path) -> None:
    app = build_sick(tmp_path)
    async with app.run_test(size=(200, 48)) as pilot:
        await pilot.press("1")
        await pilot.pause()
        table = app.screen.query_one(FleetTable)
        assert table.columns_spec is not None and table.columns_spec.titles()[-2] == "Health"
        assert "FAIL XID 79: fell off the bus" in cells(table, gpu_key(HOST, 0))
        assert "warn HW thermal slowdown 40s" in cells(table, gpu_key(HOST, 1))
        assert "ok" in cells(table, gpu_key(HOST, 2))
        assert "1 FAIL" in cells(table, host_key(HOST))
        # A host whose agent sends no health fields: unknown, not "ok".
        assert "—" in cells(table, gpu_key("runpod-h200", 0))
        # MIG on: each instance is a child row with its profile, memory and processes.
        rows = [k for k in table.keys if k.startswith(f"m\x00{HOST}\x00")]
        assert rows == [mig_key(HOST, 6, 0), mig_key(HOST, 6, 1)]
        first = cells(table, mig_key(HOST, 6, 0))
        assert "MIG 3g.40gb" in first[0] and first[3] == "10.8G/39.5G"
        assert first[-1] == "pids 21180, 21181, 21198"
        assert cells(table, mig_key(HOST, 6, 1))[-1] == "—"
        assert table.get_row_index(mig_key(HOST, 6, 1)) + 1 == table.get_row_index(
            gpu_key(HOST, 7))
        table.move_cursor(row=table.get_row_index(mig_key(HOST, 6, 0)))
        assert table.selected() == (HOST, 6)


async def test_workspace_fleet_pane_says_the_failing_gpu(tmp_path: Path) -> None:
    app = build_sick(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        pane = app.screen.query_one(FleetPane)
        pane.refresh_rows()
        row = " | ".join(cell.plain for cell in pane.get_row(HOST))
        assert "GPU0 XID 79: fell off the bus" in row
        order = [str(k.value) for k in pane.rows]
        assert order.index(HOST) < order.index("runpod-h200")  # before a GPU at 91 C


async def test_narrow_health_column_is_the_state_only(tmp_path: Path) -> None:
    app = build_sick(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("1")
        await pilot.pause()
        table = app.screen.query_one(FleetTable)
        assert "FAIL" in cells(table, gpu_key(HOST, 0))
        assert "warn" in cells(table, gpu_key(HOST, 1))


async def test_enter_opens_gpu_detail_and_escape_returns(tmp_path: Path) -> None:
    app = build_sick(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("1")
        await pilot.pause()
        table = app.screen.query_one(FleetTable)
        table.move_cursor(row=table.get_row_index(gpu_key(HOST, 0)))
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, GpuDetailScreen)
        text = str(app.screen.query_one("#gpu-detail-body", Static).render())
        for expected in ("lambda-h100 · GPU 0", "FAIL", "XID 79: fell off the bus",
                         "2 uncorrectable ECC errors", "row remap pending: reset needed",
                         "PCIe", "Gen5 x16 of Gen5 x16", "18 of 18 up", "persistence on",
                         "253.4 kWh", "XID 13: graphics engine exception",
                         "reboot the host"):
            assert expected in text, expected
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, FleetScreen)
        assert app.screen.query_one(FleetTable).selected() == (HOST, 0)
        # MIG: each instance with its profile, memory and processes.
        table = app.screen.query_one(FleetTable)
        table.move_cursor(row=table.get_row_index(gpu_key(HOST, 6)))
        await pilot.press("enter")
        await pilot.pause()
        text = str(app.screen.query_one("#gpu-detail-body", Static).render())
        assert "MIG devices" in text and "3g.40gb" in text and "21180, 21181, 21198" in text
        await pilot.press("escape")
        # enter on a host row folds it, as space does.
        await pilot.pause()
        table = app.screen.query_one(FleetTable)
        table.move_cursor(row=table.get_row_index(host_key(HOST)))
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, FleetScreen)
        assert HOST in table.collapsed


# ---------------------------------------------------------------------- snapshots

@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_snapshot_health_column(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    app = build_sick(tmp_path)

    async def to_gpu(pilot):  # type: ignore[no-untyped-def]
        await pilot.press("1")
        await pilot.pause()
        table = app.screen.query_one(FleetTable)
        table.move_cursor(row=table.get_row_index(gpu_key(HOST, 0)))
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=to_gpu)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_snapshot_gpu_detail(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    app = build_sick(tmp_path)

    async def open_detail(pilot):  # type: ignore[no-untyped-def]
        await pilot.press("1")
        await pilot.pause()
        table = app.screen.query_one(FleetTable)
        table.move_cursor(row=table.get_row_index(gpu_key(HOST, 0)))
        await pilot.press("enter")
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=open_detail)
