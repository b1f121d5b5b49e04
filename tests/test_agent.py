"""The agent that runs on GPU hosts: Python 3.8, its pure parts, and its main loop.

The loop tests start the agent exactly as a host does (``bash -c`` the bootstrap
command, then the payload on stdin) as a local subprocess, and read its JSON lines
with a bounded wait on each.
"""

from __future__ import annotations

import getpass
import itertools
import json
import os
import select
import shutil
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest
from conftest import nvml_env
from standins.smi import fake_smi_env

from nomadlab.hostside import agent
from nomadlab.remote import bootstrap

AGENT_DIR = Path(agent.__file__).parent  # the package shipped to hosts


# --------------------------------------------------------------------------- Python 3.8


def vermin(path: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("vermin", path=os.path.dirname(sys.executable)) or shutil.which("vermin")
    if exe is None:
        pytest.fail("vermin is not installed (pip install -e '.[test]')", pytrace=False)
    # --eval-annotations: without `from __future__ import annotations`, Python 3.8
    # evaluates function annotations when the def runs, so `list[int]` there breaks.
    return subprocess.run(
        [exe, "--target=3.8-", "--violations", "--no-tips", "--eval-annotations",
         "--no-config-file", str(path)],
        capture_output=True, text=True, timeout=60, check=False,
    )


def test_vermin_flags_what_38_cannot_run(tmp_path: Path) -> None:
    """The check below is not vacuous: these flags do catch a 3.9 construct."""
    bad = tmp_path / "bad.py"
    bad.write_text("def f(x: list[int]) -> dict[str, int]:\n    return {}\n")
    result = vermin(bad)
    assert result.returncode != 0
    assert "requires !2, 3.9" in result.stdout


def test_agent_source_needs_nothing_above_python_38() -> None:
    result = vermin(AGENT_DIR)  # every module of it
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Target versions not met" not in result.stdout
    assert "requires" not in result.stdout  # --violations lists only what breaks 3.8


def test_bootstrap_needs_nothing_above_python_38(tmp_path: Path) -> None:
    boot = tmp_path / "boot.py"
    boot.write_text(bootstrap.BOOT)
    result = vermin(boot)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "requires" not in result.stdout


def shipped(payload: bytes) -> dict[str, Any]:
    """The bundle a host reads from stdin (after the length line)."""
    size, body = payload.split(b"\n", 1)
    assert int(size) == len(body)
    bundle = json.loads(zlib.decompress(body))
    assert isinstance(bundle, dict)
    return bundle


def test_the_bundle_ships_every_module_of_the_agent_under_its_own_name() -> None:
    """Every file of the package (none left behind in a subfolder), under the host-side
    package name, and ``__main__`` as what the bootstrap execs."""
    bundle = shipped(bootstrap.payload(1.0))
    files = sorted(AGENT_DIR.rglob("*.py"))
    expected = {"nomadlab_agent" + ("" if f.stem == "__init__" else f".{f.stem}")
                for f in files if f.name != "__main__.py"}
    assert bundle["package"] == "nomadlab_agent"
    assert set(bundle["modules"]) == expected
    assert {"nomadlab_agent.run", "nomadlab_agent.nvml", "nomadlab_agent.smi"} <= expected
    assert bundle["agent"] == (AGENT_DIR / "__main__.py").read_text(encoding="utf-8")


def test_agent_imports_only_the_standard_library() -> None:
    code = (
        "import sys; before = set(sys.modules)\n"
        # as on a host: the package alone (no nomadlab above it), under another name
        f"sys.path.insert(0, {str(AGENT_DIR.parent)!r}); import agent.run\n"
        "import sysconfig\n"
        "std = sysconfig.get_paths()['stdlib']\n"
        "bad = [n for n in set(sys.modules) - before\n"
        "       if getattr(sys.modules[n], '__file__', None)\n"
        "       and not sys.modules[n].__file__.startswith(std)\n"
        "       and n != 'agent' and not n.startswith('agent.')]\n"
        "assert 'agent.procs' in sys.modules and 'nomadlab' not in sys.modules\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-I", "-S", "-c", code], capture_output=True,
                         text=True, timeout=30, check=True)
    assert out.stdout.strip() == "[]"


