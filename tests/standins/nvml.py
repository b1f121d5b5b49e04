"""Helpers for the stand-in NVML library (tests/standins/fake_nvml.c).

``build_fake_nvml(dir)`` compiles ``fake_nvml.c`` into ``dir/libnvidia-ml.so.1``.
A process started with ``LD_LIBRARY_PATH=dir`` and ``NOMADLAB_FAKE_NVML=<data file>``
then gets that library from ``pynvml`` (``CDLL("libnvidia-ml.so.1")``); the dynamic
loader reads LD_LIBRARY_PATH only at process start, so use a subprocess.

Data file (``write_gpu_file`` writes it), line based; ``#`` starts a comment that runs
to the end of the line; ``key=value`` where the value is everything after the first
``=``, trimmed; unknown keys and sections are ignored::

    driver=590.48.01       # nvmlSystemGetDriverVersion
    cuda=13010             # nvmlSystemGetCudaDriverVersion{,_v2}
    wave=0                 # 1: util/memutil/temp/power of busy GPUs move with time
    fail_init=0            # nonzero: nvmlInit* returns this nvmlReturn_t
    nvml_version=...       # optional; default "<cuda//1000>.<driver>"
    [gpu]                  # one section per GPU, index = order in the file (max 64)
    name=NVIDIA H100 80GB HBM3
    uuid=GPU-00000000-0000-0000-0000-000000000000
    util=100               # %
    memutil=10             # %
    mem_total_mib=81559
    mem_used_mib=19798
    mem_reserved_mib=0     # optional; reported by nvmlDeviceGetMemoryInfo_v2
    temp=63                # C
    power_mw=631000
    limit_mw=700000        # enforced / management / default power limit
    fan=0                  # %, or "na" for NOT_SUPPORTED
    pstate=0
    bus_id=00000000:00:09.0
    fail=0                 # optional; nonzero: every query on this GPU returns it
    [proc]                 # one section per compute process (max 1024)
    gpu=0
    pid=11345
    mem_mib=15690
    name=./gpu_burn        # optional; nvmlSystemGetProcessName

Optional GPU keys with H100 defaults: clock_sm_mhz, clock_mem_mhz (0 = derived),
max_clock_sm_mhz (1980), max_clock_mem_mhz (2619), pci_device_id (0x233010DE),
pci_subsys_id (0x16C110DE), pcie_gen (5), pcie_width (16), cc_major (9), cc_minor (0),
arch (9 = Hopper), brand (14 = NVIDIA).

Health keys of a ``[gpu]`` (defaults in brackets): throttle (nvmlClocksEventReasons bit
mask; [0]: GPU idle (0x1) when util is 0), max_pcie_gen / max_pcie_width ([0] = the
current ones), ecc_mode ([1], "na" = not supported), ecc_volatile_corrected,
ecc_volatile_uncorrected, ecc_aggregate_corrected, ecc_aggregate_uncorrected ([0]),
remap ([1], "na": nvmlDeviceGetRemappedRows not supported), remap_corrected,
remap_uncorrected, remap_pending, remap_failure ([0]), nvlinks (number of links [0]),
nvlink_down (bit mask of links down [0]), persistence ([1]), compute_mode ([0]),
energy_mj (nvmlDeviceGetTotalEnergyConsumption [0], "na"), mig (MIG mode [0], "na").

``[xid]`` sections (``gpu=``, ``code=``) are XID critical errors: an event set
(nvmlEventSetCreate + nvmlDeviceRegisterEvents) delivers each one appended after the
set was created, once, from nvmlEventSetWait_v2 (which sleeps until the file's
directory changes, through inotify, or its timeout). ``[mig]`` sections (``gpu=``
parent index, ``gi=`` GPU instance id, ``profile=`` e.g. 3g.40gb, ``mem_total_mib``,
``mem_used_mib``) are MIG devices of a GPU with ``mig=1``; a ``[proc]`` with
``mig=<n>`` runs in the n-th ``[mig]``.

The library re-reads the file on every nvmlInit* call, and on any call when the
file's inode, size, mtime or ctime changed (``write_gpu_file`` replaces the file
atomically, so a rewrite always shows up as a new inode).

``wave=1``: for a GPU with util > 0, at time t (CLOCK_REALTIME seconds, or the float
in env ``NOMADLAB_FAKE_NVML_TIME`` when set), see ``wave_values``.
"""

