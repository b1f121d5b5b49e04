"""The TUI as a user starts it: the installed ``nomadlab`` script on a real terminal
(a pseudo-terminal read through a VT100 emulator), on a machine kept busy."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from ptyterm import CpuHog, PtyTerm, nomadlab_argv


def user_config(home: Path) -> Path:
    path = home / ".config" / "nomadlab" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('show_local = false\n[notify]\nbell = false\ndesktop = false\n'
                    'notify_send = false\n[tail]\npoll = 0.1\n')
    return path


def test_tail_host_path_opens_the_log_and_quits_cleanly(isolated_home: Path,
                                                        tmp_path: Path) -> None:
    user_config(isolated_home)
    log = tmp_path / "train.log"
    # The last line is wider than the view: a horizontal scrollbar appears, and the
    # last line must stay above it.
    log.write_text("".join(f"step {i} loss=0.{i:03d}\n" for i in range(1, 40))
                   + "step 40 loss=0.040 " + "x" * 300 + "\n")
    with CpuHog(), PtyTerm(nomadlab_argv("tail", f"local:{log}"), env=dict(os.environ),
                           cols=120, rows=32) as term:
        screen = term.wait_for("step 40 loss=0.040", what="the log's last line")
        assert "following" in screen
        with log.open("a") as f:
            f.write("step 41 loss=0.041\n")
        term.wait_for("step 41 loss=0.041", what="a line written after start")
        term.press("q")
        status = term.wait_exit()
    assert status == 0
    assert "Traceback" not in term.output() and "NoMatches" not in term.output()


def test_tail_of_a_missing_file_waits_for_it(isolated_home: Path, tmp_path: Path) -> None:
    user_config(isolated_home)
    log = tmp_path / "later.log"
    with CpuHog(), PtyTerm(nomadlab_argv("tail", f"local:{log}"), env=dict(os.environ),
                           cols=120, rows=32) as term:
        term.wait_for("following", what="the log view")
        log.write_text("first line\n")
        term.wait_for("first line")
        term.press("q")
        assert term.wait_exit() == 0
    assert "Traceback" not in term.output()


def test_without_a_terminal_the_tui_refuses_at_once(isolated_home: Path) -> None:
    user_config(isolated_home)
    for stdin, stdout in ((subprocess.DEVNULL, subprocess.PIPE),
                          (subprocess.PIPE, subprocess.PIPE)):
        done = subprocess.run(nomadlab_argv(), check=False, stdin=stdin, stdout=stdout,
                              stderr=subprocess.PIPE, text=True, timeout=60)
        assert done.returncode == 2
        assert "needs a terminal" in done.stderr
        assert "Traceback" not in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    done = subprocess.run(nomadlab_argv("tail", "local:/tmp/x.log"), check=False,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "needs a terminal" in done.stderr


def test_keys_in_one_burst_stay_in_order_in_an_input(isolated_home: Path,
                                                     tmp_path: Path) -> None:
    """A laggy SSH link delivers keys coalesced: Home, A, End, Q in one read must edit
    the search box as typed one by one would (Textual 8.2.8 ran Home/End late)."""
    user_config(isolated_home)
    log = tmp_path / "run.log"
    log.write_text("step 1\nstep 2\n")
    with CpuHog(), PtyTerm(nomadlab_argv("tail", f"local:{log}"), env=dict(os.environ),
                           cols=120, rows=30) as term:
        term.wait_for("step 2", what="the log")
        term.press("/")
        term.wait_for("search (regex", what="the search box")
        term.send("(FA3)Z")
        term.wait_for("(FA3)Z", what="the typed text")
        term.send(b"\x1b[H" + b"A" + b"\x1b[F" + b"Q")  # one write: one read in the app
        term.wait_for(lambda s: "A(FA3)ZQ" in s or "(FA3)ZAQ" in s or "QA(FA3)Z" in s,
                      what="the edited text")
        assert "A(FA3)ZQ" in term.text()
        # Arrows too: clear, "ab", left, left, "X", right, right, "Y" in one write.
        term.send(b"\x15ab\x1b[D\x1b[DX\x1b[C\x1b[CY")
        term.wait_for(lambda s: "Y" in s.split("Search")[0] or "XabY" in s,
                      what="the second edit")
        assert "XabY" in term.text()
        term.press("escape")
        term.wait_for("Bottom/follow", what="the log view focused again")
        term.press("q")
        assert term.wait_exit() == 0


def test_a_crashed_tui_exits_non_zero(capsys) -> None:  # type: ignore[no-untyped-def]
    """The exit status `nomadlab` and `nomadlab tail` return after the app ended on an
    unhandled error (before: 0, so scripts and supervisors never knew)."""
    from textual.app import App

    from nomadlab.cli.tui import exit_status

    class Crashing(App[None]):
        def on_mount(self) -> None:
            raise RuntimeError("boom")

    app = Crashing()
    app.run(headless=True)
    assert exit_status(app) == 1  # type: ignore[arg-type]
    assert "internal error" in capsys.readouterr().err

    class Quitting(App[None]):
        def on_mount(self) -> None:
            self.exit()

    app2 = Quitting()
    app2.run(headless=True)
    assert exit_status(app2) == 0  # type: ignore[arg-type]
