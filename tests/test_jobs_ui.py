"""The Jobs screen (key 6) and the workspace jobs pane, driven by keys."""

from __future__ import annotations

from pathlib import Path

import jobs_ui_data
import pytest

from nomadlab.ui.confirm import ConfirmScreen
from nomadlab.ui.jobs.pane import JobsPane
from nomadlab.ui.jobs.screen import JobsScreen
from nomadlab.ui.jobs.table import JobsTable, cluster_key


def row(table: JobsTable, key: str) -> str:
    return " | ".join(cell.plain for cell in table.get_row(key))


def select(table: JobsTable, cluster: str, ident: str) -> None:
    table.move_cursor(row=table.get_row_index(f"j\x00{cluster}\x00{ident}"))


async def test_jobs_screen_rows(tmp_path: Path) -> None:
    app, _clock = jobs_ui_data.build(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("6")
        await pilot.pause()
        assert isinstance(app.screen, JobsScreen)
        table = app.screen.query_one(JobsTable)
        header = row(table, cluster_key("della"))
        assert header.startswith("▾ della | 7 jobs | live")
        tiger = row(table, cluster_key("tiger"))
        assert "down" in tiger and "cannot reach tiger-login: connection refused" in tiger
        partitions = str(app.screen.query_one("#partitions").render())
        assert "della · gpu 2 idle/6 alloc/8 GPUs" in partitions
        llama = row(table, "j\x00della\x004242001")
        assert "RUNNING" in llama and "59:55/1-00:00:00" in llama and "| 4 |" in llama
        assert "[bold]x" in llama and "\x1b" not in llama and "\x07" not in llama
        sweep = row(table, "j\x00della\x004242002_[0-7%2]")
        assert "QOSMaxGRESPerUser (your QOS GPU limit is reached)" in sweep
        assert "FAILED exit 3" in row(table, "j\x00della\x004241990")
        assert app.is_running


async def test_actions_only_on_my_jobs_and_cancel_asks(tmp_path: Path) -> None:
    app, _clock = jobs_ui_data.build(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("6")
        await pilot.pause()
        table = app.screen.query_one(JobsTable)
        select(table, "della", "4241800")  # bob's
        await pilot.press("c")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        assert any("belongs to bob, not to you" in n.message for n in app._notifications)
        select(table, "della", "4242001")
        await pilot.press("c")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert "della:4242001" in app.screen.body.plain
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, JobsScreen)


async def test_sort_filter_fold(tmp_path: Path) -> None:
    app, _clock = jobs_ui_data.build(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("6")
        await pilot.pause()
        table = app.screen.query_one(JobsTable)
        assert len(table.jobs_by_key) == 7
        await pilot.press("slash", *"sweep")
        await pilot.pause()
        assert sorted(k.split("\x00")[2] for k in table.jobs_by_key) == [
            "4242002_3", "4242002_[0-7%2]"]
        await pilot.press("escape")
        await pilot.pause()
        assert len(table.jobs_by_key) == 7
        table.move_cursor(row=table.get_row_index(cluster_key("della")))
        await pilot.press("space")
        await pilot.pause()
        assert table.jobs_by_key == {}
        await pilot.press("s")
        await pilot.pause()
        assert table.sort_key == "id"


async def test_workspace_jobs_pane(tmp_path: Path) -> None:
    app, _clock = jobs_ui_data.build(tmp_path, panes=["fleet", "jobs"])
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        pane = app.screen.query_one(JobsPane)
        assert "j\x00della\x004242001" in pane.jobs_by_key
        labels = [str(c.label) for c in pane.columns.values()]
        assert labels == ["job", "name", "state", "elapsed / limit"]
        assert "llama-ft" in row(pane, "j\x00della\x004242001")


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_snapshot_jobs(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    app, _clock = jobs_ui_data.build(tmp_path)
    assert snap_compare(app, press=["6"], terminal_size=size)


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_snapshot_jobs_pane(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    app, _clock = jobs_ui_data.build(tmp_path, panes=["fleet", "jobs"])
    assert snap_compare(app, terminal_size=size)


async def test_gpus_key_only_for_my_running_jobs(tmp_path: Path) -> None:
    app, _clock = jobs_ui_data.build(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("6")
        await pilot.pause()
        table = app.screen.query_one(JobsTable)
        select(table, "della", "4241999")  # mine, pending (held)
        await pilot.press("g")
        await pilot.pause()
        assert isinstance(app.screen, JobsScreen)
        assert any("is not running" in n.message for n in app._notifications)
        select(table, "della", "4241800")  # bob's
        await pilot.press("g")
        await pilot.pause()
        assert isinstance(app.screen, JobsScreen)
        assert any("belongs to bob" in n.message for n in app._notifications)


async def test_without_clusters_the_screen_says_what_to_add(tmp_path: Path) -> None:
    """A new user pressing 6 in the demo (no [[clusters]]) reads what to configure."""
    from nomadlab.cli.tui import build_app
    from nomadlab.core.config import load_config_text

    config = load_config_text(f'data_dir = "{tmp_path / "data"}"\nshow_local = false\n')
    app = build_app(config)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("6")
        await pilot.pause()
        assert isinstance(app.screen, JobsScreen)
        hint = str(app.screen.query_one("#partitions").render())
        assert "No Slurm cluster is configured" in hint and "[[clusters]]" in hint
