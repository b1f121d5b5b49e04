"""The command line end to end, as a user runs it: ``python -m nomadlab ...``.

Runs are real subprocesses with the isolated home's environment, except help, usage
and config errors, which run ``main`` in-process (``nomadlab_in_process``); the hosts are
real OpenSSH servers on 127.0.0.1 with the stand-in NVML library behind them.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from clirun import run_main
from conftest import nvml_env
from sshd import SshServer, free_port, keygen
from standins.smi import fake_smi_env

from nomadlab import __version__
from nomadlab.cli import build_parser

CLI_TIMEOUT = 60  # seconds; a hung command fails the test instead of the run


def nomadlab(*args: str, input: str | None = None,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = dict(os.environ)  # the isolated home (conftest) is in os.environ
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "nomadlab", *args], input=input,
                          capture_output=True, text=True, env=full_env,
                          timeout=CLI_TIMEOUT, check=False)


def nomadlab_in_process(*args: str) -> subprocess.CompletedProcess[str]:
    """``main`` in this process (tests/clirun.py): everything but ``--version`` and the
    unknown command, which check the real entry point."""
    return run_main(*args)


def nomadlab_all(commands: list[tuple[str, ...]]
                 ) -> list[subprocess.CompletedProcess[str]]:
    """Several independent runs, one after another, in this process (starting one
    interpreter per command, dozens at once, timed out on a loaded machine)."""
    return [nomadlab_in_process(*args) for args in commands]


def default_config(home: Path) -> Path:
    return home / ".config" / "nomadlab" / "config.toml"


def no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert "Traceback" not in result.stdout, result.stdout


# --------------------------------------------------------------------------- basics


def test_version() -> None:
    result = nomadlab("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"nomadlab {__version__}"


def _commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()
              ) -> list[tuple[str, ...]]:
    """Every command and action of the parser: (), ('status',), ('hosts', 'add'), ..."""
    found = [prefix]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.extend(_commands(sub, (*prefix, name)))
    return found


COMMANDS = _commands(build_parser())


def test_every_command_is_listed() -> None:
    assert {("status",), ("hosts",), ("hosts", "list"), ("hosts", "add"),
            ("hosts", "remove"), ("hosts", "check"), ("hosts", "trust"),
            ("demo",)} <= set(COMMANDS)


def test_help_for_every_command() -> None:
    results = nomadlab_all([(*command, "--help") for command in COMMANDS])
    for command, result in zip(COMMANDS, results, strict=True):
        assert result.returncode == 0, (command, result.stderr)
        assert result.stdout.startswith("usage: nomadlab"), command
        assert " ".join(("nomadlab", *command)) in result.stdout.splitlines()[0]
        assert result.stderr == "", command


def test_unknown_command_is_a_usage_error() -> None:
    result = nomadlab("frobnicate")
    assert result.returncode == 2
    assert "invalid choice: 'frobnicate'" in result.stderr
    no_traceback(result)


# --------------------------------------------------------------------------- bad config


BROKEN = '[fleet]\ninterval = "2s"\nsort = name\n'


def test_malformed_config_is_one_clear_message(isolated_home: Path) -> None:
    path = default_config(isolated_home)
    path.parent.mkdir(parents=True)
    path.write_text(BROKEN)
    commands = [("status",), ("status", "--json"), ("hosts", "list"), ("hosts", "check"),
                ("hosts", "trust", "x", "--yes"), ("hosts", "add", "x", "h"),
                ("hosts", "remove", "x"), ()]  # () : the TUI refuses to start too
    for command, result in zip(commands, nomadlab_all(commands), strict=True):
        assert result.returncode == 2, command
        assert result.stderr == (f"nomadlab: {path}: line 3, column 8: TOML syntax: "
                                 "Invalid value\n"), command
        assert result.stdout == "", command
    assert path.read_text() == BROKEN  # nothing rewritten


def test_invalid_config_lists_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text('[[hosts]]\nname = "a"\nhostname = "h"\nprot = 22\n'
                    '[[hosts]]\nname = "b"\nhostname = "h"\nport = "22"\n')
    result = nomadlab_in_process("--config", str(path), "hosts", "list")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"nomadlab: {path}: 2 problems",
        "  line 4: hosts[0] (\"a\").prot: unknown key (did you mean 'port'?)",
        "  line 8: hosts[1] (\"b\").port: expected an integer, got the string '22'",
    ]
    no_traceback(result)


def test_config_option_and_environment(isolated_home: Path, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    default = default_config(isolated_home)
    default.parent.mkdir(parents=True)
    default.write_text('[[hosts]]\nname = "from-default"\nhostname = "h"\n')
    env_file = tmp_path / "env.toml"
    env_file.write_text('[[hosts]]\nname = "from-env"\nhostname = "h"\n')
    option = tmp_path / "option.toml"
    option.write_text('[[hosts]]\nname = "from-option"\nhostname = "h"\n')
    monkeypatch.setenv("NOMADLAB_CONFIG", str(env_file))
    assert "from-env" in nomadlab_in_process("hosts", "list").stdout
    # Before the command or after it, --config wins over the environment.
    for args in (("--config", str(option), "hosts", "list"),
                 ("hosts", "list", "--config", str(option))):
        assert "from-option" in nomadlab_in_process(*args).stdout, args
    monkeypatch.setenv("NOMADLAB_CONFIG", str(tmp_path / "nope.toml"))
    missing = nomadlab_in_process("hosts", "list")
    assert missing.returncode == 2
    assert missing.stderr == f"nomadlab: {tmp_path / 'nope.toml'}: no such file\n"


# --------------------------------------------------------------------------- hosts add/remove


USER_FILE = """\
# My lab. nomadlab must keep this comment.
show_local = false

