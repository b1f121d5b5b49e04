"""Install the replaying ``nvidia-smi`` stand-in and find its captures.

    bin_dir = tmp_path / "bin"
    install_fake_smi(bin_dir)
    env = fake_smi_env(bin_dir, "h100", state="load", gpus=8)
    subprocess.run(["nvidia-smi", "--query-gpu=...", ...], env=env)

The environment variables are documented in ``fake_nvidia_smi.py``.
"""

from __future__ import annotations

import os
import shlex
import stat
import sys
from pathlib import Path

STANDIN = Path(__file__).resolve().with_name("fake_nvidia_smi.py")
DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "nvidia-smi"

CAPTURES = {
    "h100": "linux-x86_64__nvidia-h100-80gb-hbm3__590.48.01.txt",
    "h100-mig": "linux-x86_64__nvidia-h100-mig__590.48.01.txt",
    "h200": "linux-x86_64__nvidia-h200__590.48.01.txt",
    "l40s": "linux-x86_64__nvidia-l40s__595.80.txt",
    "rtx4080": "linux-x86_64__nvidia-geforce-rtx-4080-super__595.71.05.txt",
}
CAPTURE_NAMES = tuple(CAPTURES)

ENV_CAPTURE = "NOMADLAB_FAKE_SMI_CAPTURE"
ENV_STATE = "NOMADLAB_FAKE_SMI_STATE"
ENV_GPUS = "NOMADLAB_FAKE_SMI_GPUS"
ENV_COUNT = "NOMADLAB_FAKE_SMI_COUNT"

# Linux cuts a shebang line at 255 bytes (127 before kernel 5.1), and a shebang
# can't quote a path that has spaces. Past either limit, fall back to /bin/sh.
_SHEBANG_MAX = 120


def capture_path(name: str) -> Path:
    """Return the capture file for a short name (``h100``, ``h100-mig``, ``h200``, ``l40s``,
    ``rtx4080``)."""
    try:
        return DATA_DIR / CAPTURES[name]
    except KeyError:
        raise ValueError(
            f"unknown capture {name!r}; expected one of {', '.join(CAPTURE_NAMES)}"
        ) from None


def install_fake_smi(bin_dir: Path) -> Path:
    """Write an executable ``bin_dir/nvidia-smi`` that runs the stand-in, and return its path.

    The wrapper's interpreter is the current one (``sys.executable``), so it works when
    no ``python3`` is on PATH. ``-I -S`` (isolated mode, no site) keeps start-up fast
    and keeps the caller's PYTHON* variables out of it.
    """
    bin_dir = Path(bin_dir)
    bin_dir.mkdir(parents=True, exist_ok=True)
    exe = sys.executable
    target = bin_dir / "nvidia-smi"
    if exe and len(exe) <= _SHEBANG_MAX and not any(c.isspace() for c in exe):
        text = (
            f"#!{exe} -IS\n"
            "# nomadlab test stand-in for nvidia-smi; see tests/standins/fake_nvidia_smi.py\n"
            "import runpy\n"
            f"runpy.run_path({str(STANDIN)!r}, run_name='__main__')\n"
        )
    else:
        text = (
            "#!/bin/sh\n"
            "# nomadlab test stand-in for nvidia-smi; see tests/standins/fake_nvidia_smi.py\n"
            f'exec {shlex.quote(exe)} -IS {shlex.quote(str(STANDIN))} "$@"\n'
        )
    target.write_text(text, encoding="utf-8")
    mode = target.stat().st_mode
    target.chmod(mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    return target


def fake_smi_env(
    bin_dir: Path | None,
    capture: str | Path | None,
    *,
    state: str = "load",
    gpus: int = 1,
    count: int | None = None,
    base: dict[str, str] | None = None,
) -> dict[str, str]:
    """Return an environment for the stand-in.

    ``capture`` is a short name, a path, or None (None means a host without a driver).
    ``bin_dir`` goes in front of PATH.
    """
    env = dict(os.environ if base is None else base)
    for key in (ENV_CAPTURE, ENV_STATE, ENV_GPUS, ENV_COUNT):
        env.pop(key, None)
    if capture is not None:
        path = capture_path(capture) if capture in CAPTURES else Path(capture)
        env[ENV_CAPTURE] = str(path)
    env[ENV_STATE] = state
    env[ENV_GPUS] = str(gpus)
    if count is not None:
        env[ENV_COUNT] = str(count)
    if bin_dir is not None:
        env["PATH"] = os.pathsep.join(p for p in (str(bin_dir), env.get("PATH", "")) if p)
    return env
