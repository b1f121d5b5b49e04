"""Agent CPU per sample with the process details of issue 11 on, against without.

The agent's own sampling code runs in a child process with the stand-in
libnvidia-ml.so.1 (tests/standins, 8 H100s) loaded through the nvidia-ml-py binding,
exactly as on a host. Every GPU gets ``--procs`` real processes (sleeping python
children of the benchmark, so /proc has them: stat, status, cgroup, and a parent
chain up to init). In one run, alternating rounds of ``--samples`` samples each:

- off: ``sample_message`` (what the agent sent before: NVML, /proc names, host stats);
- on: the same plus ``add_process_details``: CPU %, RSS, run time from one read of
  /proc/PID/stat per process; parent chain and container (/proc/PID/cgroup) when a
  process is first seen and every 30 s after (steady state: not in a sample); no
  docker CLI on this machine, so no ``docker ps``.

Both include encoding the sample line (JSON), as the agent does.

CPU is the child's ``time.process_time()`` (user + system of the sampling thread's
process) per sample; the ratio on/off is the figure. Target: at most 1.5x.

Run: ``python benchmarks/process_details.py [--quick]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common

TARGET_RATIO = 1.5

CHILD = r"""
import json, sys, time
from nomadlab.hostside import agent
import pynvml
gpus = agent.NvmlGpus(pynvml)
host = agent.HostStats()
details = agent.ProcessDetails(docker=agent.DockerNames(command=""))
samples, rounds = int(sys.argv[1]), int(sys.argv[2])
off, on = [], []
count = None
for _ in range(rounds):
    for mode in ("off", "on"):
        start = time.process_time()
        for _ in range(samples):
            msg = agent.sample_message(gpus, host)
            if mode == "on":
                agent.add_process_details(msg, details)
            agent.encode(msg)
        used = (time.process_time() - start) / samples
        (on if mode == "on" else off).append(used)
        if mode == "on":
            count = len(msg["pinfo"])
            size = len(agent.encode(msg))
        else:
            size_off = len(agent.encode(msg))
first = agent.ProcessDetails(docker=agent.DockerNames(command=""))
first_msg = agent.add_process_details(agent.sample_message(gpus, host), first)
print(json.dumps({"first_bytes": len(agent.encode(first_msg)), "off": off, "on": on,
                  "procs": count, "bytes_on": size, "bytes_off": size_off}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--procs", type=int, default=2, help="processes per GPU")
    args = parser.parse_args()
    _common.header("process details: agent CPU per sample, details on vs off", sys.argv)
    sys.path.insert(0, str(_common.TESTS))
    from standins.nvml import build_fake_nvml

    samples, rounds = (50, 4) if args.quick else (200, 10)
    work = Path(tempfile.mkdtemp(prefix="nomadlab-bench-"))
    lib = build_fake_nvml(work)
    conf = work / "nvml.conf"
    text = (_common.TESTS / "data" / "nvml" / "h100x8.conf").read_text()
    text = text.replace("[proc]", "[oldproc]")  # only our processes below
    head, _, _ = text.partition("[oldproc]")
    children = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
                for _ in range(8 * args.procs)]
    try:
        procs = "".join(f"\n[proc]\ngpu={i % 8}\npid={child.pid}\nmem_mib=1024\n"
                        for i, child in enumerate(children))
        conf.write_text(head + procs)
        env = dict(os.environ, LD_LIBRARY_PATH=str(lib), NOMADLAB_FAKE_NVML=str(conf))
        out = subprocess.run([sys.executable, "-c", CHILD, str(samples), str(rounds)],
                             env=env, capture_output=True, text=True, check=True,
                             timeout=600).stdout
    finally:
        for child in children:
            child.kill()
            child.wait()
    result = json.loads(out.strip().splitlines()[-1])
    off = statistics.median(result["off"]) * 1e3
    on = statistics.median(result["on"]) * 1e3
    ratio = on / off if off else float("inf")
    print(f"GPUs 8, processes {result['procs']} ({args.procs} per GPU), "
          f"{samples} samples x {rounds} rounds each way, alternating")
    print(f"CPU per sample, details off: {off:.3f} ms (median of rounds)")
    print(f"CPU per sample, details on:  {on:.3f} ms")
    print(f"bytes per sample line: off {result['bytes_off']}, on {result['bytes_on']} "
          f"(first sample, with parents and containers: {result['first_bytes']})")
    if result["procs"]:
        print(f"details cost per process per sample: {(on - off) * 1e3 / result['procs']:.1f} us")
    verdict = "met" if ratio <= TARGET_RATIO else "MISSED"
    print(f"ratio on/off: {ratio:.2f}x (target <= {TARGET_RATIO}x): {verdict}")


if __name__ == "__main__":
    main()
