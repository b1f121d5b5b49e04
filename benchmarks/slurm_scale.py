"""Slurm at scale: 2,000 jobs in the queue of one cluster.

The login node is a real OpenSSH sshd on 127.0.0.1 (tests/sshd.py) whose ``squeue``
and ``sinfo`` are stand-ins printing a generated ``squeue --json`` of 2,000 jobs (the
shape of Slurm 23.11, tests/data/slurm/squeue-23.11.json, repeated with new ids,
users and states) and the recorded 23.11 ``sinfo --json``. Each stand-in call appends
a line to a counter file, so the figure "commands per refresh" is what the login
node really ran.

Measured:

- commands per refresh, and CPU on the login node per refresh: every process under
  the sshd (its session processes, the shell, ``timeout``, the stand-in), summed
  from /proc over ``--polls`` refreshes. The stand-in costs less than a real squeue
  (which asks the controller and serialises the JSON itself); the figure is the cost
  of our side of it: the SSH session and the command start.
- client CPU per refresh (parse, filter, events: ``time.process_time`` around
  ``ClusterClient.poll``) and as a share of one core at the default refresh (15 s),
  peak RSS of the client process;
- poll -> painted frame: the Jobs screen (headless, 160x48) showing the 2,000 jobs,
  from a poll's snapshot handed to the jobs service to the next frame painted;
- keypress p99: ``down`` pressed ``--keys`` times on the Jobs screen, from the key to
  the next frame painted.

Targets (issue 12): at most one controller RPC per refresh, under 5 % of a client core
at the default refresh, keypress p99 under 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import stat
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

sys.path.insert(0, str(_common.TESTS))
from sshd import SshServer

from nomadlab.core.config import ClusterConfig, HostConfig, load_config_text
from nomadlab.remote.slurm import SINFO_EVERY, make_clients
from nomadlab.remote.ssh import Connector

DATA = _common.TESTS / "data" / "slurm"
STATES = ["RUNNING"] * 6 + ["PENDING"] * 3 + ["COMPLETED"]


def generate(count: int, user: str) -> str:
    recorded = json.loads((DATA / "squeue-23.11.json").read_text())
    template = recorded["jobs"][0]
    jobs = []
    for i in range(count):
        job = json.loads(json.dumps(template))
        job["job_id"] = 5_000_000 + i
        job["name"] = f"sweep-{i % 97}-lr{i % 7}"
        job["user_name"] = user if i % 4 == 0 else f"user{i % 50}"
        job["job_state"] = [STATES[i % len(STATES)]]
        job["state_reason"] = "Priority" if STATES[i % len(STATES)] == "PENDING" else "None"
        job["nodes"] = f"della-l{i % 40:02d}g{i % 4}"
        jobs.append(job)
    recorded["jobs"] = jobs
    return json.dumps(recorded, indent=2)


def install_standins(directory: Path, queue: Path, counter: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    sinfo = DATA / "sinfo-23.11.json"
    for name, body in (("squeue", f"cat {queue}"), ("sinfo", f"cat {sinfo}")):
        path = directory / name
        path.write_text(f"#!/bin/sh\necho {name} >> {counter}\n{body}\n")
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


async def measure_polls(server: SshServer, base: Path, polls: int, counter: Path
                        ) -> tuple[dict[str, Any], Any]:
    config = load_config_text(f'data_dir = "{base / "data"}"\nshow_local = false\n')
    server.write_known_hosts(base / "known_hosts")
    config.hosts = [HostConfig("login", "127.0.0.1", port=server.port, user=server.user,
                               identity_file=str(server.client_key),
                               known_hosts=str(base / "known_hosts"))]
    config.clusters = [ClusterConfig("della", "login")]
    connector = Connector(config.ssh, config.hosts)
    (client,) = make_clients(config, connector)
    await client.poll()  # connect, learn the user
    assert server.proc is not None
    counter.write_text("")
    login_before = _common.tree_ticks(server.proc.pid)
    cpu = []
    snap = None
    for _ in range(polls):
        started = time.process_time()
        snap, _events = await client.poll()
        cpu.append(time.process_time() - started)
    login_after = _common.tree_ticks(server.proc.pid)
    commands = len(counter.read_text().splitlines())
    await client.runner.close()
    await connector.close()
    assert snap is not None and snap.ok, snap.error if snap else "no poll"
    return {
        "jobs_in_queue": len(client.all_jobs),
        "jobs_mine": len(snap.jobs),
        "commands_per_refresh": commands / polls,
        "login_cpu_ms_per_refresh": 1000 * (login_after - login_before) / _common.HZ / polls,
        "client_cpu_ms_per_refresh": 1000 * sum(cpu) / polls,
        "client_core_share_at_15s": 100 * (sum(cpu) / polls) / 15.0,
    }, snap


async def measure_ui(snap: Any, base: Path, keys: int) -> dict[str, float]:
    from nomadlab.cli.tui import build_app
    from nomadlab.core.clock import SYSTEM_CLOCK

    config = load_config_text(f'data_dir = "{base / "ui"}"\nshow_local = false\n')
    config.clusters = [ClusterConfig("della", "della-login", all_users=True)]
    app = build_app(config, clock=SYSTEM_CLOCK, start_fleet=False)
    frames: list[float] = []
    original = app._display

    def display(screen: Any, renderable: Any) -> None:
        batching = app._batch_count
        original(screen, renderable)
        if renderable is not None and not batching:
            frames.append(time.perf_counter())

    app._display = display  # type: ignore[method-assign]

    async def next_frame(after: int) -> float:
        deadline = time.perf_counter() + 10
        while len(frames) <= after:
            if time.perf_counter() > deadline:
                raise TimeoutError("no frame painted")
            await asyncio.sleep(0.0005)
        return frames[-1]

    out: dict[str, float] = {}
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("6")
        await pilot.pause()
        paints = []
        first = min((j for j in snap.jobs if j.state == "RUNNING"), key=lambda j: j.job_id)
        for i in range(5):
            snap.jobs = list(snap.jobs)  # a new poll's list, in which one job on screen
            first.name = f"renamed-{i}"  # changed (a poll that changes nothing paints nothing)
            count = len(frames)
            started = time.perf_counter()
            app.services.jobs.apply(snap)
            paints.append(1000 * (await next_frame(count) - started))
            await pilot.pause(0.05 + 0.01 * i)
        out["poll_to_paint_ms_median"] = sorted(paints)[len(paints) // 2]
        out["poll_to_paint_ms_max"] = max(paints)
        latencies = []
        for _ in range(keys):
            count = len(frames)
            started = time.perf_counter()
            await pilot.press("down")
            latencies.append(1000 * (await next_frame(count) - started))
        out["keypress_p50_ms"] = _common.percentile(latencies, 50)
        out["keypress_p99_ms"] = _common.percentile(latencies, 99)
        out["keypress_max_ms"] = max(latencies)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--polls", type=int, default=20)
    parser.add_argument("--keys", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="8 polls, 60 keys")
    args = parser.parse_args()
    if args.quick:
        args.polls, args.keys = 8, 60
    _common.header("slurm_scale: one cluster, a queue of "
                   f"{args.jobs} jobs over a real sshd", sys.argv[1:])
    with tempfile.TemporaryDirectory(prefix="nomadlab-slurm-bench-") as tmp:
        base = Path(tmp)
        bin_dir = base / "bin"
        queue = base / "squeue.json"
        counter = base / "calls"
        import getpass

        queue.write_text(generate(args.jobs, getpass.getuser()))
        install_standins(bin_dir, queue, counter)
        path = f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"
        server = SshServer(base / "sshd", {"PATH": path}).start()
        try:
            before = _common.MachineSnapshot()
            polls, snap = asyncio.run(measure_polls(server, base, args.polls, counter))
            after = _common.MachineSnapshot()
        finally:
            server.stop()
        ui = asyncio.run(measure_ui(snap, base, args.keys))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"queue: {polls['jobs_in_queue']} jobs, {polls['jobs_mine']} of them mine; "
          f"{args.polls} refreshes (sinfo every {SINFO_EVERY})")
    rows = [
        ("commands per refresh", f"{polls['commands_per_refresh']:.2f}",
         "squeue 1 + sinfo 1/4 (target: 1 squeue RPC per refresh)"),
        ("login node CPU per refresh", f"{polls['login_cpu_ms_per_refresh']:.1f} ms", ""),
        ("client CPU per refresh", f"{polls['client_cpu_ms_per_refresh']:.1f} ms", ""),
        ("client core at refresh 15 s", f"{polls['client_core_share_at_15s']:.2f} %",
         "target < 5 %: " + ("met" if polls["client_core_share_at_15s"] < 5 else "MISSED")),
        ("client peak RSS", f"{rss:.0f} MiB", "whole process, UI included"),
        ("poll -> painted frame", f"{ui['poll_to_paint_ms_median']:.0f} ms median, "
         f"{ui['poll_to_paint_ms_max']:.0f} ms max", "one job on screen changed"),
        ("keypress (down)", f"p50 {ui['keypress_p50_ms']:.1f} ms, p99 "
         f"{ui['keypress_p99_ms']:.1f} ms, max {ui['keypress_max_ms']:.1f} ms",
         "target p99 < 100 ms: " + ("met" if ui["keypress_p99_ms"] < 100 else "MISSED")),
    ]
    for name, value, note in rows:
        print(f"  {name:<30}{value:<40}{note}")
    for line in _common.sharing_report(before, after, {"benchmark": [os.getpid()]}):
        print(line)


if __name__ == "__main__":
    main()
