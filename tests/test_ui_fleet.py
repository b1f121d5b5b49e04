"""The fleet screen and the workspace, driven by keys as a user would."""

from __future__ import annotations

from pathlib import Path

import pytest
import ui_data
from textual.widgets import DataTable, Tabs

from nomadlab.ui.fleet.dialogs import FreeGpusScreen, TrustHostKey
from nomadlab.ui.fleet.pane import FleetPane
from nomadlab.ui.fleet.processes import ProcessTable
from nomadlab.ui.fleet.rows import gpu_key, host_key
from nomadlab.ui.fleet.screen import FleetScreen
from nomadlab.ui.fleet.table import FleetTable
from nomadlab.ui.help import HelpScreen
from nomadlab.ui.workspace import WorkspaceScreen


def row_text(table: DataTable | FleetTable, key: str) -> str:  # type: ignore[type-arg]
    if isinstance(table, FleetTable):
        return " | ".join(cell.plain for cell in table.row_cells(key))
    return " | ".join(cell.plain for cell in table.get_row(key))


def host_rows(table: FleetTable) -> list[str]:
    return [key.split("\x00")[1] for key in table.keys if key.startswith("h")]


async def test_workspace_fleet_pane_puts_problems_first(tmp_path: Path) -> None:
    app, _fleet, _clock = ui_data.build(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, WorkspaceScreen)
        pane = app.screen.query_one(FleetPane)
        pane.refresh_rows()
        order = [str(k.value) for k in pane.rows]
        assert order[:2] == ["new-box", "gcp-l40s"]  # waits for the user, then reconnecting
        assert order.index("runpod-h200") < order.index("lambda-h100")  # a GPU at 91 C
        assert "GPU5 91°C" in row_text(pane, "runpod-h200")
        assert "host key unknown" in row_text(pane, "new-box")


async def test_fleet_screen_rows_and_processes(tmp_path: Path) -> None:
    app, _fleet, _clock = ui_data.build(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("1")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, FleetScreen)
        table = screen.query_one(FleetTable)
        assert host_rows(table) == ["gcp-l40s", "home-4090", "lambda-h100", "new-box",
                                    "runpod-h200"]
        h100 = row_text(table, gpu_key("lambda-h100", 0))
        assert "H100 80GB HBM3" in h100 and "79.6G" in h100 and "/700W" in h100
        assert "alice python train.py" in h100
        assert "reconnecting in 12s" in row_text(table, host_key("gcp-l40s"))
        assert "server not responding to keepalive" in row_text(table, host_key("gcp-l40s"))
        assert "t: trust this key" in row_text(table, host_key("new-box"))
        # Down to home-4090's GPU: its process shows as the text it is.
        table.move_cursor(row=table.get_row_index(gpu_key("home-4090", 0)))
        await pilot.pause()
        procs = screen.query_one(ProcessTable)
        command = procs.get_row_at(0)[4].plain
        assert "[bold]x[/]" in command and "[@click=app.quit]q[/]" in command
        assert "\x1b" not in command and "\x07" not in command
        assert app.is_running  # the [@click=app.quit] did not quit anything


