"""`nomadlab` makes the feature services (board, papers, focus, jobs) after its first
frame, or when a feature's screen is first shown; what the user then sees is what an
app built with them from the start shows."""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
import ui_data

from nomadlab.cli.tui import build_app
from nomadlab.core.board import BoardService
from nomadlab.core.clock import ManualClock
from nomadlab.core.focus import FocusService
from nomadlab.core.papers import PaperService
from nomadlab.core.store import Store
from nomadlab.remote.fleet import Fleet
from nomadlab.remote.jobs_service import JobsService
from nomadlab.ui.app import NomadApp
from nomadlab.ui.board.pane import BoardPane
from nomadlab.ui.board.screen import BoardScreen
from nomadlab.ui.fleet.pane import FleetPane
from nomadlab.ui.focus.pane import FocusPane
from nomadlab.ui.papers.pane import PapersPane
from nomadlab.ui.workspace import PaneFrame, WorkspaceScreen


def deferred_app(tmp: Path) -> NomadApp:
    clock = ManualClock(ui_data.START)
    cfg = ui_data.config(tmp)
    store = Store(cfg.database)
    fleet = Fleet(cfg, store=store, clock=clock)
    ui_data.feed(fleet, clock)
    return build_app(cfg, clock=clock, start_fleet=False, store=store, fleet=fleet,
                     defer_features=True)


def test_the_services_wait_until_asked_for_once(tmp_path: Path) -> None:
    app = deferred_app(tmp_path)
    services = app.services
    assert (services.features_ready, services.feature_services()) == (False, [])
    told: list[str] = []
    services.feature_listeners.append(lambda: told.append("made"))
    assert services.install_features() is True
    assert services.features_ready and told == ["made"]
    assert isinstance(services.board, BoardService)
    assert isinstance(services.papers, PaperService)
    assert isinstance(services.focus, FocusService)
    assert isinstance(services.jobs, JobsService)
    assert services.board.jobs is services.jobs
    assert services.install_features() is False and told == ["made"]  # once


async def test_after_the_first_frame_every_pane_shows_its_feature(tmp_path: Path) -> None:
    app = deferred_app(tmp_path)
    gc.disable()  # as `nomadlab` does until its first frame
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            for _ in range(20):  # bounded: a few refreshes
                frames = list(app.screen.query(PaneFrame))
                if frames and not any(frame.pending for frame in frames):
                    break
                await pilot.pause()
            assert isinstance(app.screen, WorkspaceScreen)
            assert app.services.features_ready
            assert gc.isenabled()
            contents = {frame.kind.key: type(frame.content)
                        for frame in app.screen.query(PaneFrame)}
            assert contents == {"fleet": FleetPane, "logs": contents["logs"],
                                "board": BoardPane, "papers": PapersPane, "focus": FocusPane}
            assert not any(frame.pending for frame in app.screen.query(PaneFrame))
            # the focused pane is the fleet's, its table focused as before
            assert isinstance(app.focused, FleetPane)
    finally:
        gc.enable()


async def test_a_feature_screen_first_shown_makes_the_services(tmp_path: Path) -> None:
    app = deferred_app(tmp_path)
    services = app.services
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("3")
        await pilot.pause()
        assert isinstance(app.screen, BoardScreen)
        assert services.features_ready
        assert app.screen.service is services.board is not None


