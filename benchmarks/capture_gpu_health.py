"""On a machine with a real NVIDIA GPU: capture what the agent's health fields read from
its driver, to keep as a test fixture (no GPU here: nothing to run).

Writes into OUT_DIR (default ``$OUT`` or ``./gpu-health-capture``):

- ``agent-once.jsonl``: ``python -m nomadlab.hostside.agent --once`` through the
  installed NVML binding (hello and one sample with every GPU's ``h`` dict), plus the
  same with ``--no-health``;
- ``agent-xid-wait.txt``: whether an NVML event set for XID errors could be created
  and registered on each GPU (no root needed), and what a 1 s wait returned;
- ``nvidia-smi-health.csv``: the agent's nvidia-smi fallback query, with a header;
- ``nvidia-smi-q.txt``: ``nvidia-smi -q`` for the humans comparing.

Run: ``python benchmarks/capture_gpu_health.py [OUT_DIR]`` (about 10 s).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nomadlab.hostside import agent  # noqa: E402

AGENT = ["-m", "nomadlab.hostside.agent"]  # the real agent package, as a program


def run(args: list[str], timeout: float = 60.0) -> str:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout,
                              check=False, cwd=ROOT)  # ROOT: for ``-m nomadlab...``
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"# {' '.join(args)}: {exc}\n"
    return done.stdout + (f"# stderr: {done.stderr}" if done.stderr.strip() else "")


def xid_probe() -> str:
    try:
        import pynvml
    except ImportError as exc:
        return f"no NVML binding: {exc}\n"
    lines = []
    try:
        pynvml.nvmlInit()
        event_set = pynvml.nvmlEventSetCreate()
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            try:
                pynvml.nvmlDeviceRegisterEvents(handle, agent.XID_EVENT, event_set)
                lines.append(f"GPU {i}: XID events registered")
            except pynvml.NVMLError as exc:
                lines.append(f"GPU {i}: register failed: {exc!r}")
        try:
            data = pynvml.nvmlEventSetWait_v2(event_set, 1000)
            lines.append(f"wait: event type {data.eventType:#x} data {data.eventData}")
        except pynvml.NVMLError as exc:
            lines.append(f"wait: {type(exc).__name__}")
        pynvml.nvmlEventSetFree(event_set)
        pynvml.nvmlShutdown()
    except pynvml.NVMLError as exc:
        lines.append(f"NVML: {exc!r}")
    return "\n".join(lines) + "\n"


def main() -> int:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else os.environ.get("OUT", "gpu-health-capture"))
    out.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    (out / "agent-once.jsonl").write_text(
        run([py, *AGENT, "--once"]) + run([py, *AGENT, "--once", "--no-health"]))
    (out / "agent-xid-wait.txt").write_text(xid_probe())
    fields = ",".join(agent.SMI_HEALTH_FIELDS)
    (out / "nvidia-smi-health.csv").write_text(
        run(["nvidia-smi", f"--query-gpu={fields}", "--format=csv"]))
    (out / "nvidia-smi-q.txt").write_text(run(["nvidia-smi", "-q"]))
    for path in sorted(out.iterdir()):
        print(path, path.stat().st_size, "bytes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