async def test_sort_and_filter(tmp_path: Path) -> None:
    app, _fleet, _clock = ui_data.build(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("1")
        table = app.screen.query_one(FleetTable)
        await pilot.press("s")  # name -> state
        assert table.sort_key == "state"
        assert host_rows(table)[0] == "new-box"
        await pilot.press("s")  # -> utilization (idle first)
        assert host_rows(table)[0] == "gcp-l40s"
        await pilot.press("slash", *"h200")
        await pilot.pause()
        assert host_rows(table) == ["runpod-h200"]
        await pilot.press("escape")
        assert len(host_rows(table)) == 5
        await pilot.press("slash", *"alice", "enter")
        assert set(host_rows(table)) == {"lambda-h100", "runpod-h200"}


async def test_free_gpus_and_copy(tmp_path: Path) -> None:
    app, _fleet, _clock = ui_data.build(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("1", "f")
        await pilot.pause()
        assert isinstance(app.screen, FreeGpusScreen)
        hosts = [f.host for f in app.screen.free]
        assert hosts == ["lambda-h100"]  # gcp-l40s is not live; runpod is full
        assert app.screen.free[0].cuda_visible_devices == "CUDA_VISIBLE_DEVICES=6,7"
        await pilot.press("y")
        assert app.clipboard == "CUDA_VISIBLE_DEVICES=6,7"
        await pilot.press("escape")
        assert isinstance(app.screen, FleetScreen)


async def test_trust_dialog_shows_fingerprint_and_cancels(tmp_path: Path) -> None:
    app, fleet, _clock = ui_data.build(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("1")
        table = app.screen.query_one(FleetTable)
        table.move_cursor(row=table.get_row_index(host_key("new-box")))
        await pilot.press("t")
        await pilot.pause()
        assert isinstance(app.screen, TrustHostKey)
        assert app.screen.info.fingerprint.endswith("fC6E")
        await pilot.press("n")
        assert isinstance(app.screen, FleetScreen)
        assert fleet.statuses["new-box"].hostkey is not None  # nothing was trusted


async def test_layout_cycles_and_is_remembered(tmp_path: Path) -> None:
    app, _fleet, _clock = ui_data.build(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, WorkspaceScreen)
        assert screen.layout_name == "main-left"
        await pilot.press("l")
        assert screen.layout_name == "main-top"
        await pilot.press("tab")
        await pilot.press("m")
        assert screen.maximized is not None
        await pilot.press("m")
        assert screen.maximized is None
    app2, _f, _c = ui_data.build(tmp_path)
    async with app2.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        assert app2.screen.layout_name == "main-top"  # type: ignore[attr-defined]


async def test_narrow_terminal_shows_one_pane_with_switcher(tmp_path: Path) -> None:
    app, _fleet, _clock = ui_data.build(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, WorkspaceScreen) and screen.narrow
        assert len(screen.pane_frames()) == 1
        assert screen.query_one(Tabs).active == "tab-fleet"
        await pilot.press("right_square_bracket")
        await pilot.pause()
        assert screen.pane_frames()[0].kind.key == "logs"


async def test_number_keys_and_help(tmp_path: Path) -> None:
    app, _fleet, _clock = ui_data.build(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        for key, mode in (("1", "fleet"), ("2", "logs"), ("3", "board"), ("4", "papers"),
                          ("5", "focus"), ("0", "workspace")):
            await pilot.press(key)
            assert app.current_mode == mode
        await pilot.press("1", "question_mark")
        assert isinstance(app.screen, HelpScreen)
        keys = {title for title, _rows in app.screen.sections}
        assert "This screen" in keys and "Everywhere" in keys
        await pilot.press("escape")
        commands = [c.title for c in app.get_system_commands(app.screen)]
        assert "Fleet: Free GPUs" in commands and "Go to Board" in commands


async def test_enter_on_fleet_pane_opens_that_host(tmp_path: Path) -> None:
    app, _fleet, _clock = ui_data.build(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        pane = app.screen.query_one(FleetPane)
        pane.focus()
        pane.move_cursor(row=[str(k.value) for k in pane.rows].index("runpod-h200"))
        await pilot.press("enter")
        await pilot.pause()
        await pilot.pause()
        assert isinstance(app.screen, FleetScreen)
        assert app.screen.query_one(FleetTable).selected() == ("runpod-h200", None)


# ---------------------------------------------------------------------- snapshots

@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_snapshot_fleet(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    app, _fleet, _clock = ui_data.build(tmp_path)
    assert snap_compare(app, run_before=ui_data.open_fleet_screen, terminal_size=size)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_snapshot_workspace(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    app, _fleet, _clock = ui_data.build(tmp_path)
    assert snap_compare(app, terminal_size=size)
