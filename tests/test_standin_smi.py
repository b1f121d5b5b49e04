"""The replaying nvidia-smi stand-in gives back the real captures as nvidia-smi would."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

try:  # tests/ on sys.path (no tests/__init__.py) ...
    from standins.smi import (
        CAPTURE_NAMES,
        capture_path,
        fake_smi_env,
        install_fake_smi,
    )
except ImportError:  # ... or the repository root (tests/ is a package)
    from tests.standins.smi import (
        CAPTURE_NAMES,
        capture_path,
        fake_smi_env,
        install_fake_smi,
    )

GPU_FIELDS = (
    "index,name,uuid,utilization.gpu,memory.used,memory.total,"
    "temperature.gpu,power.draw,power.limit"
)
GPU_QUERY = [f"--query-gpu={GPU_FIELDS}", "--format=csv,noheader,nounits"]
APPS_QUERY = [
    "--query-compute-apps=timestamp,gpu_uuid,pid,process_name,used_memory",
    "--format=csv,noheader,nounits",
]
DRIVER_FAILURE = (
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
    "Make sure that the latest NVIDIA driver is installed and running."
)
TIMESTAMP = re.compile(r"^\d{4}/\d{2}/\d{2} \d{2}:\d{2}:\d{2}\.\d{3}$")
UUID0 = "GPU-00000000-0000-0000-0000-000000000000"  # the capturer masked every uuid to this
NA = "[N/A]"

# Read off the captures' `--query-gpu ... --format=csv` sections by hand:
# (name, utilization.gpu, memory.used, memory.total, temperature.gpu, power.draw, power.limit)
EXPECTED = {
    ("h100", "idle"): ("NVIDIA H100 80GB HBM3", 0, 0, 81559, 41, 69.85, 700.0),
    ("h100", "load"): ("NVIDIA H100 80GB HBM3", 100, 19818, 81559, 59, 631.95, 700.0),
    ("h100-mig", "idle"): ("NVIDIA H100 80GB HBM3", NA, 59, 81559, 42, 71.15, 700.0),
    ("h100-mig", "load"): ("NVIDIA H100 80GB HBM3", NA, 11125, 81559, 53, 433.78, 700.0),
    ("h200", "idle"): ("NVIDIA H200", 0, 0, 143771, 28, 77.71, 700.0),
    ("h200", "load"): ("NVIDIA H200", 100, 32362, 143771, 52, 627.40, 700.0),
    ("l40s", "idle"): ("NVIDIA L40S", 100, 0, 46068, 63, 144.97, 350.0),  # sic: 100 % idle
    ("l40s", "load"): ("NVIDIA L40S", 9, 1235, 46068, 54, 110.23, 350.0),
    ("rtx4080", "idle"): ("NVIDIA GeForce RTX 4080 SUPER", 0, 596, 16376, 43, 26.20, 320.0),
    ("rtx4080", "load"): ("NVIDIA GeForce RTX 4080 SUPER", 7, 1474, 16376, 46, 84.24, 320.0),
}

# (pid, process_name, used_memory MiB) from the captures' --query-compute-apps sections.
EXPECTED_APPS = {
    ("h100", "idle"): [],
    ("h100", "load"): [
        (11327, "/root/tools/memhog", 2566),
        (11328, "/root/tools/memhog", 1542),
        (11345, "./gpu_burn", 15690),
    ],
    ("h100-mig", "idle"): [],
    ("h100-mig", "load"): [
        (21180, "/root/tools/memhog", 2296),
        (21181, "/root/tools/memhog", 1272),
        (21198, "./gpu_burn", 7484),
    ],
    ("h200", "idle"): [],
    ("h200", "load"): [
        (10291, "/root/tools/memhog", 2566),
        (10293, "/root/tools/memhog", 1542),
        (10309, "./gpu_burn", 28234),
    ],
    ("l40s", "idle"): [],
    ("l40s", "load"): [(20037, "ffmpeg", 538), (20038, "ffmpeg", 681)],
    # The desktop RTX has its compositor on the GPU even when "idle".
    ("rtx4080", "idle"): [(2165, "/usr/bin/kwin_wayland", 25)],
    ("rtx4080", "load"): [
        (2165, "/usr/bin/kwin_wayland", 25),
        (5022, "ffmpeg", 503),
        (5021, "ffmpeg", 360),
    ],
}

CASES = sorted(EXPECTED)


@pytest.fixture(scope="module")
def bin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fake-smi") / "bin"
    install_fake_smi(path)
    return path


def smi(
    bin_dir: Path,
    *args: str,
    capture: str | None = "h100",
    state: str = "load",
    gpus: int = 1,
    count: int | None = None,
) -> subprocess.CompletedProcess[str]:
    env = fake_smi_env(bin_dir, capture, state=state, gpus=gpus, count=count)
    # Only the stand-in on PATH: it must not need a `python3` there.
    env["PATH"] = str(bin_dir)
    return subprocess.run(
        ["nvidia-smi", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=5,
        check=False,
    )


def rows(stdout: str) -> list[list[str]]:
    return [line.split(", ") for line in stdout.splitlines() if line]


def number(value: str) -> int | float | str:
    if value == NA:
        return value
    return float(value) if "." in value else int(value)


# --------------------------------------------------------------------------- install


def test_capture_files_are_there() -> None:
    assert set(CAPTURE_NAMES) == {name for name, _ in EXPECTED}
    for name in CAPTURE_NAMES:
        assert capture_path(name).is_file()
    assert (capture_path("h100").parent / "LICENSE.nvidia_gpu_exporter").is_file()
    with pytest.raises(ValueError, match="unknown capture"):
        capture_path("a100")


def test_wrapper_uses_this_interpreter(bin_dir: Path) -> None:
    wrapper = bin_dir / "nvidia-smi"
    assert os.access(wrapper, os.X_OK)
    first = wrapper.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith(f"#!{sys.executable}") or first == "#!/bin/sh"


def test_wrapper_for_interpreter_path_with_spaces(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A shebang can't hold such a path: the wrapper falls back to /bin/sh + exec.
    odd = tmp_path / "my python" / "python"
    odd.parent.mkdir()
    odd.symlink_to(sys.executable)
    monkeypatch.setattr(sys, "executable", str(odd))
    wrapper = install_fake_smi(tmp_path / "bin")
    assert wrapper.read_text(encoding="utf-8").startswith("#!/bin/sh\n")
    result = smi(tmp_path / "bin", "--query-gpu=name", "--format=csv,noheader", capture="h200")
    assert (result.returncode, result.stdout) == (0, "NVIDIA H200\n")


# --------------------------------------------------------------------------- query-gpu


@pytest.mark.parametrize(("name", "state"), CASES)
def test_query_gpu_matches_capture(bin_dir: Path, name: str, state: str) -> None:
    result = smi(bin_dir, *GPU_QUERY, capture=name, state=state)
    assert result.returncode == 0, result.stdout + result.stderr
    [row] = rows(result.stdout)
    assert len(row) == 9
    index, gpu_name, uuid, *numbers = row
    assert (int(index), uuid) == (0, UUID0)
    assert (gpu_name, *map(number, numbers)) == EXPECTED[name, state]


def test_query_gpu_header_keeps_units(bin_dir: Path) -> None:
    fields = "name,memory.total,power.draw,utilization.gpu,temperature.gpu"
    with_units = smi(bin_dir, f"--query-gpu={fields}", "--format=csv")
    assert with_units.stdout.splitlines() == [
        "name, memory.total [MiB], power.draw [W], utilization.gpu [%], temperature.gpu",
        "NVIDIA H100 80GB HBM3, 81559 MiB, 631.95 W, 100 %, 59",
    ]
    no_units = smi(bin_dir, f"--query-gpu={fields}", "--format=csv,nounits")
    assert no_units.stdout.splitlines()[1] == "NVIDIA H100 80GB HBM3, 81559, 631.95, 100, 59"


@pytest.mark.parametrize("fmt", ["csv,noheader", "csv,noheader,nounits"])
def test_mig_not_available_fields_come_through(bin_dir: Path, fmt: str) -> None:
    # With MIG on, whole-GPU utilization and row remapping are not reported.
    fields = "utilization.gpu,utilization.memory,remapped_rows.pending,memory.used,mig.mode.current"
    result = smi(bin_dir, f"--query-gpu={fields}", f"--format={fmt}", capture="h100-mig")
    assert result.returncode == 0
    [row] = rows(result.stdout)
    assert row[:3] == [NA, NA, NA]
    assert row[3] == ("11125" if "nounits" in fmt else "11125 MiB")
    assert row[4] == "Enabled"


def test_query_gpu_aliases(bin_dir: Path) -> None:
    result = smi(bin_dir, "--query-gpu=gpu_name,gpu_uuid,gpu_bus_id", "--format=csv")
    assert result.stdout.splitlines() == [
        "name, uuid, pci.bus_id",
        f"NVIDIA H100 80GB HBM3, {UUID0}, 00000000:00:09.0",
    ]


def test_unknown_field_exits_2(bin_dir: Path) -> None:
    result = smi(bin_dir, "--query-gpu=index,xyz", "--format=csv,noheader")
    assert result.returncode == 2
    assert 'Field "xyz" is not a valid field to query.' in result.stdout


# --------------------------------------------------------------------------- compute-apps


@pytest.mark.parametrize(("name", "state"), CASES)
def test_compute_apps_match_capture(bin_dir: Path, name: str, state: str) -> None:
    result = smi(bin_dir, *APPS_QUERY, capture=name, state=state)
    assert result.returncode == 0, result.stdout + result.stderr
    got = rows(result.stdout)
    assert [(int(pid), proc, int(mem)) for _, _, pid, proc, mem in got] == EXPECTED_APPS[
        name, state
    ]
    assert all(TIMESTAMP.match(r[0]) and r[1] == UUID0 for r in got)
    assert len({r[0] for r in got}) <= 1  # one poll, one timestamp


def test_compute_apps_h100_load_with_header_and_aliases(bin_dir: Path) -> None:
    result = smi(bin_dir, "--query-compute-apps=pid,name,used_gpu_memory", "--format=csv")
    assert result.stdout.splitlines() == [
        "pid, process_name, used_gpu_memory [MiB]",
        "11327, /root/tools/memhog, 2566 MiB",
        "11328, /root/tools/memhog, 1542 MiB",
        "11345, ./gpu_burn, 15690 MiB",
    ]


def test_compute_apps_idle_prints_nothing(bin_dir: Path) -> None:
    result = smi(bin_dir, *APPS_QUERY, state="idle")
    assert (result.returncode, result.stdout) == (0, "")


# --------------------------------------------------------------------------- loops


def test_loop_ms_with_count_prints_that_many_polls(bin_dir: Path) -> None:
    fields = "timestamp,index,uuid"
    start = time.monotonic()
    result = smi(
        bin_dir,
        f"--query-gpu={fields}",
        "--format=csv,noheader,nounits",
        "-lms",
        "50",
        gpus=2,
        count=3,
    )
    elapsed = time.monotonic() - start
    assert result.returncode == 0
    got = rows(result.stdout)
    assert [r[1] for r in got] == ["0", "1"] * 3
    stamps = [r[0] for r in got]
    assert all(TIMESTAMP.match(s) for s in stamps)
    # One fresh timestamp per poll, shared by that poll's rows.
    assert stamps[0] == stamps[1] and stamps[2] == stamps[3] and stamps[4] == stamps[5]
    assert len(set(stamps)) == 3
    assert elapsed >= 0.09  # it did sleep between polls


def test_loop_prints_header_once(bin_dir: Path) -> None:
    result = smi(bin_dir, "--query-gpu=index,power.draw", "--format=csv", "--loop-ms=20", count=3)
    assert result.stdout.splitlines() == ["index, power.draw [W]"] + ["0, 631.95 W"] * 3


def test_compute_apps_loop(bin_dir: Path) -> None:
    result = smi(bin_dir, *APPS_QUERY, "-lms", "30", count=3)
    got = rows(result.stdout)
    assert [int(r[2]) for r in got] == [11327, 11328, 11345] * 3
    assert len({r[0] for r in got}) == 3


def test_stops_quietly_when_reader_goes_away(bin_dir: Path) -> None:
    env = fake_smi_env(bin_dir, "h100")  # no COUNT: loops forever
    env["PATH"] = str(bin_dir)
    proc = subprocess.Popen(
        ["nvidia-smi", *GPU_QUERY, "-lms", "10"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert proc.stdout is not None and proc.stderr is not None
        assert proc.stdout.readline().startswith(b"0, NVIDIA H100 80GB HBM3, ")
        proc.stdout.close()
        assert proc.wait(timeout=2) != 0  # killed by SIGPIPE on its next write
        assert b"Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


# --------------------------------------------------------------------------- many GPUs


def test_eight_gpus(bin_dir: Path) -> None:
    result = smi(
        bin_dir,
        "--query-gpu=index,uuid,pci.bus_id,memory.total,count",
        "--format=csv,noheader,nounits",
        gpus=8,
    )
    got = rows(result.stdout)
    assert [int(r[0]) for r in got] == list(range(8))
    assert len({r[1] for r in got}) == 8
    assert len({r[2] for r in got}) == 8
    assert got[0][1] == UUID0  # GPU 0 keeps the captured identity ...
    assert all(r[3] == "81559" and r[4] == "8" for r in got)
    # ... and keeps all the processes.
    apps = rows(smi(bin_dir, *APPS_QUERY, gpus=8).stdout)
    assert [r[1] for r in apps] == [UUID0] * 3


def test_select_gpu_by_index(bin_dir: Path) -> None:
    result = smi(bin_dir, "-i", "3", "--query-gpu=index", "--format=csv,noheader", gpus=8)
    assert result.stdout == "3\n"
    missing = smi(bin_dir, "-i", "9", "--query-gpu=index", "--format=csv,noheader", gpus=8)
    assert missing.returncode == 6


# --------------------------------------------------------------------------- plain sections


def test_list_version_and_table(bin_dir: Path) -> None:
    listing = smi(bin_dir, "-L", capture="h100-mig")
    assert listing.stdout.splitlines()[0] == f"GPU 0: NVIDIA H100 80GB HBM3 (UUID: {UUID0})"
    assert "MIG 3g.40gb" in listing.stdout
    assert smi(bin_dir, "-L", gpus=2).stdout.splitlines()[1].startswith("GPU 1: NVIDIA H100")
    version = smi(bin_dir, "--version", capture="l40s")
    assert "DRIVER version      : 595.80" in version.stdout
    table = smi(bin_dir, state="idle")
    assert "Driver Version: 590.48.01" in table.stdout
    assert "No running processes found" in table.stdout


# --------------------------------------------------------------------------- failures


def test_no_driver_exits_9(bin_dir: Path) -> None:
    result = smi(bin_dir, *GPU_QUERY, capture=None)
    assert result.returncode == 9
    assert result.stdout.strip() == DRIVER_FAILURE


@pytest.mark.parametrize(
    "args",
    [
        ["--bogus"],
        ["--query-gpu=index"],  # no --format
        ["--query-gpu=index", "--format=xml"],
        ["--query-gpu=index", "--format=csv", "-lms", "soon"],
    ],
)
def test_usage_errors_exit_2(bin_dir: Path, args: list[str]) -> None:
    result = smi(bin_dir, *args)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_bad_state_exits_2(bin_dir: Path) -> None:
    assert smi(bin_dir, *GPU_QUERY, state="busy").returncode == 2