async def test_the_footer_shows_the_keys_of_the_focused_pane(tmp_path: Path) -> None:
    from nomadlab.ui.footer import Footer

    app = deferred_app(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        footer = app.screen.query_one(Footer)

        def shown() -> list[str]:
            return [key.description for key in footer.drawn()]

        first = shown()
        assert {"Quit", "Help", "Next pane", "Maximise", "Layout"} <= set(first)
        assert len(first) == len(set(first))  # each key once
        line = footer.render().plain
        assert " q Quit " in line and " ? Help " in line and line.rstrip().endswith("palette")
        assert len(line) == 160
        for _ in range(3):  # focus through the panes and back: the same keys, once each
            await pilot.press("tab")
            await pilot.pause()
        await pilot.press("shift+tab", "shift+tab", "shift+tab")
        await pilot.pause()
        assert isinstance(app.focused, FleetPane)
        assert shown() == first


async def test_a_click_on_a_footer_key_presses_it(tmp_path: Path) -> None:
    from nomadlab.ui.footer import Footer
    from nomadlab.ui.help import HelpScreen

    app = deferred_app(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        footer = app.screen.query_one(Footer)
        assert not footer.children  # one widget draws every key
        help_key = next(key for key in footer.drawn() if key.description == "Help")
        await pilot.click(Footer, offset=(help_key.start + 1, 0))
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)


def test_a_tui_that_cannot_start_leaves_garbage_collection_on(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from nomadlab.cli import main

    config = tmp_path / "config.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\nshow_local = false\n')
    assert gc.isenabled()
    assert main(["--config", str(config)]) == 2  # under pytest stdin is no terminal
    assert "needs a terminal" in capsys.readouterr().err
    assert gc.isenabled()


# What the first frame of `nomadlab` must not wait for: the SSH library itself, how
# hosts are resolved and their keys checked, the log follower and the agents it ships,
# webhooks and notify-send, the alert engine and the GPU health rules (no event and no
# GPU yet), a narrow terminal's tabs, the log viewer (no [[logs]] in this config), and
# the feature services (made after the frame).
NOT_BEFORE_THE_FIRST_FRAME = (
    "asyncssh.connection", "nomadlab.remote.sshconfig", "nomadlab.remote.ssh_target",
    "nomadlab.remote.hostkeys", "nomadlab.remote.tail_follow", "nomadlab.remote.tail_links",
    "nomadlab.remote.bootstrap", "nomadlab.hostside", "nomadlab.notify.webhooks",
    "nomadlab.notify.desktop", "nomadlab.notify.terminal", "nomadlab.core.secrets",
    "nomadlab.core.alert_engine", "nomadlab.core.health", "nomadlab.core.xid",
    "nomadlab.core.board", "nomadlab.core.papers", "nomadlab.core.focus",
    "textual.widgets._tabs", "nomadlab.ui.logs.view", "nomadlab.ui.logtext",
)


def test_the_first_frame_loads_only_what_it_draws(tmp_path: Path) -> None:
    """`nomadlab` with hosts configured paints the workspace (hosts listed, footer keys)
    without importing what only connecting, following a log or alerting needs."""
    import subprocess
    import sys

    config = tmp_path / "config.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\nshow_local = false\n'
                      + "".join(f'[[hosts]]\nname = "gpu-{i}"\nhostname = "127.0.0.1"\n'
                                f"port = 9\n" for i in range(3)))
    code = (
        "import asyncio, sys\n"
        "from nomadlab.core import lazyimport\n"
        "lazyimport.defer('asyncssh')\n"
        "from nomadlab.cli.tui import build_app\n"
        "from nomadlab.core.config import load_config\n"
        "from nomadlab.ui.footer import Footer\n"
        f"app = build_app(load_config({str(config)!r}), start_fleet=False,"
        " defer_features=True)\n"
        # What was loaded when the app, its first frame painted, asks for the features:
        "install = app.services.feature_installer\n"
        "def installer():\n"
        "    keys = [k.description for k in app.screen.query_one(Footer).drawn()]\n"
        "    print('KEYS', *keys)\n"
        "    print('LOADED', *sorted(sys.modules))\n"
        "    return install()\n"
        "app.services.feature_installer = installer\n"
        "async def main():\n"
        "    async with app.run_test(size=(160, 48)) as pilot:\n"
        "        await pilot.pause()\n"
        "asyncio.run(main())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines()
                 if line.startswith(("KEYS ", "LOADED ")))
    assert "Quit" in lines["KEYS"].split()
    loaded = lines["LOADED"].split()
    wrong = [m for m in loaded
             if any(m == p or m.startswith(p + ".") for p in NOT_BEFORE_THE_FIRST_FRAME)]
    assert wrong == [], " ".join(wrong)


async def test_the_log_pane_shows_a_followed_log_once_there_is_one(tmp_path: Path) -> None:
    """The workspace's log pane makes its viewer when a log is there to show (not
    before the first frame): the followed file's lines appear, then the new ones."""
    from nomadlab.core.config import load_config_text
    from nomadlab.ui.logs.pane import LogPane

    log = tmp_path / "train.log"
    log.write_text("step=1 loss=3.20\n")
    config = load_config_text(
        f'data_dir = "{tmp_path / "data"}"\nshow_local = true\n'
        f'[[logs]]\nname = "train"\nhost = "local"\npath = "{log}"\n'
        '[tail]\npoll = 0.05\n')
    app = build_app(config, defer_features=True)

    async def shown(pilot, text: str) -> bool:  # type: ignore[no-untyped-def]
        for _ in range(200):  # bounded: the local tail polls every 0.05 s
            pane = app.screen.query_one(LogPane)
            if pane.view is not None and text in app.export_screenshot():
                return True
            await pilot.pause(0.05)
        return False

    async with app.run_test(size=(160, 48)) as pilot:
        assert await shown(pilot, "step=1")
        assert "train" in app.export_screenshot()
        with log.open("a") as f:
            f.write("step=2 loss=2.90\n")
        assert await shown(pilot, "step=2")