def _python38() -> str | None:
    """A real Python 3.8 interpreter, if this machine has one (NOMADLAB_PYTHON38 or PATH)."""
    candidates = [os.environ.get("NOMADLAB_PYTHON38"), shutil.which("python3.8")]
    for exe in candidates:
        if not exe:
            continue
        try:
            out = subprocess.run([exe, "-c", "import sys; print(sys.version_info[:2])"],
                                 capture_output=True, text=True, timeout=20, check=False)
        except OSError:
            continue
        if out.returncode == 0 and out.stdout.strip() == "(3, 8)":
            return exe
    return None


PYTHON38 = _python38()

# Only where a 3.8 exists (CI fails on skipped tests, and vermin above is the guard
# everywhere): NOMADLAB_PYTHON38=/path/to/python3.8 pytest tests/test_agent.py
if PYTHON38 is not None:

    def test_agent_runs_on_a_real_python_38() -> None:
        assert PYTHON38 is not None
        with AgentProcess(bootstrap.payload(0.2, once=True), python=PYTHON38) as proc:
            hello = proc.message()
            sample = proc.message()
            assert proc.wait() == 0
        assert hello["type"] == "hello" and hello["python"].startswith("3.8.")
        assert sample["type"] == "sample"


# --------------------------------------------------------------------------- nvidia-smi lines


def smi_lines(bin_dir: Path, capture: str, query: str, fields: tuple[str, ...], *,
              state: str = "load", gpus: int = 2, units: bool = False) -> list[str]:
    """What the stand-in nvidia-smi prints for the agent's own query."""
    env = fake_smi_env(bin_dir, capture, state=state, gpus=gpus)
    fmt = "--format=csv,noheader" + ("" if units else ",nounits")
    out = subprocess.run(["nvidia-smi", f"--query-{query}=" + ",".join(fields), fmt],
                         env=env, capture_output=True, text=True, timeout=30, check=True)
    return out.stdout.splitlines()


def test_parse_smi_gpu_line_h100_under_load(fake_smi_bin: Path) -> None:
    lines = smi_lines(fake_smi_bin, "h100", "gpu", agent.SMI_GPU_FIELDS)
    gpus = [agent.parse_smi_gpu_line(line) for line in lines]
    values = {"name": "NVIDIA H100 80GB HBM3", "util": 100.0, "mu": 19818.0, "mt": 81559.0,
              "temp": 59.0, "pw": 631.95, "pl": 700.0, "procs": []}
    assert gpus == [
        {"i": 0, "uuid": "GPU-00000000-0000-0000-0000-000000000000", **values},
        {"i": 1, "uuid": "GPU-00000000-0000-0000-0000-000000000001", **values},
    ]


def test_parse_smi_gpu_line_mig_has_no_utilization(fake_smi_bin: Path) -> None:
    """With MIG enabled, nvidia-smi reports utilization.gpu as [N/A]."""
    lines = smi_lines(fake_smi_bin, "h100-mig", "gpu", agent.SMI_GPU_FIELDS, gpus=1)
    assert "[N/A]" in lines[0]
    gpu = agent.parse_smi_gpu_line(lines[0])
    assert gpu is not None
    assert gpu["util"] is None
    assert (gpu["mu"], gpu["mt"], gpu["temp"], gpu["pw"], gpu["pl"]) == (
        11125.0, 81559.0, 53.0, 433.78, 700.0)


@pytest.mark.parametrize("capture", ["h100", "h100-mig", "h200", "l40s", "rtx4080"])
@pytest.mark.parametrize("state", ["load", "idle"])
def test_parse_smi_gpu_line_every_capture(fake_smi_bin: Path, capture: str, state: str) -> None:
    """Every real capture parses, with and without units in the numbers."""
    plain = smi_lines(fake_smi_bin, capture, "gpu", agent.SMI_GPU_FIELDS, state=state)
    units = smi_lines(fake_smi_bin, capture, "gpu", agent.SMI_GPU_FIELDS, state=state,
                      units=True)
    assert any(" MiB" in line for line in units)  # the units really are there
    parsed = [agent.parse_smi_gpu_line(line) for line in plain]
    assert [g["i"] for g in parsed if g] == [0, 1]
    for gpu in parsed:
        assert gpu is not None
        assert gpu["name"].startswith("NVIDIA ")
        assert gpu["mt"] and gpu["mt"] > 1000 and gpu["pl"] and gpu["pl"] > 100
    assert [agent.parse_smi_gpu_line(line) for line in units] == parsed


