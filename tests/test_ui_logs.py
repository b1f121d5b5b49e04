"""The logs screen and the alerts screen, on a real local tail, driven by keys."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from conftest import wait_for

from nomadlab.cli.tui import build_app
from nomadlab.core.clock import ManualClock
from nomadlab.core.config import LogConfig, load_config_text
from nomadlab.core.logs import LogBuffer
from nomadlab.ui.alerts.screen import AlertsScreen
from nomadlab.ui.logs.dialogs import OpenLogScreen
from nomadlab.ui.logs.screen import LogsScreen
from nomadlab.ui.logs.view import LogView

_RAW = "[bold]x[/] \x1b]0;pwned\x07 \x1b[2J [@click=app.quit]q[/] \x1b[31mred\x1b[0m \udcff"
HOSTILE = _RAW.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def config_with_logs(tmp: Path, *paths: Path):  # type: ignore[no-untyped-def]
    cfg = load_config_text(f'data_dir = "{tmp / "data"}"\nshow_local = false\n'
                           '[notify]\nbell = false\ndesktop = false\nnotify_send = false\n')
    cfg.logs = [LogConfig(name=p.stem, host="local", path=str(p)) for p in paths]
    cfg.tail.poll = 0.05
    return cfg


def screen_lines(view: LogView) -> list[str]:
    """What the user sees in the viewer, cell by cell."""
    return ["".join(segment.text for segment in view.render_line(y))
            for y in range(view.size.height)]


async def test_live_tail_follows_pauses_and_shows_text_as_text(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_text("".join(f"step {i}\n" for i in range(1, 51)))
    app = build_app(config_with_logs(tmp_path, log))
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("2")
        screen = app.screen
        assert isinstance(screen, LogsScreen)
        view = screen.view
        await wait_for(lambda: len(view.rows) >= 50, what="the first lines")
        with log.open("a") as f:
            f.write(HOSTILE + "\n" + "L" * 20_000 + "\n")
        await wait_for(lambda: len(view.rows) >= 52, what="new lines")
        await pilot.pause(0.1)
        shown = screen_lines(view)
        hostile_row = next(line for line in shown if "[bold]x[/]" in line)
        assert "[@click=app.quit]q[/]" in hostile_row and "red" in hostile_row
        assert all("\x1b" not in line and "\x07" not in line for line in shown)
        assert "\ufffd" in hostile_row  # the invalid byte as a replacement character
        assert app.is_running
        # The 20,000-character line is cut for display, with a marker.
        view.action_toggle_wrap()
        await pilot.pause(0.1)
        assert any("more characters not shown" in line for line in screen_lines(view))
        view.action_toggle_wrap()
        # Scrolling up pauses and counts what arrives meanwhile.
        view.focus()
        await pilot.press("up", "up")
        assert not view.follow
        with log.open("a") as f:
            f.write("".join(f"late {i}\n" for i in range(5)))
        await wait_for(lambda: view.paused_new == 5, what="counted lines")
        assert "5 new" in view.header().plain
        await pilot.press("end")
        assert view.follow and view.paused_new == 0


async def test_search_filter_and_copy(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    log.write_text("".join(f"step {i} loss=1.0\n" for i in range(200))
                   + "ERROR something broke\nstep 200\nWARNING slow\n")
    app = build_app(config_with_logs(tmp_path, log))
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("2")
        screen = app.screen
        assert isinstance(screen, LogsScreen)
        view = screen.view
        await wait_for(lambda: len(view.rows) >= 203, what="the lines")
        await pilot.press("ampersand")
        await pilot.press(*"error|warn")
        await pilot.press("enter")
        assert [view.buffer[view.buffer.index_of(s)].text for s, _ in view.rows] == [
            "ERROR something broke", "WARNING slow"]
        await pilot.press("escape")
        assert len(view.rows) == 203
        await pilot.press("slash", *"step 1", "enter")
        line = view.current_line()
        assert line is not None and "step 1" in line.text
        await pilot.press("n")
        nxt = view.current_line()
        assert nxt is not None and nxt.seq != line.seq and "step 1" in nxt.text
        await pilot.press("y")
        assert app.clipboard == nxt.text


async def test_split_view_and_open_host_path(tmp_path: Path) -> None:
    a, b = tmp_path / "a.log", tmp_path / "b.log"
    a.write_text("alpha\n")
    b.write_text("beta\n")
    other = tmp_path / "adhoc.log"
    other.write_text("ad hoc line\n")
    app = build_app(config_with_logs(tmp_path, a, b))
    async with app.run_test(size=(160, 40)) as pilot:
        await pilot.press("2")
        screen = app.screen
        assert isinstance(screen, LogsScreen)
        await pilot.press("v")
        await pilot.pause()
        assert screen.panel(1).display and set(screen.shown) == {"a", "b"}
        await pilot.press("o")
        await pilot.pause()
        assert isinstance(app.screen, OpenLogScreen)
        dialog = app.screen
        completions = await dialog.completions(f"local:{tmp_path}/adh")
        assert completions == ([f"local:{other}"], None)
        await pilot.press(*f"local:{other}", "enter")
        await pilot.pause()
        assert isinstance(app.screen, LogsScreen)
        name = f"local:{other}"
        assert name in screen.shown
        view = screen.panel(screen.shown.index(name)).view
        await wait_for(lambda: len(view.rows) == 1, what="the ad hoc log")
        await pilot.press("x")  # close the ad hoc log
        await pilot.pause()
        assert name not in screen.shown


async def test_failure_raises_toast_and_alert_history(tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    log.write_text("step 1\n")
    app = build_app(config_with_logs(tmp_path, log))
    async with app.run_test(size=(120, 30)) as pilot:
        hub = app.services.alerts
        assert hub is not None and hub.log is not None
        await pilot.press("2")
        view = app.screen.view  # type: ignore[attr-defined]
        await wait_for(lambda: len(view.rows) >= 1, what="the log")
        with log.open("a") as f:
            f.write("Traceback (most recent call last):\nRuntimeError: CUDA out of memory\n")
        await wait_for(lambda: hub.log.count_unacknowledged() == 1, what="the alert")
        assert any("failed" in n.title for n in app._notifications)
        await pilot.press("exclamation_mark")
        screen = app.screen
        assert isinstance(screen, AlertsScreen)
        assert [a.rule for a in screen.alerts] == ["run failed"]
        await pilot.press("a")
        assert hub.log.count_unacknowledged() == 0
        await pilot.press("l")  # open its log
        await pilot.pause()
        assert isinstance(app.screen, LogsScreen) and app.screen.shown[0] == "job"


# ---------------------------------------------------------------------- snapshots


def _fixed_logs_app(tmp_path: Path):  # type: ignore[no-untyped-def]
    """Two logs with fixed lines (fed to their buffers; nothing is tailed)."""
    clock = ManualClock(1_795_000_000.0)
    cfg = config_with_logs(tmp_path, Path("~/runs/exp42.log"), Path("~/runs/ablation.log"))
    app = build_app(cfg, clock=clock, start_fleet=False)
    logs = app.services.logs
    assert logs is not None
    lines = [f"\x1b[32m[12:00:{i % 60:02d}]\x1b[0m epoch 3 | step {1200 + i} | loss "
             f"{2.0 - i / 100:.3f} | 45.1k tok/s" for i in range(40)]
    lines[12] = "WARNING grad norm 14.2 clipped to 1.0"
    lines[30] = "[bold]literal[/] " + "\x1b]0;title\x07" + "Traceback (most recent call last):"
    for name, texts in (("exp42", lines), ("ablation", ["waiting for data", "step 1"])):
        buffer: LogBuffer = logs.tails[name].buffer
        buffer.append(texts, clock.time())
    return app


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_snapshot_logs(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    app = _fixed_logs_app(tmp_path)

    async def settle(pilot) -> None:  # type: ignore[no-untyped-def]
        await pilot.pause()
        await asyncio.sleep(0.1)

    assert snap_compare(app, press=["2"], terminal_size=size, run_before=settle)


async def test_a_catastrophic_filter_is_turned_off_not_frozen_on(tmp_path: Path) -> None:
    """Issue 9 item 24 in the log view: a typed pattern that backtracks for minutes on
    one short line gets a time limit, is turned off and said to be, and the view stays
    usable."""
    log = tmp_path / "run.log"
    log.write_text("step 1\n" + "a" * 40 + "b\n" + "ERROR boom\n")
    app = build_app(config_with_logs(tmp_path, log))
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("2")
        screen = app.screen
        assert isinstance(screen, LogsScreen)
        view = screen.view
        await wait_for(lambda: len(view.rows) >= 3, what="the lines")
        await pilot.press("ampersand", *"(a|aa)+$", "enter")
        await wait_for(lambda: "too slow" in view.header().plain, what="the too-slow notice")
        assert "turned off" in view.header().plain
        await pilot.press("escape")
        assert len(view.rows) == 3
        await pilot.press("slash", *"ERROR", "enter")
        line = view.current_line()
        assert line is not None and line.text == "ERROR boom"
