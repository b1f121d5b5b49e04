"""The CLI's conventions (issue 10): shell completion made from the parser, ``--json``
on every listing, ``nomadlab alerts``, ``--log FILE``, the licence and the version.

In-process through ``nomadlab.cli.main`` where a subprocess adds nothing; real SQLite
files, a real sshd for ``hosts check``, real bash for the completion script.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
from datetime import datetime
from pathlib import Path

import focus_seed
import pytest
from sshd import SshServer

from nomadlab import __version__
from nomadlab.cli import build_parser, main
from nomadlab.core.alert_store import AlertLog
from nomadlab.core.alerts import Alert
from nomadlab.core.config import load_config
from nomadlab.core.store import Store

ROOT = Path(__file__).resolve().parent.parent


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def write_config(home: Path, body: str = "") -> Path:
    path = home / ".config" / "nomadlab" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'show_local = false\ndata_dir = "{home / "data"}"\n\n'
                    "[ssh]\nconnect_timeout = 3\nlogin_timeout = 5\n\n" + body)
    return path


# --------------------------------------------------------------------------- completion


def top_commands() -> list[str]:
    import argparse

    parser = build_parser()
    [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return list(sub.choices)


def test_completion_scripts_parse_and_name_every_command(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    names = top_commands()
    assert {"hosts", "status", "alerts", "completion", "today", "board"} <= set(names)
    scripts = {}
    for shell in ("bash", "zsh", "fish"):
        code, out, err = run(capsys, "completion", shell)
        assert code == 0 and err == ""
        scripts[shell] = out
        for name in names:
            assert re.search(rf"\b{re.escape(name)}\b", out), (shell, name)
    assert "--json" in scripts["bash"] and "--log" in scripts["bash"]
    # --log FILE and --config PATH complete file names
    assert "_shtab_nomadlab___log_COMPGEN=_shtab_compgen_files" in scripts["bash"]
    assert "_shtab_nomadlab_alerts___config_COMPGEN=_shtab_compgen_files" in scripts["bash"]
    assert scripts["zsh"].startswith("#compdef nomadlab")
    fish = scripts["fish"].splitlines()
    assert "complete -c nomadlab -n '__fish_seen_subcommand_from hosts && not " \
           "__fish_seen_subcommand_from list add remove check trust' -a check " \
           "-d 'diagnose hosts step by step (text or --json)'" in fish
    assert any(line.startswith("complete -c nomadlab -n '__fish_seen_subcommand_from "
                               "completion'") and "'bash zsh fish'" in line for line in fish)
    # bash: the script parses, and completing `nomadlab ho` offers `hosts`.
    path = tmp_path / "nomadlab.bash"
    path.write_text(scripts["bash"])
    probe = textwrap.dedent(f"""\
        source {path}
        COMP_WORDS=(nomadlab ho); COMP_CWORD=1; COMP_LINE="nomadlab ho"; COMP_POINT=11
        _shtab_nomadlab
        printf '%s\\n' "${{COMPREPLY[@]}}"
        COMP_WORDS=(nomadlab hosts ''); COMP_CWORD=2; COMP_LINE="nomadlab hosts "
        COMP_POINT=15
        _shtab_nomadlab
        printf '%s\\n' "${{COMPREPLY[@]}}"
        """)
    done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, timeout=30,
                          check=False)
    assert done.returncode == 0, done.stderr
    offered = done.stdout.split()
    assert "hosts" in offered
    assert {"list", "add", "remove", "check", "trust"} <= set(offered)
    for shell in ("zsh", "fish"):  # where the shell is installed, its own parser agrees
        binary = shutil.which(shell)
        if binary is not None:
            script = tmp_path / f"nomadlab.{shell}"
            script.write_text(scripts[shell])
            checked = subprocess.run([binary, "-n", str(script)], capture_output=True,
                                     text=True, timeout=30, check=False)
            assert checked.returncode == 0, checked.stderr


def test_completion_bad_shell_is_one_line_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["completion", "powershell"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'powershell'" in err and "Traceback" not in err


def test_other_commands_do_not_import_shtab() -> None:
    """The completion library is loaded by `nomadlab completion` only."""
    probe = ("import sys\nsys.argv = ['nomadlab', 'alerts', '--json']\n"
             "from nomadlab.cli import main\nmain(sys.argv[1:])\n"
             "print('shtab' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, check=False, env=dict(os.environ))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "False"


# --------------------------------------------------------------------------- alerts


def seed_alerts(home: Path) -> Path:
    write_config(home)
    config = load_config(None)
    store = Store(config.database)
    log = AlertLog(store)
    base = datetime(2026, 11, 18, 9, 0, 0).timestamp()
    log.insert(Alert(time=base, rule="run failed", severity="error",
                     title="run failed: train-a", message="Traceback in train.log",
                     host="gpu1", log="train-a"))
    log.insert(Alert(time=base + 60, rule="gpus idle", severity="warning",
                     title="idle: gpu2 \x1b[31mred\u202e", message="8 GPUs idle",
                     host="gpu2"))
    third = log.insert(Alert(time=base + 120, rule="run finished", severity="info",
                             title="run finished: train-b", message="done", host="gpu1",
                             log="train-b"))
    log.acknowledge(third)
    store.close()
    return config.database


def test_alerts_lists_the_history_from_the_store(capsys: pytest.CaptureFixture[str],
                                                 isolated_home: Path) -> None:
    database = seed_alerts(isolated_home)
    assert database.exists()
    code, out, _ = run(capsys, "alerts", "--json")
    assert code == 0
    data = json.loads(out)
    assert [a["title"] for a in data] == ["run finished: train-b", "idle: gpu2 \x1b[31mred\u202e",
                                          "run failed: train-a"]
    for entry in data:
        assert set(entry) == {"id", "time", "rule", "severity", "host", "log", "title",
                              "message", "acknowledged"}
        assert datetime.fromisoformat(entry["time"]).tzinfo is not None
    assert data[0]["acknowledged"] is not None and data[1]["acknowledged"] is None
    assert data[2] | {"id": 0, "time": ""} == {
        "id": 0, "time": "", "rule": "run failed", "severity": "error", "host": "gpu1",
        "log": "train-a", "title": "run failed: train-a", "message": "Traceback in train.log",
        "acknowledged": None}
    assert datetime.fromisoformat(data[2]["time"]).timestamp() == \
        datetime(2026, 11, 18, 9, 0, 0).timestamp()
    # printed safely: the escape and the bidi override are escaped, not sent raw
    assert "\x1b" not in out and "\u202e" not in out
    assert "\\u001b" in out and "\\u202e" in out

    code, out, _ = run(capsys, "alerts", "--json", "--limit", "1")
    assert [a["rule"] for a in json.loads(out)] == ["run finished"]
    code, out, _ = run(capsys, "alerts", "--json", "--unacknowledged")
    assert [a["rule"] for a in json.loads(out)] == ["gpus idle", "run failed"]
    code, out, _ = run(capsys, "alerts", "--all")
    lines = out.splitlines()
    assert lines[0].split() == ["TIME", "RULE", "SEVERITY", "HOST", "LOG", "TITLE", "ACK"]
    assert len(lines) == 4
    assert lines[3].split()[:2] == ["2026-11-18", "09:00:00"]
    assert "run failed: train-a" in lines[3] and lines[3].rstrip().endswith("no")
    assert lines[1].rstrip().endswith("yes")
    assert "\x1b" not in out and "\u202e" not in out


def test_alerts_on_an_empty_store_and_bad_limits(capsys: pytest.CaptureFixture[str],
                                                 isolated_home: Path) -> None:
    write_config(isolated_home)
    assert run(capsys, "alerts") == (0, "No alerts.\n", "")
    code, out, _ = run(capsys, "alerts", "--json")
    assert (code, json.loads(out)) == (0, [])
    for bad in (["--limit", "0"], ["--limit", "x"], ["--all", "--limit", "3"]):
        with pytest.raises(SystemExit) as exit_:
            main(["alerts", *bad])
        assert exit_.value.code == 2
        err = capsys.readouterr().err
        assert err.strip().splitlines()[-1].startswith("nomadlab alerts: error:")


# --------------------------------------------------------------------------- --json listings


def test_hosts_list_json(capsys: pytest.CaptureFixture[str], isolated_home: Path) -> None:
    write_config(isolated_home)
    code, out, _ = run(capsys, "hosts", "list", "--json")
    assert (code, json.loads(out)) == (0, [])
    write_config(isolated_home, textwrap.dedent("""\
        [[hosts]]
        name = "gpu-a"
        hostname = "10.0.0.7"
        user = "ubuntu"
        port = 2222
        hourly_cost = 2.49
        tags = ["h100", "lab"]

        [[hosts]]
        name = "gpu-b"
        hostname = "10.0.0.8"
        """))
    code, out, _ = run(capsys, "hosts", "list", "--json")
    assert code == 0
    data = json.loads(out)
    assert [h["name"] for h in data] == ["gpu-a", "gpu-b"]
    for host in data:
        assert set(host) == {"name", "hostname", "address", "user", "port", "jump",
                             "hourly_cost", "tags", "problem"}
    assert data[0] | {"address": None} == {
        "name": "gpu-a", "hostname": "10.0.0.7", "address": None, "user": "ubuntu",
        "port": 2222, "jump": None, "hourly_cost": 2.49, "tags": ["h100", "lab"],
        "problem": None}
    assert data[1]["port"] == 22 and data[1]["hourly_cost"] is None


@pytest.mark.sshd
def test_hosts_check_json(capsys: pytest.CaptureFixture[str], isolated_home: Path,
                          gpu_server: SshServer) -> None:
    gpu_server.write_known_hosts(gpu_server.base / "known_hosts")
    write_config(isolated_home, textwrap.dedent(f"""\
        [[hosts]]
        name = "gpu1"
        hostname = "127.0.0.1"
        port = {gpu_server.port}
        user = "{gpu_server.user}"
        identity_file = "{gpu_server.client_key}"
        known_hosts = "{gpu_server.base / 'known_hosts'}"
        """))
    code, out, _ = run(capsys, "hosts", "check", "--json")
    assert code == 0, out
    [host] = json.loads(out)
    assert set(host) == {"host", "ok", "steps"}
    assert host["host"] == "gpu1" and host["ok"] is True
    steps = {s["name"]: s for s in host["steps"]}
    for step in host["steps"]:
        assert set(step) == {"name", "ok", "detail"}
    assert steps["auth"] == {"name": "auth", "ok": True,
                             "detail": f"logged in as {gpu_server.user}"}
    assert steps["gpus"]["detail"] == "8"


def test_hosts_check_json_of_a_closed_port_exits_1(capsys: pytest.CaptureFixture[str],
                                                   isolated_home: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    write_config(isolated_home, f'[[hosts]]\nname = "gone"\nhostname = "127.0.0.1"\n'
                                f"port = {port}\n")
    code, out, _ = run(capsys, "hosts", "check", "--json")
    assert code == 1
    [host] = json.loads(out)
    assert host["host"] == "gone" and host["ok"] is False
    assert host["steps"][0]["name"] == "tcp" and host["steps"][0]["ok"] is False


def test_today_json(capsys: pytest.CaptureFixture[str], isolated_home: Path,
                    monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(isolated_home)
    config = load_config(None)
    focus_seed.seed(config, Store(config.database))
    monkeypatch.setenv("NOMADLAB_NOW", repr(focus_seed.NOW))
    code, text, _ = run(capsys, "today")
    code, out, _ = run(capsys, "today", "--json")
    assert code == 0
    data = json.loads(out)
    assert set(data) == {"day", "day_starts", "blocks", "focus_seconds", "plan_seconds",
                         "session", "note", "last_week_change", "yesterday"}
    assert data["day"] == "2026-11-18" and data["day_starts"] == "04:00"
    assert [(b["span"], b["kind"], b["state"]) for b in data["blocks"]] == [
        ("07:00-11:00", "deep", "done"), ("11:00-12:30", "sprint", "running"),
        ("19:00-20:00", "light", "planned")]
    assert data["blocks"][0]["purpose"] == "#42 Tune the LR schedule"
    assert data["plan_seconds"] == 6.5 * 3600
    assert data["note"] == "ship the eval section before the 14:00 sync"
    assert data["last_week_change"] == "no meetings before 11"
    assert data["session"]["preset"] == "sprint"
    assert data["yesterday"]["day"] == "2026-11-17"
    assert data["yesterday"]["runs_finished"] == 2 and data["yesterday"]["runs_failed"] == 1
    # the same facts as the text
    assert "focus so far: 4h06m of 6h30m planned" in text
    assert data["focus_seconds"] // 60 == 4 * 60 + 6


# --------------------------------------------------------------------------- --log


def test_log_writes_a_debug_log_without_secrets(capsys: pytest.CaptureFixture[str],
                                                isolated_home: Path, tmp_path: Path) -> None:
    import logging
    import warnings

    write_config(isolated_home)
    log = tmp_path / "debug.log"
    handlers = list(logging.getLogger().handlers)
    code, _, _ = run(capsys, "--log", str(log), "alerts")
    assert code == 0
    text = log.read_text()
    assert "DEBUG nomadlab.cli.logfile: nomadlab started" in text
    assert (log.stat().st_mode & 0o777) == 0o600
    assert logging.getLogger().handlers == handlers  # removed again after the command

    # While logging: warnings go to the file, secrets do not.
    from nomadlab.cli.logfile import logging_to

    with logging_to(str(log)) as problem:
        assert problem is None
        logging.getLogger("nomadlab.notify").debug(
            "POST https://hooks.example/x password=hunter2 token: abc123 "
            "Authorization: Bearer sk-live-42")
        try:
            raise RuntimeError("https://api.telegram.org/bot123456:AAsecretAA/sendMessage")
        except RuntimeError:
            logging.getLogger("nomadlab.notify").exception("delivery failed")
        warnings.warn("a warning the TUI would have hidden", UserWarning, stacklevel=1)
    text = log.read_text()
    assert "a warning the TUI would have hidden" in text
    for secret in ("hunter2", "abc123", "sk-live-42", "AAsecretAA"):
        assert secret not in text
    assert "password=<redacted>" in text and "token: <redacted>" in text
    assert "Traceback" in text and "api.telegram.org/bot<redacted>/sendMessage" in text
    assert logging.getLogger().handlers == handlers


def test_log_to_an_unwritable_place_is_one_line_exit_2(capsys: pytest.CaptureFixture[str],
                                                       tmp_path: Path) -> None:
    for target in (tmp_path / "no-such-dir" / "x.log", tmp_path):
        code, out, err = run(capsys, "--log", str(target), "alerts")
        assert code == 2 and out == ""
        assert err.count("\n") == 1 and err.startswith(f"nomadlab: --log {target}: cannot write")


# --------------------------------------------------------------------------- packaging


def test_version_in_one_place_and_an_spdx_licence() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"]
    assert project["project"]["dynamic"] == ["version"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {
        "attr": "nomadlab.__version__"}
    assert project["project"]["license"] == "MIT"
    assert project["project"]["license-files"] == ["LICENSE"]
    licence = (ROOT / "LICENSE").read_text()
    assert licence.startswith("MIT License") and "nomadlab authors" in licence
    from importlib.metadata import version

    assert version("nomadlab") == __version__
    done = subprocess.run([sys.executable, "-m", "nomadlab", "--version"], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.stdout == f"nomadlab {__version__}\n"


def test_textual_range_for_users_and_exact_for_ci() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    textual = [d for d in project["project"]["dependencies"] if d.startswith("textual")]
    assert textual == ["textual>=8.2.8,<9"]
    pins = [line for line in (ROOT / "constraints.txt").read_text().splitlines()
            if line and not line.startswith("#")]
    assert pins == ["textual==8.2.8"]
    import textual as installed

    assert installed.__version__ == "8.2.8"  # this suite runs the constrained release
    readme = (ROOT / "README.md").read_text()
    [command] = [line for line in readme.splitlines()
                 if "pytest" in line and line.startswith("python3 -m venv")]
    assert "-c constraints.txt" in command
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert command in ci  # CI runs the README's test command, as written