def test_parse_smi_gpu_line_rejects_what_is_not_a_gpu_line(fake_smi_bin: Path) -> None:
    env = fake_smi_env(fake_smi_bin, "h100")
    header = subprocess.run(
        ["nvidia-smi", "--query-gpu=" + ",".join(agent.SMI_GPU_FIELDS), "--format=csv"],
        env=env, capture_output=True, text=True, timeout=30, check=True).stdout.splitlines()[0]
    assert header.startswith("index, name")
    assert agent.parse_smi_gpu_line(header) is None
    no_driver = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv"],
                               env=fake_smi_env(fake_smi_bin, None), capture_output=True,
                               text=True, timeout=30, check=False)
    assert no_driver.returncode == 9
    for line in [*no_driver.stdout.splitlines(), "", "garbage", "1, 2, 3"]:
        assert agent.parse_smi_gpu_line(line) is None


def test_parse_smi_app_line_from_the_captures(fake_smi_bin: Path) -> None:
    lines = smi_lines(fake_smi_bin, "h100", "compute-apps", agent.SMI_APP_FIELDS)
    rows = [agent.parse_smi_app_line(line) for line in lines]
    assert all(rows)
    stamps = {r[0] for r in rows if r}
    assert len(stamps) == 1  # one poll: one timestamp on every row
    assert [(r[1], r[2], r[3], r[4]) for r in rows if r] == [
        ("GPU-00000000-0000-0000-0000-000000000000", 11327, "/root/tools/memhog", 2566.0),
        ("GPU-00000000-0000-0000-0000-000000000000", 11328, "/root/tools/memhog", 1542.0),
        ("GPU-00000000-0000-0000-0000-000000000000", 11345, "./gpu_burn", 15690.0),
    ]
    with_units = smi_lines(fake_smi_bin, "h100", "compute-apps", agent.SMI_APP_FIELDS,
                           units=True)
    assert "MiB" in with_units[0]
    assert [r[1:] for r in map(agent.parse_smi_app_line, with_units) if r] == \
        [r[1:] for r in rows if r]
    # No process at all: nvidia-smi prints nothing.
    assert smi_lines(fake_smi_bin, "h100", "compute-apps", agent.SMI_APP_FIELDS,
                     state="idle") == []


def test_parse_smi_app_line_edge_cases(fake_smi_bin: Path) -> None:
    line = smi_lines(fake_smi_bin, "rtx4080", "compute-apps", agent.SMI_APP_FIELDS)[0]
    stamp, uuid, pid, _name, _mib = line.split(", ")
    # A process name with commas keeps them; memory [N/A] (MIG, no permission) is None.
    odd = f"{stamp}, {uuid}, {pid}, python train.py --a=1,2, [N/A]"
    assert agent.parse_smi_app_line(odd) == (stamp, uuid, int(pid), "python train.py --a=1,2",
                                             None)
    header = "timestamp, gpu_uuid, pid, process_name, used_gpu_memory [MiB]"
    assert agent.parse_smi_app_line(header) is None
    assert agent.parse_smi_app_line("") is None
    assert agent.parse_smi_app_line(f"{stamp}, {uuid}") is None


