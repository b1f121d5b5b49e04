"""Host CPU per sample of the streaming agent with every health field on, against the
agent without them (today's agent), in the same run.

Both agents are the real ``nomadlab/hostside/agent`` package run as processes on
this machine (``python3 -m nomadlab.hostside.agent --interval I`` and ``...
--no-health``), each against the stand-in libnvidia-ml.so.1 (tests/standins) with the
8 x H100 data of the test suite (tests/data/nvml/h100x8.conf), started together and
read together, so that both see the same machine load. CPU is the agent process's own
(every thread, the XID event thread included): /proc/PID/task/*/schedstat run time, in
ns, between the first and the last sample of the window, divided by the samples it
wrote in that window.

Health fields read: clock event reasons and the SM clock every sample; the current
PCIe link every sample while the GPU works and the last reading is below its maximum;
every 30th sample (what changes slowly): maximum clocks, memory clock, PCIe maxima and
current link, ECC mode and counts, remapped rows (retired pages before Ampere), NVLink
state of the links the GPU has, persistence and compute mode, total energy, MIG mode.
What the GPU does not support (NotSupported / FunctionNotFound) is not asked again.
XIDs arrive through an NVML event set waited on in a thread (the stand-in sleeps in
poll() on an inotify watch of its data file's directory, as a real driver's wait sleeps
in the kernel).

Target: at most 1.5x the CPU per sample of the agent without health fields.

Run: ``python benchmarks/agent_health_cpu.py [--seconds 20] [--interval 0.1]``.
"""

from __future__ import annotations

import argparse
import os
import select
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import cpu_ns, header  # noqa: E402
from standins.nvml import build_fake_nvml  # noqa: E402

AGENT = ["-m", "nomadlab.hostside.agent"]  # the real agent package, as a program
DATA = ROOT / "tests" / "data" / "nvml" / "h100x8.conf"


def start(lib: Path, interval: float, health: bool) -> subprocess.Popen[bytes]:
    env = dict(os.environ, LD_LIBRARY_PATH=str(lib), NOMADLAB_FAKE_NVML=str(DATA))
    args = [sys.executable, *AGENT, "--interval", str(interval)]
    if not health:
        args.append("--no-health")
    return subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env,
                            cwd=ROOT)  # ROOT: for ``-m nomadlab...``


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="measurement window")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--interval", type=float, default=0.1, help="agent interval (s)")
    args = parser.parse_args()
    header("agent host CPU per sample: health fields on vs off", sys.argv)
    with tempfile.TemporaryDirectory() as tmp:
        lib = build_fake_nvml(Path(tmp) / "lib")
        agents = {"without health": start(lib, args.interval, False),
                  "with health": start(lib, args.interval, True)}
        lines = dict.fromkeys(agents, 0)
        marks: dict[str, tuple[int, int]] = {}
        ends: dict[str, tuple[int, int]] = {}
        by_fd = {p.stdout.fileno(): name for name, p in agents.items() if p.stdout}
        started = time.monotonic()
        t_end = started + args.warmup + args.seconds
        sizes = dict.fromkeys(agents, 0)
        try:
            while time.monotonic() < t_end:
                ready, _, _ = select.select(list(by_fd), [], [], 1.0)
                for fd in ready:
                    name = by_fd[fd]
                    proc = agents[name]
                    assert proc.stdout is not None
                    line = proc.stdout.readline()
                    if not line:
                        raise SystemExit(f"{name}: the agent ended")
                    if b'"sample"' not in line:
                        continue
                    lines[name] += 1
                    past_warmup = time.monotonic() - started >= args.warmup
                    if past_warmup and name not in marks:
                        marks[name] = (lines[name], cpu_ns(proc.pid))
                    elif name in marks:
                        ends[name] = (lines[name], cpu_ns(proc.pid))
                        sizes[name] = len(line)
                    if proc.stdin is not None and lines[name] % 10 == 0:
                        proc.stdin.write(b"hb\n")  # heartbeat: the agent keeps going
                        proc.stdin.flush()
        finally:
            for proc in agents.values():
                proc.kill()
                proc.wait()
    print(f"interval {args.interval} s, window {args.seconds:.0f} s, 8 stand-in H100s\n")
    per: dict[str, float] = {}
    for name in agents:
        (n0, c0), (n1, c1) = marks[name], ends[name]
        samples = n1 - n0
        per[name] = (c1 - c0) / samples / 1e6
        print(f"{name:>15}: {samples:5d} samples, {per[name]:.3f} ms CPU per sample,"
              f" {sizes[name]} bytes per sample line")
    ratio = per["with health"] / per["without health"]
    print(f"\nratio with/without: {ratio:.2f}x (target <= 1.5x): "
          f"{'OK' if ratio <= 1.5 else 'OVER'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
