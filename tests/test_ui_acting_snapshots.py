"""Snapshots of acting on the fleet: the process tree with details, the signal prompt."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import ui_data
from textual.pilot import Pilot

from nomadlab.core.clock import ManualClock
from nomadlab.core.model import Container, GpuProcess, ProcessInfo
from nomadlab.remote.fleet import Fleet
from nomadlab.ui.fleet.processes import ProcessTable
from nomadlab.ui.fleet.rows import gpu_key
from nomadlab.ui.fleet.table import FleetTable

DOCKER_ID = "3f4e5d6c7b8a9f0e1d2c3b4a5f6e7d8c9b0a1f2e3d4c5b6a7f8e9d0c1b2a3f4e"


def with_details(fleet: Fleet, clock: ManualClock) -> None:
    """lambda-h100's GPU 0 runs a torchrun job (two ranks) in a container."""
    sample = fleet.latest["lambda-h100"]
    parents = ((2210, "torchrun"), (2100, "bash"), (2099, "tmux: server"), (1, "systemd"))
    ctr = Container("docker", DOCKER_ID, "llama-train")
    procs = [
        GpuProcess(4100, "alice", "python train.py --config llama-7b.yaml --rank 0", 57_000,
                   ProcessInfo(881_100, 101.0, 21_300, 3 * 3600 + 420, 2210, parents, ctr)),
        GpuProcess(4108, "alice", "python eval.py --every 500", 900,
                   ProcessInfo(881_900, 12.0, 3_100, 3 * 3600 + 400, 2210, parents, ctr)),
    ]
    gpus = list(sample.gpus)
    gpus[0] = replace(gpus[0], processes=procs)
    fleet.publish_sample(replace(sample, gpus=gpus, time=clock.time(), received=clock.time()))


async def to_gpu0(pilot: Pilot[None]) -> None:
    await pilot.press("1")
    await pilot.pause()
    table = pilot.app.screen.query_one(FleetTable)
    table.move_cursor(row=table.get_row_index(gpu_key("lambda-h100", 0)))
    await pilot.pause()
    pilot.app.screen.query_one(ProcessTable).focus()
    await pilot.pause()


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_snapshot_process_tree(snap_compare, tmp_path: Path,  # type: ignore[no-untyped-def]
                               size: tuple[int, int]) -> None:
    app, fleet, clock = ui_data.build(tmp_path)
    with_details(fleet, clock)

    async def before(pilot: Pilot[None]) -> None:
        await to_gpu0(pilot)
        await pilot.press("T")
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=before)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_snapshot_signal_prompt(snap_compare, tmp_path: Path,  # type: ignore[no-untyped-def]
                                size: tuple[int, int]) -> None:
    app, fleet, clock = ui_data.build(tmp_path)
    with_details(fleet, clock)

    async def before(pilot: Pilot[None]) -> None:
        await to_gpu0(pilot)
        await pilot.press("k")
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=before)


async def test_signal_prompt_shows_hostile_text_as_text(tmp_path: Path) -> None:
    """A command line with markup and escape sequences is shown as the text it is."""
    from textual.widgets import Static

    from nomadlab.ui.confirm import ConfirmScreen
    from nomadlab.ui.fleet.screen import FleetScreen

    app, _fleet, _clock = ui_data.build(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("1")
        await pilot.pause()
        table = app.screen.query_one(FleetTable)
        table.move_cursor(row=table.get_row_index(gpu_key("home-4090", 0)))
        await pilot.pause()
        app.screen.query_one(ProcessTable).focus()
        await pilot.press("k")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        body = " ".join(str(w.render()) for w in app.screen.query(Static))
        assert "[bold]x[/]" in body and "[@click=app.quit]q[/]" in body
        assert "\x1b" not in body and "\x07" not in body
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, FleetScreen)
        assert app.is_running