def test_smi_gpus_streams_from_nvidia_smi(fake_smi_bin: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """SmiGpus with the stand-in: two looping children, joined by GPU uuid."""
    env = fake_smi_env(fake_smi_bin, "h100", state="load", gpus=2)
    for key in ("NOMADLAB_FAKE_SMI_CAPTURE", "NOMADLAB_FAKE_SMI_STATE", "NOMADLAB_FAKE_SMI_GPUS"):
        monkeypatch.setenv(key, env[key])
    gpus = agent.SmiGpus(0.2, command=str(fake_smi_bin / "nvidia-smi"),
                         names=agent.ProcessNames())
    try:
        assert gpus.inventory() == [
            {"i": 0, "name": "NVIDIA H100 80GB HBM3",
             "uuid": "GPU-00000000-0000-0000-0000-000000000000"},
            {"i": 1, "name": "NVIDIA H100 80GB HBM3",
             "uuid": "GPU-00000000-0000-0000-0000-000000000001"},
        ]
        deadline = time.monotonic() + 10
        rows = gpus.sample()
        while not rows[0]["procs"] and time.monotonic() < deadline:
            time.sleep(0.05)  # the apps child's first poll
            rows = gpus.sample()
        assert {p[0] for p in rows[0]["procs"]} == {11327, 11328, 11345}
        assert rows[1]["procs"] == []
        assert rows[0]["util"] == 100.0 and "name" not in rows[0]
    finally:
        gpus.close()
    assert all(child.poll() is not None for child in gpus.children)


# --------------------------------------------------------------------------- host stats


def _cpu_line(values: list[int]) -> str:
    return "cpu  " + " ".join(str(v) for v in values) + "\n"


def test_host_stats_from_a_proc_copy(tmp_path: Path) -> None:
    root = tmp_path / "proc"
    root.mkdir()
    stat = Path("/proc/stat").read_text()
    meminfo = Path("/proc/meminfo").read_text()
    (root / "stat").write_text(stat)
    (root / "meminfo").write_text(meminfo)
    mem = {line.split(":")[0]: int(line.split()[1]) for line in meminfo.splitlines()}

    stats = agent.HostStats(str(root))
    first = stats.sample()
    assert first["cpu"] is None  # nothing to compare with yet
    assert first["ram_total"] == round(mem["MemTotal"] / 1024, 1)
    assert first["ram_used"] == round((mem["MemTotal"] - mem["MemAvailable"]) / 1024, 1)
    assert first["load1"] is not None

    # 300 jiffies of user time, 60 of system, 100 idle, 40 iowait: 360 busy of 500.
    head, rest = stat.split("\n", 1)
    values = [int(v) for v in head.split()[1:]]
    values[0] += 300
    values[2] += 60
    values[3] += 100
    values[4] += 40
    (root / "stat").write_text(_cpu_line(values) + rest)
    assert stats.sample()["cpu"] == 72.0
    # No time passed at all: no division by zero, no number.
    assert stats.sample()["cpu"] is None


def test_host_stats_old_kernel_and_missing_files(tmp_path: Path) -> None:
    root = tmp_path / "proc"
    root.mkdir()
    # Before Linux 3.14 there was no MemAvailable: MemFree is the fallback.
    (root / "meminfo").write_text("MemTotal:       2048000 kB\nMemFree:         512000 kB\n")
    (root / "stat").write_text("cpu  garbage\n")
    out = agent.HostStats(str(root)).sample()
    assert out["ram_total"] == 2000.0 and out["ram_used"] == 1500.0
    assert out["cpu"] is None
    nothing = agent.HostStats(str(tmp_path / "no-proc")).sample()
    assert (nothing["cpu"], nothing["ram_used"], nothing["ram_total"]) == (None, None, None)


# --------------------------------------------------------------------------- process names


SLEEPER = [sys.executable, "-c", "import time; print('up', flush=True); time.sleep(60)",
           "--lr=3e-4", "two words"]


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    """A running child (its command line is only there once exec is through)."""
    proc = subprocess.Popen(SLEEPER, stdout=subprocess.PIPE)
    assert proc.stdout is not None
    if not select.select([proc.stdout], [], [], 15)[0]:
        proc.kill()
        raise AssertionError("the child did not start")
    assert proc.stdout.readline() == b"up\n"
    yield proc
    proc.kill()
    proc.wait()
    proc.stdout.close()


def test_process_names_read_the_real_proc(sleeper: subprocess.Popen[bytes]) -> None:
    names = agent.ProcessNames()
    found = names.lookup([sleeper.pid])
    user, command = found[sleeper.pid]
    assert user == getpass.getuser()
    assert command == " ".join(SLEEPER)


def test_process_names_cache_while_asked_then_forget(sleeper: subprocess.Popen[bytes]) -> None:
    names = agent.ProcessNames()
    first = names.lookup([sleeper.pid])
    sleeper.kill()
    sleeper.wait()
    assert names.lookup([sleeper.pid]) == first  # cached while the pid is asked for
    assert names.lookup([]) == {}
    assert names.lookup([sleeper.pid]) == {sleeper.pid: ("?", "")}  # forgotten, gone


def test_process_names_zombie_and_long_command(tmp_path: Path) -> None:
    """A zombie has no command line: its comm is shown in brackets, like ps does."""
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    busy = subprocess.Popen([*SLEEPER, "x" * 500], stdout=subprocess.PIPE)
    try:
        assert busy.stdout is not None and select.select([busy.stdout], [], [], 15)[0]
        stat = Path(f"/proc/{zombie.pid}/stat")
        deadline = time.monotonic() + 10
        while stat.read_text().rsplit(")", 1)[1].split()[0] != "Z":
            assert time.monotonic() < deadline, "the child did not exit"
            time.sleep(0.01)
        comm = Path(f"/proc/{zombie.pid}/comm").read_text().strip()
        found = agent.ProcessNames().lookup([zombie.pid, busy.pid])
        assert found[zombie.pid] == (getpass.getuser(), f"[{comm}]")
        command = found[busy.pid][1]
        assert len(command) == agent.MAX_COMMAND and command.endswith("\u2026")
        assert command.startswith(sys.executable)
    finally:
        zombie.wait()
        busy.kill()
        busy.wait()
        if busy.stdout is not None:
            busy.stdout.close()


def test_process_names_of_a_pid_that_cannot_exist() -> None:
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    assert agent.ProcessNames().lookup([pid_max]) == {pid_max: ("?", "")}


# --------------------------------------------------------------------------- the loop


class AgentProcess:
    """The agent as a host runs it: ``bash -c`` the bootstrap command, payload on stdin.

    ``python`` defaults to this interpreter (by full path, so the test does not depend
    on which ``python3`` PATH finds). Output is read with ``select``: every wait has
    a deadline, and no reader thread holds the pipe when a test closes it.
    """

    def __init__(self, payload: bytes, *, python: str = sys.executable,
                 env: dict[str, str] | None = None) -> None:
        full_env = dict(os.environ)
        full_env.update(env or {})
        self.proc = subprocess.Popen(["bash", "-c", bootstrap.agent_command(python)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=full_env)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin: IO[bytes] = self.proc.stdin
        self.fd = self.proc.stdout.fileno()
        self.buffer = b""
        self.eof = False
        self.stdin.write(payload)
        self.stdin.flush()

    def line(self, timeout: float = 15.0) -> bytes:
        """The next line, or b"" at EOF; AssertionError when none comes in time."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer and not self.eof:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.fd], [], [], left)[0]:
                raise AssertionError(f"no line from the agent within {timeout}s")
            chunk = os.read(self.fd, 65536)
            self.buffer += chunk
            self.eof = not chunk
        line, sep, self.buffer = self.buffer.partition(b"\n")
        return line + sep

    def message(self, timeout: float = 15.0) -> dict[str, Any]:
        line = self.line(timeout)
        assert line, f"the agent ended: {self.stderr()}"
        message: dict[str, Any] = json.loads(line)
        return message

    def send(self, text: str) -> None:
        self.stdin.write(text.encode())
        self.stdin.flush()

    def wait(self, timeout: float = 15.0) -> int:
        return self.proc.wait(timeout)

    def stderr(self) -> str:
        if self.proc.poll() is None:
            return "(still running)"
        assert self.proc.stderr is not None
        return self.proc.stderr.read().decode(errors="replace")

    def __enter__(self) -> AgentProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                try:
                    stream.close()
                except OSError:
                    pass


@pytest.fixture
def no_gpu_env(fake_nvml_dir: Path, fake_smi_bin: Path, tmp_path: Path) -> dict[str, str]:
    """No GPU, even on a machine that has one: NVML and nvidia-smi both fail."""
    env = fake_smi_env(fake_smi_bin, None)
    env.update(nvml_env(fake_nvml_dir, tmp_path / "no-such-nvml-data"))
    return env


def test_hello_then_samples_and_eof_ends_it(fake_nvml_dir: Path, nvml_conf: Path) -> None:
    with AgentProcess(bootstrap.payload(0.2), env=nvml_env(fake_nvml_dir, nvml_conf)) as a:
        hello = a.message()
        assert hello["type"] == "hello" and hello["agent"] == agent.AGENT_VERSION
        assert hello["source"] == "nvml" and hello["driver"] == "590.48.01"
        assert len(hello["gpus"]) == 8
        assert hello["gpus"][0] == {"i": 0, "name": "NVIDIA H100 80GB HBM3",
                                    "uuid": "GPU-00000000-0000-0000-0000-000000000000"}
        samples = [a.message() for _ in range(3)]
        assert [s["type"] for s in samples] == ["sample"] * 3
        gpu0 = samples[-1]["gpus"][0]
        assert (gpu0["util"], gpu0["mt"], gpu0["pl"]) == (100.0, 81559.0, 700.0)
        assert {p[0]: p[3] for p in gpu0["procs"]} == {11345: 15690.0, 11327: 2566.0,
                                                        11328: 1542.0}
        assert samples[-1]["ram_total"] and samples[-1]["load1"] is not None
        a.stdin.close()
        start = time.monotonic()
        assert a.wait() == 0
        assert time.monotonic() - start < 3.0


def test_without_gpus_it_says_why(no_gpu_env: dict[str, str]) -> None:
    with AgentProcess(bootstrap.payload(0.2), env=no_gpu_env) as a:
        hello = a.message()
        assert hello["source"] == "none" and hello["gpus"] == []
        assert "no NVIDIA driver" in hello["reason"]
        assert a.message()["gpus"] == []
        a.send("quit\n")
        assert a.wait() == 0


def test_falls_back_to_nvidia_smi(no_gpu_env: dict[str, str], fake_smi_bin: Path) -> None:
    env = fake_smi_env(fake_smi_bin, "l40s", state="load", gpus=2, base=no_gpu_env)
    with AgentProcess(bootstrap.payload(0.2), env=env) as a:
        hello = a.message()
        assert hello["source"] == "nvidia-smi"
        assert [g["name"] for g in hello["gpus"]] == ["NVIDIA L40S", "NVIDIA L40S"]
        assert a.message()["gpus"][0]["mt"] == 46068.0
        a.stdin.close()
        assert a.wait() == 0


def test_missing_heartbeats_end_it_with_status_3() -> None:
    start = time.monotonic()
    with AgentProcess(bootstrap.payload(0.2, heartbeat_timeout=1.0)) as a:
        assert a.message()["type"] == "hello"
        assert a.wait(timeout=15) == 3
        assert time.monotonic() - start > 1.0  # it did wait for the heartbeat


def test_heartbeats_keep_it_alive() -> None:
    """A heartbeat answered to every sample keeps it going well past the timeout."""
    with AgentProcess(bootstrap.payload(0.1, heartbeat_timeout=1.0)) as a:
        assert a.message()["type"] == "hello"
        start = time.monotonic()
        while time.monotonic() - start < 2.0:  # twice the timeout
            assert a.message()["type"] == "sample"
            a.send("\n")
        assert a.proc.poll() is None
        a.stdin.close()
        assert a.wait() == 0


def test_interval_command_changes_the_rate() -> None:
    with AgentProcess(bootstrap.payload(2.0)) as a:
        assert a.message()["type"] == "hello"
        a.message()  # the first sample comes at once
        a.send("interval 0.1\n")
        sent = time.monotonic()
        a.message(timeout=1.5)  # at once too, not 2 s later
        assert time.monotonic() - sent < 1.5
        stamps = [a.message(timeout=1.5)["t"] for _ in range(10)]
        gaps = sorted(later - earlier for earlier, later in itertools.pairwise(stamps))
        assert gaps[len(gaps) // 2] < 0.3  # the median gap is the new interval
        # Nonsense is skipped, never fatal.
        a.send("interval fast\n\xff\xfe\nsomething else\n")
        a.message()
        a.stdin.close()
        assert a.wait() == 0


def test_once_prints_hello_and_one_sample() -> None:
    with AgentProcess(bootstrap.payload(0.2, once=True)) as a:
        assert a.message()["type"] == "hello"
        sample = a.message()
        assert sample["type"] == "sample" and sample["cpu"] is not None
        assert a.wait() == 0  # stdin still open: it ends by itself
        assert a.line(timeout=5) == b""


def test_the_default_command_finds_python3_on_path() -> None:
    """``agent_command()`` as hosts get it: ``python3`` looked up by the shell."""
    with AgentProcess(bootstrap.payload(0.2, once=True), python="python3") as a:
        assert a.message()["type"] == "hello"
        assert a.message()["type"] == "sample"
        assert a.wait() == 0


def test_broken_stdout_ends_it() -> None:
    with AgentProcess(bootstrap.payload(0.1)) as a:
        assert a.message()["type"] == "hello"
        assert a.proc.stdout is not None
        a.proc.stdout.close()
        assert a.wait(timeout=10) == 2  # a failed write is the end, not a crash
        assert "Traceback" not in a.stderr()


def test_no_python_prints_the_marker() -> None:
    with AgentProcess(b"", python="python3-is-not-installed-here") as a:
        line = a.line(timeout=10)
        assert line.strip() == agent.NO_PYTHON_MARKER.encode()
        assert a.wait() == 0
