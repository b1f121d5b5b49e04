"""Hostile hosts: programs that stand in for a host's python3 and flood the client.

``install(directory, mode)`` writes an executable to use as a host's ``python``
(:attr:`HostConfig.python`): nomadlab's real bootstrap command runs it through the real
sshd, and it answers with one of these floods:

- ``huge-frame``: the tail agent announces a frame of 10^12 bytes and sends data
  without end;
- ``no-window``: the tail agent sends valid frames of short lines without end and
  never waits for the client's acknowledgements (the flow window is ignored);
- ``sample-flood``: the sampling agent sends samples as fast as it can.

In the tail modes the sampling agent is the real one (the host stays live); in
``sample-flood`` the tail agent is never asked for. Each flood counts what it sent
into ``COUNTER`` (a file: one number) so a test can wait until the flood is under way.

Run as ``hostile.py MODE COUNTER -u -c BOOT`` (the arguments after COUNTER are those
of the bootstrap command, ignored).
"""

from __future__ import annotations

import json
import os
import sys
import time
import zlib
from pathlib import Path

MODES = ("huge-frame", "no-window", "sample-flood")


def install(directory: Path, mode: str) -> tuple[str, Path]:
    """An executable standing in for python3 in ``mode``, and its counter file."""
    assert mode in MODES, mode
    directory.mkdir(parents=True, exist_ok=True)
    counter = directory / f"{mode}.count"
    counter.write_text("0")
    script = directory / f"python3-{mode}"
    script.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__).resolve()}" '
                      f'{mode} "{counter}" "$@"\n')
    script.chmod(0o755)
    return str(script), counter


def sent(counter: Path) -> int:
    try:
        return int(counter.read_text() or 0)
    except (OSError, ValueError):
        return 0


def _count(counter: str, value: int) -> None:
    tmp = counter + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(value))
    os.replace(tmp, counter)


def _read_bundle() -> dict[str, object]:
    stdin = sys.stdin.buffer
    size = int(stdin.readline())
    bundle = json.loads(zlib.decompress(stdin.read(size)).decode("utf-8"))
    assert isinstance(bundle, dict)
    return bundle


def _real_agent(bundle: dict[str, object]) -> None:
    """What the real bootstrap does once it has read the bundle (its RUN part)."""
    from nomadlab.remote.bootstrap import RUN

    assert isinstance(bundle["agent"], str)
    exec(compile(RUN, "nomadlab_boot.py", "exec"), {"b": bundle, "sys": sys})


def _event(event: dict[str, object]) -> bytes:
    return b"E " + json.dumps(event, separators=(",", ":")).encode() + b"\n"


def _huge_frame(counter: str) -> None:
    out = sys.stdout.buffer
    out.write(_event({"e": "hello", "v": 1, "pid": os.getpid(), "python": "3.11"}))
    out.write(b"D 1000000000000 1000000000000 -\n")
    block = b"x" * (1 << 16)
    total = 0
    while True:
        out.write(block)
        out.flush()
        total += len(block)
        if total % (1 << 22) == 0:
            _count(counter, total)


def _no_window(counter: str) -> None:
    out = sys.stdout.buffer
    out.write(_event({"e": "hello", "v": 1, "pid": os.getpid(), "python": "3.11"}))
    out.write(_event({"e": "file", "path": "/flood.log", "dev": 1, "ino": 1, "size": 0,
                           "offset": 0, "how": "start"}))
    payload = b"x\n" * (1 << 15)  # short lines: cheap to send, costly to take in
    end = 0
    total = 0
    while True:
        end += len(payload)
        out.write(b"D %d %d -\n" % (end, len(payload)))
        out.write(payload)
        out.flush()
        total += len(payload)
        if total % (1 << 22) == 0:
            _count(counter, total)


def _sample_flood(counter: str) -> None:
    out = sys.stdout.buffer
    hello = {"type": "hello", "agent": 1, "python": "3.11.0", "hostname": "flooder",
             "source": "nvml", "driver": "590.48.01",
             "gpus": [{"i": 0, "name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-0"}],
             "reason": None}
    out.write(json.dumps(hello).encode() + b"\n")
    count = 0
    while True:
        sample = {"type": "sample", "t": round(time.time(), 3), "cpu": float(count % 100),
                  "ram_used": 1024.0, "ram_total": 4096.0, "load1": 0.5,
                  "gpus": [{"i": 0, "util": 50, "mu": 100.0, "mt": 81559.0, "temp": 40,
                            "pw": 100.0, "pl": 700.0,
                            "procs": [[4242, "mallory", "python flood.py", 100.0]]}]}
        out.write(json.dumps(sample).encode() + b"\n")
        count += 1
        if count % 500 == 0:
            out.flush()
            _count(counter, count)


def main(argv: list[str]) -> None:
    mode, counter = argv[1], argv[2]
    bundle = _read_bundle()
    args = bundle.get("args")
    is_tail = isinstance(args, dict) and "path" in args
    try:
        if is_tail and mode == "huge-frame":
            _huge_frame(counter)
        elif is_tail and mode == "no-window":
            _no_window(counter)
        elif not is_tail and mode == "sample-flood":
            _sample_flood(counter)
        else:
            _real_agent(bundle)
    except (BrokenPipeError, OSError):
        pass  # the client closed the channel: what it should do


if __name__ == "__main__":
    main(sys.argv)
