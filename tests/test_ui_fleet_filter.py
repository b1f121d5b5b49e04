"""Typing a filter key by key, backspacing it, and hosts changing meanwhile: the fleet
shows the hosts that match what is typed now, whatever was typed before."""

from __future__ import annotations

from pathlib import Path

import ui_data

from nomadlab.core.model import GpuProcess, HostSample
from nomadlab.ui.fleet.rows import parse_key
from nomadlab.ui.fleet.table import FleetTable


def host_rows(table: FleetTable) -> set[str]:
    return {key.split("\x00")[1] for key in table.keys if key.startswith("h")}


async def test_narrowing_and_widening_filter_key_by_key(tmp_path: Path) -> None:
    app, _fleet, _clock = ui_data.build(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("1")
        table = app.screen.query_one(FleetTable)
        await pilot.press("slash", *"4090")
        await pilot.pause()
        assert host_rows(table) == {"home-4090"}
        await pilot.press("backspace")  # "409"
        await pilot.pause()
        assert host_rows(table) == {"home-4090"}
        await pilot.press("backspace")  # "40": the L40S host, left out a key ago, is back
        await pilot.pause()
        assert host_rows(table) == {"home-4090", "gcp-l40s"}
        await pilot.press("backspace", "backspace")  # nothing typed: every host
        await pilot.pause()
        assert len(host_rows(table)) == 5


async def test_host_that_changed_while_filtered_out_is_tested_again(tmp_path: Path) -> None:
    app, fleet, clock = ui_data.build(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("1")
        table = app.screen.query_one(FleetTable)
        await pilot.press("slash", *"alic")
        await pilot.pause()
        assert host_rows(table) == {"lambda-h100", "runpod-h200"}
        # alice starts a job on the 4090 while it is filtered out
        old = fleet.latest["home-4090"]
        gpu = old.gpus[0]
        gpu.processes = [GpuProcess(777, "alice", "python eval.py", 2000)]
        fleet.publish_sample(HostSample("home-4090", clock.time(), 3.0, 9_000, 64_000, 0.2,
                                        [gpu], received=clock.time()))
        await pilot.pause()
        await pilot.press("e")  # "alice" narrows the filter, yet the 4090 changed
        await pilot.pause()
        assert host_rows(table) == {"lambda-h100", "runpod-h200", "home-4090"}
        await pilot.press("backspace")  # "alic" widens it: still all three
        await pilot.pause()
        assert host_rows(table) == {"lambda-h100", "runpod-h200", "home-4090"}


async def test_rows_drawn_ahead_show_data_that_came_after(tmp_path: Path) -> None:
    """Moving the cursor draws the page below ahead; a sample arriving afterwards for a
    host down there is what the user sees when paging down to it."""
    app, fleet, clock = ui_data.build(tmp_path)
    async with app.run_test(size=(160, 16)) as pilot:
        await pilot.press("1")
        table = app.screen.query_one(FleetTable)
        await pilot.press("down")
        for _ in range(20):  # bounded: the rows ahead are drawn a few per turn
            await pilot.pause()
        ahead = table.keys[table.size.height + 1]  # just below the window
        assert ahead in table.strips and ahead not in table.dirty  # drawn ahead
        host, index = parse_key(ahead)
        assert index is not None
        sample = fleet.latest[host]
        gpus = list(sample.gpus)
        gpus[index].name = "NVIDIA Ahead 96GB"  # what the GPU row shows changes
        fleet.publish_sample(HostSample(host, clock.time(), sample.cpu_percent,
                                        sample.memory_used_mib, sample.memory_total_mib,
                                        sample.load1, gpus, received=clock.time()))
        table.flush()  # what the flush timer does once the sample is in
        for _ in range(40):  # bounded: down to that row, the window follows the cursor
            if table.cursor_row >= table.index[ahead]:
                break
            await pilot.press("down")
        await pilot.pause()
        assert table.cursor_row == table.index[ahead]
        lines = [table.render_line(y).text for y in range(1, table.size.height)]
        assert any("Ahead 96GB" in line for line in lines), lines