from __future__ import annotations

import math
import os
import pathlib
import subprocess
import tempfile
from collections.abc import Mapping
from typing import Any

SOURCE = pathlib.Path(__file__).with_name("fake_nvml.c")
LIBRARY_NAME = "libnvidia-ml.so.1"
ENV_DATA = "NOMADLAB_FAKE_NVML"
ENV_TIME = "NOMADLAB_FAKE_NVML_TIME"


def build_fake_nvml(out_dir: pathlib.Path) -> pathlib.Path:
    """Compile fake_nvml.c into ``out_dir/libnvidia-ml.so.1``; return ``out_dir``."""
    out_dir = pathlib.Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "gcc",
            "-shared",
            "-fPIC",
            "-O2",
            "-o",
            str(out_dir / LIBRARY_NAME),
            str(SOURCE),
            "-lm",
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return out_dir


def _format_value(key: str, value: Any) -> str:
    text = ("1" if value else "0") if isinstance(value, bool) else str(value)
    if "\n" in text or "\r" in text or "#" in text:
        raise ValueError(f"value for {key!r} cannot contain a newline or '#': {text!r}")
    return text


def _section(lines: list[str], header: str, fields: Mapping[str, Any]) -> None:
    lines.append(header)
    for key, value in fields.items():
        if value is None:
            continue
        lines.append(f"{key}={_format_value(key, value)}")


def write_gpu_file(
    path: os.PathLike[str] | str,
    gpus: list[dict[str, Any]],
    *,
    driver: str = "590.48.01",
    cuda: int = 13010,
    wave: bool | int = False,
    fail_init: int | None = None,
    procs: list[dict[str, Any]] = [],  # noqa: B006 - never mutated
    xids: list[dict[str, Any]] = [],  # noqa: B006 - never mutated
    migs: list[dict[str, Any]] = [],  # noqa: B006 - never mutated
) -> None:
    """Write a data file for the stand-in library (atomically: temp file + rename).

    ``gpus`` are dicts of ``[gpu]`` keys (``name``, ``uuid``, ``util``, ...);
    ``procs`` are dicts of ``[proc]`` keys (``gpu``, ``pid``, ``mem_mib``, ``name``).
    """
    path = pathlib.Path(path)
    lines = [
        "# nomadlab stand-in NVML data (tests/standins/nvml.py)",
        f"driver={_format_value('driver', driver)}",
        f"cuda={int(cuda)}",
        f"wave={int(bool(wave))}",
    ]
    if fail_init is not None:
        lines.append(f"fail_init={int(fail_init)}")
    for gpu in gpus:
        _section(lines, "[gpu]", gpu)
    for proc in procs:
        _section(lines, "[proc]", proc)
    for xid in xids:
        _section(lines, "[xid]", xid)
    for mig in migs:
        _section(lines, "[mig]", mig)
    data = "\n".join(lines) + "\n"
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _round(x: float) -> int:
    return math.floor(x + 0.5)


def wave_values(gpu: Mapping[str, Any], index: int, t: float) -> dict[str, int]:
    """Values the library reports with ``wave=1`` for ``gpu`` (GPU ``index``) at time ``t``.

    Mirrors ``live_values`` in fake_nvml.c: for a GPU with util > 0,
    ``f = 0.75 + 0.25*sin(2*pi*t/13 + index)``; util and memutil scale by f (0..100),
    temp by ``0.8 + 0.2*f``, power by ``0.6 + 0.4*f``; idle GPUs stay constant.
    """
    util = max(int(gpu.get("util", 0)), 0)
    memutil = max(int(gpu.get("memutil", 0)), 0)
    temp = max(int(gpu.get("temp", 30)), 0)
    power = int(gpu.get("power_mw", 69000))
    if util == 0:
        return {"util": 0, "memutil": min(memutil, 100), "temp": temp, "power_mw": power}
    f = 0.75 + 0.25 * math.sin(2.0 * math.pi * t / 13.0 + float(index))
    return {
        "util": max(0, min(100, _round(util * f))),
        "memutil": max(0, min(100, _round(memutil * f))),
        "temp": max(0, _round(temp * (0.8 + 0.2 * f))),
        "power_mw": max(0, _round(power * (0.6 + 0.4 * f))),
    }
