"""``nomadlab focus``, ``nomadlab today`` and ``nomadlab report`` through ``main`` in this
process (tests/clirun.py), and as real subprocesses where processes race.

The isolated home of conftest holds the database; NOMADLAB_NOW fixes the CLI's "now"
(epoch seconds), so no test waits for a timer. TZ is UTC (conftest).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import focus_seed
from clirun import run_main
from focus_seed import H, M

from nomadlab.core.clock import ManualClock
from nomadlab.core.config import load_config
from nomadlab.core.focus import FocusService
from nomadlab.core.store import Store

NOW = focus_seed.NOW  # Wednesday 2026-11-18 11:06:40 UTC
TIMEOUT = 60


def run(*args: str, now: float = NOW, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    """``nomadlab ...`` through ``main`` in this process (tests/clirun.py)."""
    return run_main(*args, env={"NOMADLAB_NOW": repr(now), **(env or {})})


def clean(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert "Traceback" not in result.stdout, result.stdout


def test_start_status_pause_resume_stop_and_exit_codes() -> None:
    idle = run("focus", "status", "--json")
    assert idle.returncode == 0, idle.stderr
    data = json.loads(idle.stdout)
    assert data["state"] == "idle" and data["session"] is None
    assert data["today"] == {"day": "2026-11-18", "focus_seconds": 0.0, "plan_seconds": 4 * H}
    assert run("focus", "status", "--short").stdout == ""
    assert run("focus", "status").stdout == "no focus session\ntoday: 0m of 4h00m planned\n"

    started = run("focus", "start", "deep", "--for", "write the intro")
    assert started.returncode == 0, started.stderr
    assert started.stdout == "Started deep: 4:00:00 for write the intro, ends 15:06.\n"

    again = run("focus", "start", "sprint", now=NOW + 60)
    assert again.returncode == 1
    assert again.stderr == ("nomadlab: a focus session is already open: #1 deep (running, "
                            "3:59:00 left, for write the intro)\n")
    assert again.stdout == ""

    status = run("focus", "status", "--json", now=NOW + H)
    data = json.loads(status.stdout)
    assert data["state"] == "running"
    assert set(data) == {"state", "now", "session", "today"}
    session = data["session"]
    assert set(session) == {"id", "preset", "kind", "state", "purpose", "for", "started", "ends",
                            "ended", "planned_seconds", "extended_seconds", "focus_seconds",
                            "paused_seconds", "remaining_seconds", "remaining", "interruptions",
                            "block"}
    assert (session["id"], session["preset"], session["kind"], session["purpose"]) == (
        1, "deep", "deep", "write the intro")
    assert session["for"] == {"kind": "text", "ref": None}
    assert (session["started"], session["ends"], session["remaining"]) == (
        NOW, NOW + 4 * H, "3:00:00")
    assert (session["focus_seconds"], session["remaining_seconds"]) == (H, 3 * H)
    assert run("focus", "status", "--short", now=NOW + H).stdout == "deep 3:00:00\n"

    paused = run("focus", "pause", now=NOW + H)
    assert (paused.returncode, paused.stdout) == (0, "Paused deep with 3:00:00 left.\n")
    twice = run("focus", "pause", now=NOW + H + 60)
    assert (twice.returncode, twice.stderr) == (2, "nomadlab: the session is paused already\n")
    clean(twice)
    assert run("focus", "status", "--short", now=NOW + 2 * H).stdout == "deep 3:00:00 paused\n"
    resumed = run("focus", "resume", now=NOW + 2 * H)
    assert resumed.stdout == "Resumed deep: 3:00:00 left, ends 16:06.\n"
    interrupted = run("focus", "interrupt", "the", "door", now=NOW + 2 * H + 60)
    assert interrupted.stdout == "Interruption 1 logged; the timer goes on.\n"
    extended = run("focus", "extend", "30", now=NOW + 2 * H + 60)
    assert extended.stdout == "Extended deep by 30m: 3:29:00 left.\n"
    line = run("focus", "status", now=NOW + 2 * H + 60).stdout.splitlines()
    assert line == ["deep 3:29:00 · write the intro · 1 interruption",
                    "today: 1h01m of 4h00m planned"]
    stopped = run("focus", "stop", now=NOW + 3 * H)
    assert stopped.stdout == "Finished deep: 2h00m of focus.\n"
    nothing = run("focus", "stop", now=NOW + 3 * H + 60)
    assert nothing.returncode == 2
    assert nothing.stderr == ("nomadlab: no focus session is running (the last one, deep, "
                              "finished at 14:06)\n")
    clean(nothing)


def test_user_errors_exit_2_without_a_traceback() -> None:
    for args, message in (
        (("focus", "start", "marathon"), "nomadlab: unknown preset 'marathon' (presets: "
                                         "sprint, deep, pomodoro; or minutes, e.g. 50)\n"),
        (("focus", "start", "0"), "nomadlab: a session lasts from 1 minute to 24 hours\n"),
        (("focus", "resume"), "nomadlab: no focus session is running\n"),
        (("report", "week", "--week", "2026-W60"), "nomadlab: 2026 has no week 60\n"),
        (("today", "add", "lunch"), "nomadlab: expected a time span like 07:00-11:00 or "
                                    "19:00 60m, got 'lunch'\n"),
        (("report", "retro"), "nomadlab: say at least one of --worked, --didnt, --change\n"),
    ):
        result = run(*args)
        assert result.returncode == 2, args
        assert result.stderr.endswith(message), (args, result.stderr)
        clean(result)
    bad_now = run("focus", "status", env={"NOMADLAB_NOW": "tomorrow"})
    assert bad_now.returncode == 2
    assert bad_now.stderr == "nomadlab: NOMADLAB_NOW must be epoch seconds, got 'tomorrow'\n"


def test_the_cli_and_an_open_tui_share_one_timer() -> None:
    config = load_config(None)
    tui = FocusService(config, Store(config.database), ManualClock(NOW))
    tui.start_session("pomodoro", "inbox zero")
    refused = run("focus", "start")
    assert refused.returncode == 1
    assert "#1 pomodoro (running, 25:00 left, for inbox zero)" in refused.stderr
    assert run("focus", "stop", now=NOW + 10 * M).returncode == 0
    assert tui.current() is None
    done = tui.session(1)
    assert done is not None and done.state == "finished" and done.ended == NOW + 10 * M
    assert tui.start_session("sprint").id == 2  # the TUI may start the next one


def test_two_processes_starting_at_once_leave_one_timer() -> None:
    env = dict(os.environ)
    env["NOMADLAB_NOW"] = repr(NOW)
    run("focus", "status")  # create the database first: the race is about the timer
    procs = [subprocess.Popen([sys.executable, "-m", "nomadlab", "focus", "start", "sprint"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=env) for _ in range(4)]
    codes = []
    for proc in procs:
        _out, err = proc.communicate(timeout=TIMEOUT)
        assert "Traceback" not in err, err
        codes.append(proc.returncode)
    assert sorted(codes) == [0, 1, 1, 1]
    config = load_config(None)
    rows = Store(config.database).query("SELECT COUNT(*) AS n FROM focus_sessions")
    assert rows[0]["n"] == 1


def test_today_and_the_week_report_on_a_seeded_store() -> None:
    config = load_config(None)
    focus_seed.seed(config, Store(config.database))
    today = run("today")
    assert today.returncode == 0, today.stderr
    lines = today.stdout.splitlines()
    assert lines[:5] == [
        "Today, Wednesday 18 November 2026 (the day starts at 04:00)",
        "  07:00-11:00  deep      #42 Tune the LR schedule  (done: 4h00m)",
        "  11:00-12:30  sprint    write the eval section  (running)",
        "  19:00-20:00  light     check runs",
        "  focus so far: 4h06m of 6h30m planned",
    ]
    assert "  now: sprint 1:23:20 · write the eval section · 1 interruption" in lines
    assert "  note: ship the eval section before the 14:00 sync" in lines
    assert "  last week you meant to change: no meetings before 11" in lines
    assert ("Yesterday, Tue 17 Nov: 4h45m focus of 4h00m planned, 2 sessions, 1 interruption"
            in lines)
    assert "runs: 2 finished, 1 failed" in today.stdout

    report = run("report", "week", "--markdown")
    assert report.returncode == 0, report.stderr
    md = report.stdout.splitlines()
    assert md[0] == "# Week 2026-W47 (16-22 Nov 2026)"
    assert "| **Total** | **13h51m** | **30h30m** | **6** | **4** |" in md
    assert "| lambda-h100 | 2.0 | 1.0 | 3.00 | 9.00 |" in md
    assert "- **Runs:** 2 finished, 2 failed" in md
    data = json.loads(run("report", "week", "--week", "2026-W47", "--json").stdout)
    assert data["focus_seconds"] == 13 * H + 51 * M + 40
    assert (data["sessions"], data["interruptions"], data["abandoned"]) == (6, 4, 1)
    assert data["longest_unbroken_seconds"] == 4 * H
    text = run("report", "week", "--week", "2026w46").stdout
    assert text.startswith("Week 2026-W46 (09-15 Nov 2026)\n")

    assert run("report", "retro", "--worked", "mornings", "--change", "mute Slack").stdout == \
        "Retro for 2026-W47 saved.\n"
    md = run("report", "week", "--markdown").stdout.splitlines()
    assert "- What worked? mornings" in md and "- What will you change? mute Slack" in md
    added = run("today", "add", "13:00-13:30", "light", "--for", "a walk")
    assert added.stdout == "Planned 13:00-13:30 light for a walk.\n", added.stderr
    assert run("today", "note", "one", "thing").stdout == "Note saved.\n"
    lines = run("today").stdout.splitlines()
    assert "  13:00-13:30  light     a walk" in lines and "  note: one thing" in lines
