"""The "Open a log" dialog: completion over real SFTP (a real sshd, the demo's
servers), hostile file names shown visibly and never raw, stale suggestions never
applied over newer typing, failures said, and `x` leaving no empty pane."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from conftest import config_for, host_for, wait_for
from sshd import SshServer
from test_ui_logs import config_with_logs
from textual.widgets import Input, OptionList, Static

from nomadlab.cli.tui import build_app
from nomadlab.remote.demo import DemoFleet
from nomadlab.ui.logs.dialogs import OpenLogScreen
from nomadlab.ui.logs.screen import LogsScreen

OSC_TITLE = "\x1b]0;pwned\x07"
OSC_52 = "\x1b]52;c;cm0gLXJmIH4K\x07"
DCS = "\x1bP+q544e\x1b\\"
C1_CSI = "\x9b2J"
BIDI = "gol.\u202etxt"
HOSTILE = [f"a{OSC_TITLE}.log", f"b{OSC_52}.log", f"c{DCS}.log", f"d{C1_CSI}.log", BIDI]
CONTROL = {chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]} | {"\u202e", "\u200b"}


def prompts(dialog: OpenLogScreen) -> list[str]:
    options = dialog.query_one("#choices", OptionList)
    return [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]


def hint(dialog: OpenLogScreen) -> str:
    return str(dialog.query_one("#open-hint", Static).render())


async def test_hostile_remote_names_are_shown_visibly(make_sshd: Callable[..., SshServer],
                                                      tmp_path: Path) -> None:
    server = make_sshd()
    server.write_known_hosts(server.base / "known_hosts")
    folder = tmp_path / "runs"
    folder.mkdir()
    for name in HOSTILE:
        (folder / name).write_text(f"inside {name[0]}\n")
    config = config_for(host_for(server), tmp=tmp_path)
    app = build_app(config)
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_for(lambda: app.services.fleet.supervisors["gpu1"].connection is not None,
                       what="the connection")
        await pilot.press("2", "o")
        await wait_for(lambda: isinstance(app.screen, OpenLogScreen), what="the dialog")
        dialog = app.screen
        assert isinstance(dialog, OpenLogScreen)
        await pilot.press(*f"gpu1:{folder}/")
        await wait_for(lambda: len(prompts(dialog)) == len(HOSTILE), what="the suggestions")
        shown = prompts(dialog)
        assert not any(set(p) & CONTROL for p in shown), shown
        assert f"gpu1:{folder}/a<U+001B>]0;pwned<U+0007>.log" in shown
        assert f"gpu1:{folder}/d<U+009B>2J.log" in shown
        assert f"gpu1:{folder}/gol.<U+202E>txt" in shown
        box = dialog.query_one("#spec", Input)
        for step in range(len(HOSTILE)):
            box.value = f"gpu1:{folder}/"
            await wait_for(lambda: dialog.suggested_for == box.value, what="suggestions")
            dialog.query_one("#choices", OptionList).highlighted = step
            await pilot.press("tab")
            assert not set(box.value) & CONTROL, box.value
            assert box.value == shown[step]
        # Enter on the escaped name opens the real file, also when the user paused after
        # Tab: by then the dialog has asked the host about the text Tab put in the box.
        box.value = f"gpu1:{folder}/a"
        await wait_for(lambda: dialog.suggested_for == box.value, what="suggestions")
        await pilot.press("tab")
        await wait_for(lambda: dialog.suggested_for == box.value,
                       what="the suggestions for the escaped name")
        assert prompts(dialog) == [f"gpu1:{folder}/a<U+001B>]0;pwned<U+0007>.log"]
        await pilot.press("enter")
        await wait_for(lambda: isinstance(app.screen, LogsScreen), what="the logs screen")
        screen = app.screen
        assert isinstance(screen, LogsScreen)
        assert screen.shown[0] == f"gpu1:{folder}/{HOSTILE[0]}"
        view = screen.view
        await wait_for(lambda: len(view.rows) == 1, what="the hostile file's line")


async def test_a_hostile_folder_name_completes_and_opens_its_real_path(
        make_sshd: Callable[..., SshServer], tmp_path: Path) -> None:
    server = make_sshd()
    server.write_known_hosts(server.base / "known_hosts")
    folder = tmp_path / f"run{OSC_TITLE}"
    folder.mkdir()
    (folder / "train.log").write_text("inside\n")
    config = config_for(host_for(server), tmp=tmp_path)
    app = build_app(config)
    async with app.run_test(size=(140, 40)) as pilot:
        await wait_for(lambda: app.services.fleet.supervisors["gpu1"].connection is not None,
                       what="the connection")
        await pilot.press("2", "o")
        await wait_for(lambda: isinstance(app.screen, OpenLogScreen), what="the dialog")
        dialog = app.screen
        assert isinstance(dialog, OpenLogScreen)
        box = dialog.query_one("#spec", Input)
        shown = f"gpu1:{tmp_path}/run<U+001B>]0;pwned<U+0007>/"
        box.value = f"gpu1:{tmp_path}/ru"
        await wait_for(lambda: prompts(dialog) == [shown], what="the folder")
        await pilot.press("tab")
        assert box.value == shown
        # Inside the escaped folder the host is asked about the real one.
        await pilot.press("t")
        # The folder's own list already shows train.log: wait for the list made for
        # what is typed now (Tab never applies a list made for older text).
        await wait_for(lambda: dialog.suggested_for == box.value
                       and prompts(dialog) == [f"{shown}train.log"], what="its file")
        await pilot.press("tab")
        await wait_for(lambda: dialog.suggested_for == box.value, what="the file's suggestion")
        await pilot.press("enter")
        await wait_for(lambda: isinstance(app.screen, LogsScreen), what="the logs screen")
        screen = app.screen
        assert isinstance(screen, LogsScreen)
        assert screen.shown[0] == f"gpu1:{folder}/train.log"
        view = screen.view
        await wait_for(lambda: len(view.rows) == 1, what="the file's line")


async def test_tab_never_applies_suggestions_for_older_text(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text("alpha\n")
    app = build_app(config_with_logs(tmp_path, log))
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("2", "o")
        await wait_for(lambda: isinstance(app.screen, OpenLogScreen), what="the dialog")
        dialog = app.screen
        assert isinstance(dialog, OpenLogScreen)
        await wait_for(lambda: prompts(dialog) == ["local:"], what="the host suggestions")
        # Typed and Tab pressed before the suggestions for it arrived (a laggy link).
        await pilot.press(*f"local:{tmp_path}/a", "tab")
        box = dialog.query_one("#spec", Input)
        assert box.value == f"local:{tmp_path}/a"
        await wait_for(lambda: prompts(dialog) == [f"local:{log}"], what="fresh suggestions")
        await pilot.press("tab")
        assert box.value == f"local:{log}"


async def test_completion_that_cannot_ask_the_host_says_why(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_text("alpha\n")
    config = config_with_logs(tmp_path, log)
    config.hosts = [host_for(_ClosedPort(), "gone")]  # nothing listens there
    app = build_app(config)
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("2", "o")
        await wait_for(lambda: isinstance(app.screen, OpenLogScreen), what="the dialog")
        dialog = app.screen
        assert isinstance(dialog, OpenLogScreen)
        await pilot.press(*"gone:/var/")
        await wait_for(lambda: "completion unavailable" in hint(dialog), what="the reason")
        assert "gone is not connected" in hint(dialog)


class _ClosedPort:
    """Where a host would be: port 9 on loopback (discard; nothing listens)."""

    port = 9
    user = "nobody"
    client_key = Path("/nonexistent/key")
    base = Path("/nonexistent")


async def test_demo_hosts_complete_paths_over_sftp(tmp_path: Path) -> None:
    async with DemoFleet(hosts=1, gpus=2, seed=3, base_dir=tmp_path / "demo") as demo:
        assert demo.dir is not None
        host = demo.hosts[0].name
        config = demo.config(tmp_path / "data", interval=0.5)
        app = build_app(config)
        async with app.run_test(size=(140, 40)) as pilot:
            await wait_for(lambda: app.services.fleet.supervisors[host].connection is not None,
                           what="the demo connection")
            await pilot.press("2", "o")
            await wait_for(lambda: isinstance(app.screen, OpenLogScreen), what="the dialog")
            dialog = app.screen
            assert isinstance(dialog, OpenLogScreen)
            await pilot.press(*f"{host}:~/")
            await wait_for(lambda: f"{host}:~/train.log" in prompts(dialog),
                           what="the demo host's train.log", timeout=30)
            # Outside the demo's directory nothing exists for the client.
            box = dialog.query_one("#spec", Input)
            box.value = f"{host}:/etc/"
            await wait_for(lambda: "no matching" in hint(dialog), what="nothing outside")
            assert prompts(dialog) == []
            box.value = f"{host}:~/tr"
            await wait_for(lambda: prompts(dialog) == [f"{host}:~/train.log"],
                           what="train.log again")
            await pilot.press("tab", "enter")
            await wait_for(lambda: isinstance(app.screen, LogsScreen), what="the logs screen")
            screen = app.screen
            assert isinstance(screen, LogsScreen)
            name = screen.shown[0]
            assert name is not None
            view = screen.view
            await wait_for(lambda: len(view.rows) > 0, what="the demo log's lines", timeout=30)
            # Closing it in a split leaves one full-width pane, not an empty one.
            await pilot.press("v")
            await pilot.pause()
            assert screen.panel(1).display
            screen.panel(0).view.focus()
            await pilot.pause()
            await pilot.press("x")
            await pilot.pause()
            assert not screen.panel(1).display
            assert screen.shown[0] is not None and screen.shown[0] != name
            assert "configure [[logs]]" not in str(screen.panel(0).border_title)