[fleet]
interval = "2s"  # the office link is slow
"""


def test_hosts_add_list_remove(isolated_home: Path) -> None:
    path = default_config(isolated_home)
    path.parent.mkdir(parents=True)
    path.write_text(USER_FILE)

    added = nomadlab_in_process("hosts", "add", "gpu-a", "10.0.0.7", "--user", "ana",
                                "--port", "2222", "--hourly-cost", "2.5", "--tag", "h100",
                                "--tag", "lab")
    assert added.returncode == 0, added.stderr
    assert added.stdout == (f"Added gpu-a to {path}. Next: nomadlab hosts check gpu-a\n")
    assert path.read_text().startswith(USER_FILE)
    assert (path.parent / "config.toml.bak").read_text() == USER_FILE
    second = nomadlab_in_process("hosts", "add", "gpu-b", "b.example.org", "--jump", "gpu-a")
    assert second.returncode == 0, second.stderr

    listed = nomadlab_in_process("hosts", "list")
    assert listed.returncode == 0
    lines = listed.stdout.splitlines()
    assert lines[0].split() == ["NAME", "HOSTNAME", "USER", "PORT", "JUMP", "COST/H", "TAGS"]
    assert lines[1].split() == ["gpu-a", "10.0.0.7", "ana", "2222", "2.50", "h100,", "lab"]
    # USER and PORT as ssh would use them (no ~/.ssh/config here: the defaults)
    assert lines[2].split() == ["gpu-b", "b.example.org", getpass.getuser(), "22", "gpu-a"]

    removed = nomadlab_in_process("hosts", "remove", "gpu-a")
    assert removed.returncode == 0, removed.stderr
    assert removed.stdout == f"Removed gpu-a from {path} (previous version: {path}.bak)\n"
    text = path.read_text()
    assert text.startswith(USER_FILE) and "gpu-a" not in text.replace('jump = "gpu-a"', "")
    assert "gpu-a" in (path.parent / "config.toml.bak").read_text()
    listed = nomadlab_in_process("hosts", "list")
    assert [line.split()[0] for line in listed.stdout.splitlines()[1:]] == ["gpu-b"]
    # Atomic rewrites leave no temp files behind.
    assert sorted(p.name for p in path.parent.iterdir()) == ["config.toml", "config.toml.bak"]


def test_hosts_add_creates_the_config(isolated_home: Path) -> None:
    result = nomadlab_in_process("hosts", "add", "gpu-a", "10.0.0.7")
    assert result.returncode == 0, result.stderr
    path = default_config(isolated_home)
    assert path.read_text() == '[[hosts]]\nname = "gpu-a"\nhostname = "10.0.0.7"\n'
    assert path.stat().st_mode & 0o777 == 0o600


def test_hosts_add_refuses_duplicates_and_bad_values(isolated_home: Path) -> None:
    assert nomadlab_in_process("hosts", "add", "gpu-a", "10.0.0.7").returncode == 0
    path = default_config(isolated_home)
    before = path.read_text()
    cases = {
        ("gpu-a", "elsewhere"): f"nomadlab: {path}: a host named 'gpu-a' already exists\n",
        ("local", "h"): "nomadlab: 'local' is reserved for this machine; choose another name\n",
        ("gpu-b", "h", "--port", "70000"):
            f"nomadlab: {path}: host 'gpu-b': port: must be at most 65535, got 70000\n",
        ("gpu-b", "h", "--user", "ana\x1b]0;pwned\x07"):
            f"nomadlab: {path}: host 'gpu-b': user: must not contain control characters\n",
    }
    for args, message in cases.items():
        result = nomadlab_in_process("hosts", "add", *args)
        assert result.returncode == 2, args
        assert result.stderr == message
        no_traceback(result)
    assert path.read_text() == before


def test_hosts_remove_unknown(isolated_home: Path) -> None:
    missing = nomadlab_in_process("hosts", "remove", "gpu-a")
    assert missing.returncode == 2
    assert missing.stderr == f"nomadlab: {default_config(isolated_home)}: no such file\n"
    nomadlab_in_process("hosts", "add", "gpu-a", "10.0.0.7")
    result = nomadlab_in_process("hosts", "remove", "nope")
    assert result.returncode == 2
    assert result.stderr.endswith("no host named 'nope' (hosts: gpu-a)\n")


def test_a_config_path_that_cannot_be_used(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("")
    cases = {
        ("hosts", "add", "x", "h", "--config", str(tmp_path)):
            f"nomadlab: {tmp_path}: cannot read: Is a directory\n",
        ("hosts", "remove", "x", "--config", str(tmp_path)):
            f"nomadlab: {tmp_path}: cannot read: Is a directory\n",
        ("status", "--config", str(tmp_path)):
            f"nomadlab: {tmp_path}: cannot read: Is a directory\n",
        ("hosts", "list", "--config", str(a_file / "config.toml")):
            f"nomadlab: {a_file / 'config.toml'}: cannot read: Not a directory\n",
        # Missing, so a new file, in a directory nobody can create files in (not even root).
        ("hosts", "add", "x", "h", "--config", "/proc/nomadlab-test.toml"):
            "nomadlab: /proc/nomadlab-test.toml: cannot write: No such file or directory\n",
    }
    for args, message in cases.items():
        result = nomadlab_in_process(*args)
        assert (result.returncode, result.stderr) == (2, message), args


# --------------------------------------------------------------------------- unknown names


@pytest.mark.parametrize(("command", "known"), [
    (("status", "--host", "x"), "gpu-a, gpu-b, local"),
    (("hosts", "check", "x"), "gpu-a, gpu-b"),
    (("hosts", "trust", "x", "--yes"), "gpu-a, gpu-b"),
])
def test_unknown_host_names_list_the_hosts(isolated_home: Path, command: tuple[str, ...],
                                           known: str) -> None:
    path = default_config(isolated_home)
    path.parent.mkdir(parents=True)
    path.write_text('[[hosts]]\nname = "gpu-a"\nhostname = "10.0.0.7"\n'
                    '[[hosts]]\nname = "gpu-b"\nhostname = "10.0.0.8"\n')
    result = nomadlab_in_process(*command)
    assert result.returncode == 2
    assert result.stderr == f"nomadlab: unknown host 'x' (hosts: {known})\n"
    assert result.stdout == ""


def test_no_hosts_yet() -> None:
    for command in (("hosts", "list"), ("hosts", "check")):
        result = nomadlab_in_process(*command)
        assert result.returncode == 0
        assert result.stdout == "No hosts configured. Add one: nomadlab hosts add NAME HOSTNAME\n"


# --------------------------------------------------------------------------- real hosts


def host_block(server: SshServer, name: str, *, known_hosts: Path | None = None) -> str:
    return textwrap.dedent(f"""\
        [[hosts]]
        name = "{name}"
        hostname = "127.0.0.1"
        port = {server.port}
        user = "{server.user}"
        identity_file = "{server.client_key}"
        known_hosts = "{known_hosts or server.base / 'known_hosts'}"
        """)


def write_config(home: Path, *blocks: str) -> Path:
    path = default_config(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    head = textwrap.dedent(f"""\
        show_local = false
        data_dir = "{home / 'data'}"

        [ssh]
        connect_timeout = 3
        login_timeout = 5
        keepalive_interval = 1
        keepalive_count_max = 1

        [fleet]
        interval = "0.5s"
        """)
    path.write_text("\n".join([head, *blocks]))
    return path


def trusted(server: SshServer) -> SshServer:
    server.write_known_hosts(server.base / "known_hosts")
    return server


@pytest.fixture
def job() -> Iterator[subprocess.Popen[bytes]]:
    """A process the stand-in NVML puts on GPU 3: its user and command come from /proc."""
    proc = subprocess.Popen([sys.executable, "-c",
                             "import sys, time; print('up', flush=True); time.sleep(60)",
                             "--lr=3e-4"], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    assert proc.stdout.readline() == b"up\n"
    yield proc
    proc.kill()
    proc.wait()
    proc.stdout.close()


@pytest.fixture
def lab(make_sshd: Callable[..., SshServer], fake_nvml_dir: Path, nvml_conf: Path,
        job: subprocess.Popen[bytes]) -> SshServer:
    """8 stand-in H100s behind a trusted sshd. The captured processes get pids that
    cannot exist here (so their names come from NVML), plus ``job`` on GPU 3."""
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    text = nvml_conf.read_text()
    for offset, pid in enumerate((11345, 11327, 11328, 11346, 11347, 11348)):
        text = text.replace(f"pid={pid}\n", f"pid={pid_max + offset}\n")
    text += f"\n[proc]\ngpu=3\npid={job.pid}\nmem_mib=4096\n"
    nvml_conf.write_text(text)
    return trusted(make_sshd(nvml_env(fake_nvml_dir, nvml_conf)))


@pytest.mark.sshd
def test_status_json(lab: SshServer, isolated_home: Path,
                     job: subprocess.Popen[bytes]) -> None:
    write_config(isolated_home, host_block(lab, "gpu1"))
    result = nomadlab_in_process("status", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert list(data) == ["hosts", "sources"]
    assert data["sources"] == []
    [host] = data["hosts"]
    assert list(host) == ["name", "state", "error", "cpu_percent", "memory_used_mib",
                          "memory_total_mib", "load1", "gpus", "source"]
    assert host["source"] == "ssh"
    assert (host["name"], host["state"], host["error"]) == ("gpu1", "live", None)
    assert 0 <= host["cpu_percent"] <= 100
    assert 0 < host["memory_used_mib"] < host["memory_total_mib"]
    assert host["load1"] >= 0
    assert len(host["gpus"]) == 8
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    busy = {"name": "NVIDIA H100 80GB HBM3", "utilization": 100.0, "memory_used_mib": 19798.0,
            "memory_total_mib": 81559.0, "temperature_c": 63.0, "power_w": 631.0,
            "power_limit_w": 700.0}
    idle = {**busy, "utilization": 0.0, "memory_used_mib": 0.0, "temperature_c": 41.0,
            "power_w": 69.0}
    expected = []
    for index in range(8):
        values = busy if index < 4 else idle
        expected.append({"index": index, **values,
                         "uuid": f"GPU-00000000-0000-0000-0000-00000000000{index}",
                         "processes": []})
    expected[0]["processes"] = [
        {"pid": pid_max, "user": "?", "command": "./gpu_burn", "memory_mib": 15690.0},
        {"pid": pid_max + 1, "user": "?", "command": "memhog", "memory_mib": 2566.0},
        {"pid": pid_max + 2, "user": "?", "command": "memhog", "memory_mib": 1542.0},
    ]
    expected[1]["processes"] = [
        {"pid": pid_max + 3, "user": "?", "command": "./gpu_burn", "memory_mib": 19798.0}]
    expected[2]["processes"] = [
        {"pid": pid_max + 4, "user": "?", "command": "./gpu_burn", "memory_mib": 19798.0}]
    expected[3]["processes"] = [
        {"pid": pid_max + 5, "user": "?", "command": "./gpu_burn", "memory_mib": 19798.0},
        {"pid": job.pid, "user": getpass.getuser(),
         "command": f"{sys.executable} -c import sys, time; print('up', flush=True); "
                    "time.sleep(60) --lr=3e-4", "memory_mib": 4096.0},
    ]
    expected[3]["processes"].sort(key=lambda p: p["pid"])
    health_keys = ["health", "throttle_reasons", "clocks", "pcie", "ecc", "xid", "energy_j",
                   "mig"]  # tests/test_gpu_health.py checks their values
    for gpu in host["gpus"]:
        assert list(gpu) == ["index", "name", "uuid", "utilization", "memory_used_mib",
                             "memory_total_mib", "temperature_c", "power_w", "power_limit_w",
                             "processes", *health_keys]
        for process in gpu["processes"]:
            assert list(process) == ["pid", "user", "command", "memory_mib"]
    assert [{k: v for k, v in g.items() if k not in health_keys}
            for g in host["gpus"]] == expected


@pytest.mark.sshd
def test_status_table(lab: SshServer, isolated_home: Path) -> None:
    write_config(isolated_home, host_block(lab, "gpu1"))
    result = nomadlab_in_process("status")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["HOST", "STATE", "GPU", "UTIL", "MEMORY", "TEMP", "POWER",
                                "PROCS"]
    assert lines[1].split()[:4] == ["gpu1", "live", "cpu", lines[1].split()[3]]
    assert "ram" in lines[1] and "load" in lines[1]
    for index, line in enumerate(lines[2:10]):
        assert line.split()[:5] == [str(index), "NVIDIA", "H100", "80GB", "HBM3"]
    assert lines[2].split()[5:] == ["100%", "19.3G/79.6G", "63°C", "631/700W", "3"]
    assert lines[5].split()[-1] == "2"  # GPU 3: a captured process and the job
    assert lines[9].split()[5:] == ["0%", "0M/79.6G", "41°C", "69/700W", "0"]
    assert len(lines) == 10
    assert result.stderr == ""


@pytest.mark.sshd
def test_status_with_an_unreachable_host(lab: SshServer, isolated_home: Path) -> None:
    nobody = free_port()
    write_config(isolated_home, host_block(lab, "gpu1"),
                 f'[[hosts]]\nname = "gone"\nhostname = "127.0.0.1"\nport = {nobody}\n')
    result = nomadlab_in_process("status", "--json")
    assert result.returncode == 1
    gpu1, gone = json.loads(result.stdout)["hosts"]
    assert (gpu1["name"], gpu1["state"], len(gpu1["gpus"])) == ("gpu1", "live", 8)
    assert gone == {"name": "gone", "state": "unreachable", "error": "connection refused",
                    "cpu_percent": None, "memory_used_mib": None, "memory_total_mib": None,
                    "load1": None, "gpus": [], "source": "ssh"}
    table = nomadlab_in_process("status")
    assert table.returncode == 1
    assert table.stdout.splitlines()[-1].split() == ["gone", "unreachable", "connection",
                                                     "refused"]
    assert "NVIDIA H100 80GB HBM3" in table.stdout
    assert table.stderr == "gone: connection refused\n"
    only_gpu1 = nomadlab_in_process("status", "--json", "--host", "gpu1")
    assert only_gpu1.returncode == 0
    assert [h["name"] for h in json.loads(only_gpu1.stdout)["hosts"]] == ["gpu1"]


@pytest.mark.sshd
def test_status_of_an_unknown_host_key(make_sshd: Callable[..., SshServer],
                                       isolated_home: Path) -> None:
    server = make_sshd()
    write_config(isolated_home, host_block(server, "new"))
    result = nomadlab_in_process("status", "--json")
    assert result.returncode == 1
    [host] = json.loads(result.stdout)["hosts"]
    assert host["state"] == "host key unknown"
    assert host["error"].startswith("unknown host key ssh-ed25519 SHA256:")


def steps(output: str) -> dict[str, tuple[str, str]]:
    """'  ✓ tcp        127.0.0.1:22 open (0 ms)' -> {'tcp': ('✓', '127.0.0.1:22 open (0 ms)')}"""
    found = {}
    for line in output.splitlines():
        if line.startswith("  ") and line[2] in "✓✗·":
            name, detail = line[4:15].strip(), line[15:]
            found[name] = (line[2], detail)
    return found


@pytest.mark.sshd
def test_hosts_check(lab: SshServer, isolated_home: Path) -> None:
    write_config(isolated_home, host_block(lab, "gpu1"))
    result = nomadlab_in_process("hosts", "check", "gpu1")
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines()[0] == "gpu1"
    found = steps(result.stdout)
    assert found["tcp"][0] == "✓" and found["tcp"][1].startswith(f"127.0.0.1:{lab.port} open")
    assert found["host key"] == ("✓", "trusted (known_hosts)")
    assert found["auth"] == ("✓", f"logged in as {lab.user}")
    assert found["python3"][0] == "✓" and found["python3"][1].startswith("python3 3.")
    assert found["gpu source"] == ("✓", "nvml, driver 590.48.01")
    assert found["gpus"] == ("·", "8")
    assert [line[2] for line in result.stdout.splitlines()[1:]].count("✗") == 0


@pytest.mark.sshd
def test_hosts_check_without_python(make_sshd: Callable[..., SshServer], fake_smi_bin: Path,
                                    isolated_home: Path) -> None:
    """No python3 on the host is not a failure: the fleet streams nvidia-smi instead."""
    env = fake_smi_env(fake_smi_bin, "h100", state="load", gpus=2)
    server = trusted(make_sshd({k: v for k, v in env.items() if k.startswith("NOMADLAB_")}
                               | {"PATH": f"{fake_smi_bin}:/usr/bin:/bin"}))
    write_config(isolated_home, host_block(server, "old") + 'python = "python3-not-here"\n')
    result = nomadlab_in_process("hosts", "check", "old")
    assert result.returncode == 0, result.stdout
    found = steps(result.stdout)
    assert found["python3"] == ("·", "python3-not-here not found: nvidia-smi is streamed "
                                     "instead")
    assert found["nvidia-smi"] == ("·", str(fake_smi_bin / "nvidia-smi"))
    assert found["gpu source"] == ("✓", "nvidia-smi")
    assert "agent" not in found


@pytest.mark.sshd
def test_hosts_check_says_what_is_wrong(make_sshd: Callable[..., SshServer],
                                        isolated_home: Path) -> None:
    server = make_sshd()
    nobody = free_port()
    write_config(isolated_home, host_block(server, "new"),
                 f'[[hosts]]\nname = "gone"\nhostname = "127.0.0.1"\nport = {nobody}\n')
    result = nomadlab_in_process("hosts", "check")
    assert result.returncode == 1
    new, gone = result.stdout.split("\ngone\n")
    found = steps(new)
    assert found["host key"][0] == "✗"
    assert found["host key"][1].startswith("unknown host key ssh-ed25519 SHA256:")
    assert found["host key"][1].endswith(" - run `nomadlab hosts trust new`")
    assert "auth" not in found  # the first failure ends the walk
    assert steps(gone) == {"tcp": ("✗", f"127.0.0.1:{nobody}: connection refused")}
    no_traceback(result)


@pytest.mark.sshd
def test_hosts_trust(make_sshd: Callable[..., SshServer], isolated_home: Path) -> None:
    server = make_sshd()
    known_hosts = isolated_home / ".ssh" / "known_hosts"
    write_config(isolated_home, host_block(server, "new", known_hosts=known_hosts))
    fingerprint = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f",
                                  f"{server.host_key}.pub"], capture_output=True, text=True,
                                 check=True).stdout.split()[1]

    asked = nomadlab_in_process("hosts", "trust", "new")  # no terminal to ask on
    assert asked.returncode == 2
    assert asked.stderr == ("nomadlab: not a terminal: pass --yes (or --fingerprint "
                            "SHA256:...) to trust\n")
    wrong = nomadlab_in_process("hosts", "trust", "new", "--fingerprint", "SHA256:not-this-one")
    assert wrong.returncode == 1
    assert "does not match --fingerprint; not trusted" in wrong.stderr
    assert not known_hosts.exists()

    result = nomadlab_in_process("hosts", "trust", "new", "--yes")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"new: 127.0.0.1 port {server.port} presents an unknown key",
        f"  ssh-ed25519 {fingerprint}",
        f"Added to {known_hosts}.",
    ]
    assert known_hosts.read_text() == server.host_key_line + "\n"
    again = nomadlab_in_process("hosts", "trust", "new", "--yes")
    assert again.returncode == 0
    assert again.stdout == "new: the host key is already trusted.\n"
    assert known_hosts.read_text() == server.host_key_line + "\n"
    # And now the host is usable.
    assert nomadlab_in_process("hosts", "check", "new").returncode == 0


@pytest.mark.sshd
def test_hosts_trust_with_the_fingerprint(make_sshd: Callable[..., SshServer],
                                          isolated_home: Path) -> None:
    server = make_sshd()
    write_config(isolated_home, host_block(server, "new"))
    fingerprint = subprocess.run(["ssh-keygen", "-l", "-E", "sha256", "-f",
                                  f"{server.host_key}.pub"], capture_output=True, text=True,
                                 check=True).stdout.split()[1]
    result = nomadlab_in_process("hosts", "trust", "new", "--fingerprint",
                                 fingerprint.split(":", 1)[1])
    assert result.returncode == 0, result.stderr
    assert (server.base / "known_hosts").read_text() == server.host_key_line + "\n"


@pytest.mark.sshd
def test_hosts_trust_refuses_a_changed_key(make_sshd: Callable[..., SshServer],
                                           isolated_home: Path, tmp_path: Path) -> None:
    server = make_sshd()
    old_key = keygen(tmp_path / "old_host_key")
    kind, blob = Path(f"{old_key}.pub").read_text().split()[:2]
    known_hosts = server.base / "known_hosts"
    known_hosts.write_text(f"# mine\n[127.0.0.1]:{server.port} {kind} {blob}\n")
    before = known_hosts.read_bytes()
    write_config(isolated_home, host_block(server, "rebuilt"))
    result = nomadlab_in_process("hosts", "trust", "rebuilt", "--yes")
    assert result.returncode == 1
    assert "HOST KEY CHANGED" in result.stderr
    assert f"ssh-keygen -R '[127.0.0.1]:{server.port}' -f {known_hosts}" in result.stderr
    assert known_hosts.read_bytes() == before
    no_traceback(result)


def test_hosts_trust_an_unreachable_host(isolated_home: Path) -> None:
    nobody = free_port()
    write_config(isolated_home,
                 f'[[hosts]]\nname = "gone"\nhostname = "127.0.0.1"\nport = {nobody}\n')
    result = nomadlab_in_process("hosts", "trust", "gone", "--yes")
    assert result.returncode == 1
    assert result.stderr == "gone: cannot reach the host: connection refused\n"
    assert "trusted" not in result.stdout
