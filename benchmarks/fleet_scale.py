"""Client cost of watching N hosts x 8 GPUs at 1 Hz over real SSH on loopback.

What it measures, for N = 10, 50, 100 (``--quick``: N = 10, shorter windows):

- client CPU, in % of one core: ``time.process_time()`` of the client process (all
  its threads) over the measurement window, divided by the window's wall time;
- peak RSS of the client process (``ru_maxrss``), in MB;
- samples/s the client received (a fleet listener counts them);
- sample-to-screen latency, p50/p99 in ms: from the moment the client decoded a
  sample (``HostSample.received``) to the moment the fleet table applied it with
  ``update_cell`` (``Services.latency`` = a ``LatencyProbe``; the table calls it in
  its coalesced flush);
- sample-to-paint latency, p50/p99 in ms: to the next frame Textual actually
  rendered and handed to the terminal after that update (``App._display`` wrapped
  by this script). ``update_cell`` only marks the table dirty; the frame is built on
  the screen's next update tick, so this is the delay a user sees (a flush that
  changed no cell has nothing to paint: its samples count at the end of the flush);
- frames/s painted and bytes/s written to the terminal (the pty's master side).

How:

- the simulated hosts (``DemoFleet``: in-process asyncssh servers on 127.0.0.1, one
  port and host key per host) run in a SEPARATE process started by this script
  (``--role server``), so the client's CPU figure is the client's alone;
- the client (``--role client``) is a second process that runs the real ``Fleet``
  and the real TUI (``build_app``) in a real pty of 160x48 (TERM=xterm-256color),
  so the whole output path (compositor, ANSI rendering, the writer thread) is
  paid; ``--headless`` runs Textual's headless driver instead (no ANSI rendering);
- sample phases: by default host i starts its stream at i/N of a second, so the N
  streams are spread evenly over each second, as on a fleet whose agents started at
  unrelated moments (``--phases as-connected`` leaves them ticking from the moment
  each connected, all within a second or two). The UI repaints once per coalesced
  flush (50 ms), so how the arrivals spread decides how many frames it paints;
- the fleet only: the demo's config also lists one log per host (its train.log),
  which this script removes unless ``--logs`` is given;
- the client switches to the fleet screen (key "1"), waits until every host is
  live, warms up (10 s), then measures over a window (30 s);
- also printed: where the client's CPU goes (``time.thread_time`` inside
  ``FleetTable.flush`` and inside Textual's ``Screen._compositor_refresh``, the
  frame), and for each size, how busy the machine was and who else used it;
- this process only starts the two, reads the pty and prints the figures; what
  else used the CPUs during the window is printed too (the machine has 2 cores,
  and the server process needs one of them).

Run: ``python benchmarks/fleet_scale.py [--quick] [--sizes 10,50,100] [--headless]
[--phases spread|as-connected] [--wait-quiet SECONDS]``. Full size takes about 2.5
minutes (three sizes of ~45 s), ``--quick`` about 15 s.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import pickle
import resource
import select
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common

TARGET_CPU = 25.0  # % of one core, 100 hosts
TARGET_RSS = 250.0  # MB, 100 hosts
TARGET_P99 = 250.0  # ms, sample to screen


# --------------------------------------------------------------------------- the server


def _spread_phases(demo_class: Any) -> None:
    """Start host i's agent at i/N of a second (loop time), so the N streams are evenly
    spread over each second, as on a fleet whose agents started at unrelated moments.
    Without this they tick in step with the moments the client connected (all within
    a second or two), and the number of repaints per second depends on that."""
    original = demo_class._run_agent

    async def run_agent(self: Any, host: Any, process: Any, agent_args: Any) -> int:
        phase = host.index / len(self.hosts)
        await asyncio.sleep((phase - asyncio.get_running_loop().time()) % 1.0)
        result: int = await original(self, host, process, agent_args)
        return result

    demo_class._run_agent = run_agent


async def serve(args: argparse.Namespace) -> None:
    from nomadlab.remote.demo import DemoFleet

    base = Path(args.dir)
    if args.phases == "spread":
        _spread_phases(DemoFleet)
    demo = DemoFleet(hosts=args.hosts, gpus=8, seed=0, base_dir=base / "demo")
    await demo.start()
    try:
        config = demo.config(base / "data", interval=1.0)
        if not args.logs and getattr(config, "logs", None):
            config.logs = []  # the fleet only: no log tails (see --logs)
        (base / "config.pickle").write_bytes(pickle.dumps(config))
        print(json.dumps({"pid": os.getpid(), "ports": len(demo.ports)}), flush=True)
        loop = asyncio.get_running_loop()
        # Until the orchestrator closes our stdin (or dies: EOF all the same).
        await loop.run_in_executor(None, sys.stdin.read)
        print(json.dumps({"samples": demo.samples_sent, "bytes": demo.bytes_sent,
                          "sessions": sum(c.sessions for c in demo.counters.values()),
                          "cpu_s": time.process_time()}), flush=True)
    finally:
        await demo.stop()


# --------------------------------------------------------------------------- the client


def _probe_class() -> Any:
    from nomadlab.ui.services import LatencyProbe

    @dataclass
    class PaintProbe(LatencyProbe):
        """LatencyProbe, plus: sample -> the next frame rendered after its update.

        A flush that changed no cell (the sample moved nothing on screen) has nothing
        to paint: its samples count as painted when the flush ends."""

        pending: list[float] = field(default_factory=list)
        in_flush: list[float] = field(default_factory=list)
        paint_delays: list[float] = field(default_factory=list)
        frames: int = 0
        cells_changed: int = 0

        def shown(self, received: float) -> None:
            super().shown(received)
            self.in_flush.append(received)

        def end_flush(self, changed: bool) -> None:
            if changed:
                self.pending.extend(self.in_flush)
            else:
                now = self.clock.time()
                self.paint_delays.extend(now - r for r in self.in_flush)
            self.in_flush.clear()

        def painted(self) -> None:
            now = self.clock.time()
            self.frames += 1
            self.paint_delays.extend(now - r for r in self.pending)
            self.pending.clear()

        def reset(self) -> None:
            self.delays.clear()
            self.paint_delays.clear()
            self.frames = 0
            self.cells_changed = 0

    return PaintProbe


class Timing:
    """CPU time of the calling thread (the event loop's) spent inside two functions of
    the UI (time.thread_time, so time lost to other threads or processes is not in it)."""

    def __init__(self) -> None:
        self.calls: dict[str, int] = {}
        self.seconds: dict[str, float] = {}
        self.reset()

    def reset(self) -> None:
        self.calls = {"flush": 0, "frame": 0}
        self.seconds = {"flush": 0.0, "frame": 0.0}

    def wrap(self, owner: type, attribute: str, name: str) -> None:
        original = getattr(owner, attribute)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[name] += time.thread_time() - started
                self.calls[name] += 1

        setattr(owner, attribute, timed)


def _instrument(probe: Any) -> Timing:
    """Time FleetTable.flush (cells + repaint requests) and Screen._compositor_refresh
    (the frame: render the dirty widgets' lines, build the update, write it); tell the
    probe whether a flush changed anything on screen (a row repaint was asked for)."""
    from textual.screen import Screen

    from nomadlab.ui.fleet.table import FleetTable

    refresh_row = FleetTable._refresh_row

    def counted_refresh_row(self: Any, *args: Any, **kwargs: Any) -> None:
        probe.cells_changed += 1
        refresh_row(self, *args, **kwargs)

    FleetTable._refresh_row = counted_refresh_row  # type: ignore[method-assign]
    flush = FleetTable.flush

    def probed_flush(self: Any) -> None:
        before = probe.cells_changed
        try:
            flush(self)
        finally:
            probe.end_flush(probe.cells_changed != before)

    FleetTable.flush = probed_flush  # type: ignore[method-assign]
    timing = Timing()
    timing.wrap(FleetTable, "flush", "flush")
    timing.wrap(Screen, "_compositor_refresh", "frame")
    return timing


class SampleCounter:
    """Counts samples, and which 50 ms slot of the second each one arrived in."""

    def __init__(self) -> None:
        self.samples = 0
        self.slots: set[int] = set()

    def fleet_status(self, status: object) -> None:
        pass

    def fleet_sample(self, sample: Any) -> None:
        self.samples += 1
        self.slots.add(int(sample.received % 1.0 * 20))


async def client(args: argparse.Namespace) -> None:
    from nomadlab.cli.tui import build_app
    from nomadlab.core.clock import SYSTEM_CLOCK
    from nomadlab.core.model import HostState

    config = pickle.loads(Path(args.config).read_bytes())
    app = build_app(config)
    probe = _probe_class()(SYSTEM_CLOCK)
    app.services.latency = probe
    counter = SampleCounter()
    fleet = app.services.fleet
    fleet.listeners.append(counter)
    original_display = app._display

    def display(screen: Any, renderable: Any) -> None:
        batching = app._batch_count
        original_display(screen, renderable)
        if renderable is not None and not batching:
            probe.painted()

    app._display = display  # type: ignore[method-assign]
    timing = _instrument(probe)
    result: dict[str, Any] = {"hosts": len(config.hosts)}

    async def pilot_fn(pilot: Any) -> None:
        try:
            await pilot.press("1")
            deadline = started + args.connect_timeout
            while time.monotonic() < deadline:
                live = sum(1 for s in fleet.statuses.values() if s.state is HostState.LIVE)
                if live == len(config.hosts) and len(fleet.latest) == len(config.hosts):
                    break
                await asyncio.sleep(0.1)
            result["connect_s"] = time.monotonic() - started
            result["screen"] = type(app.screen).__name__
            await asyncio.sleep(args.warmup)
            probe.reset()
            timing.reset()
            samples0 = counter.samples
            counter.slots.clear()
            snap0 = _common.MachineSnapshot()
            cpu0 = time.process_time()
            wall0 = time.monotonic()
            await asyncio.sleep(args.window)
            wall1 = time.monotonic()
            cpu1 = time.process_time()
            snap1 = _common.MachineSnapshot()
            seconds = wall1 - wall0
            result.update(
                live=sum(1 for s in fleet.statuses.values() if s.state is HostState.LIVE),
                window_start=wall0, window_end=wall1, window_s=seconds,
                cpu_s=cpu1 - cpu0, cpu_pct=100.0 * (cpu1 - cpu0) / seconds,
                maxrss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
                samples=counter.samples - samples0,
                slots=len(counter.slots),
                samples_per_s=(counter.samples - samples0) / seconds,
                delays_ms=[1000.0 * d for d in probe.delays],
                paint_ms=[1000.0 * d for d in probe.paint_delays],
                frames_per_s=probe.frames / seconds,
                cells_per_s=probe.cells_changed / seconds,
                flushes_per_s=timing.calls["flush"] / seconds,
                flush_ms_per_s=1000.0 * timing.seconds["flush"] / seconds,
                frame_ms_per_s=1000.0 * timing.seconds["frame"] / seconds,
                sharing=_common.sharing_report(
                    snap0, snap1, {"client": [os.getpid()], "server": [args.server_pid],
                                   "benchmark driver": [os.getppid()]}),
            )
            Path(args.result).write_text(json.dumps(result))
        finally:
            app.exit()

    started = time.monotonic()
    await app.run_async(headless=args.headless, size=(160, 48), auto_pilot=pilot_fn)


# --------------------------------------------------------------------------- orchestration


def _read_line(proc: subprocess.Popen[bytes], timeout: float) -> bytes:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise TimeoutError("the server process said nothing")
    return proc.stdout.readline()


def run_size(n: int, args: argparse.Namespace) -> dict[str, Any]:
    me = str(Path(__file__).resolve())
    tmp = Path(tempfile.mkdtemp(prefix=f"nomadlab-fleet-scale-{n}-"))
    server: subprocess.Popen[bytes] | None = None
    ui: _common.PtyProcess | None = None
    plain: subprocess.Popen[bytes] | None = None
    env = _common.isolated_env(tmp / "home")
    try:
        server_log = (tmp / "server.log").open("wb")
        server = subprocess.Popen([sys.executable, me, "--role", "server", "--hosts", str(n),
                                   "--dir", str(tmp), "--phases", args.phases,
                                   *(["--logs"] if args.logs else [])],
                                  stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=server_log, env=env,
                                  start_new_session=True)
        info = json.loads(_read_line(server, 120) or b"{}")
        if "pid" not in info:
            raise RuntimeError("server failed: " + (tmp / "server.log").read_text()[-2000:])
        argv = [sys.executable, me, "--role", "client", "--config", str(tmp / "config.pickle"),
                "--result", str(tmp / "result.json"), "--server-pid", str(info["pid"]),
                "--warmup", str(args.warmup), "--window", str(args.window),
                "--connect-timeout", str(args.connect_timeout)]
        if args.headless:
            argv.append("--headless")
        budget = args.connect_timeout + args.warmup + args.window + 60
        if args.headless:
            log = (tmp / "client.log").open("wb")
            plain = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                     env=env, start_new_session=True)
            plain.wait(budget)
        else:
            ui = _common.PtyProcess(argv, env)
            ui.proc.wait(budget)
        result_path = tmp / "result.json"
        if not result_path.exists():
            tail = (ui.tail.decode("utf-8", "replace") if ui is not None
                    else (tmp / "client.log").read_text())
            raise RuntimeError(f"client produced no result; its output ends with:\n{tail[-3000:]}")
        result: dict[str, Any] = json.loads(result_path.read_text())
        if ui is not None:
            result["term_bytes_per_s"] = (
                ui.bytes_between(result["window_start"], result["window_end"])
                / result["window_s"])
        assert server.stdin is not None
        server.stdin.close()
        line = _read_line(server, 30)
        result["server"] = json.loads(line) if line.strip() else {}
        server.wait(30)
        return result
    finally:
        if ui is not None:
            ui.stop()
        for proc in (plain, server):
            if proc is not None and proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, 9)
                proc.wait(10)
        shutil.rmtree(tmp, ignore_errors=True)


def report(results: list[dict[str, Any]], args: argparse.Namespace) -> None:
    pct = _common.percentile
    print()
    mode = "headless driver" if args.headless else "real pty 160x48, TERM=xterm-256color"
    phases = ("sample phases spread evenly over the second" if args.phases == "spread"
              else "sample phases as connected")
    logs = "with a log tail per host" if args.logs else "no log tails"
    print(f"1 Hz per host, 8 GPUs per host, {phases}, {logs}; warm-up {args.warmup:g} s, window "
          f"{args.window:g} s; TUI on the fleet screen, {mode}")
    cols = ("hosts", "connect s", "samples/s", "client CPU %", "peak RSS MB",
            "s2screen p50/p99 ms", "s2paint p50/p99 ms", "frames/s", "term KB/s")
    print(" | ".join(cols))
    for r in results:
        d, p = r["delays_ms"], r["paint_ms"]
        term = r.get("term_bytes_per_s")
        print(" | ".join((
            f"{r['hosts']:5d}", f"{r['connect_s']:9.1f}",
            f"{r['samples_per_s']:9.1f}", f"{r['cpu_pct']:12.1f}", f"{r['maxrss_mb']:11.0f}",
            f"{pct(d, 50):8.0f} / {pct(d, 99):4.0f}".rjust(19),
            f"{pct(p, 50):8.0f} / {pct(p, 99):4.0f}".rjust(18),
            f"{r['frames_per_s']:8.1f}",
            f"{term / 1024:9.1f}" if term is not None else "        -")))
    print()
    print()
    print("where the client's CPU goes (CPU ms per second of wall time; thread_time inside "
          "the two functions, the rest is total process CPU minus those):")
    for r in results:
        rest = 10.0 * r["cpu_pct"] - r["flush_ms_per_s"] - r["frame_ms_per_s"]
        print(f"  N={r['hosts']}: FleetTable.flush {r['flush_ms_per_s']:.0f} "
              f"({r['flushes_per_s']:.1f} flushes/s, {r['cells_per_s']:.0f} update_cell/s), "
              f"frames {r['frame_ms_per_s']:.0f} "
              f"({r['frames_per_s']:.1f}/s), everything else (SSH, decoding, history, "
              f"event loop, writer thread) {rest:.0f}")
    print()
    for r in results:
        srv = r.get("server", {})
        print(f"N={r['hosts']}: {r['live']}/{r['hosts']} live at the end of the window; "
              f"{r['samples']} samples in {r['window_s']:.1f} s (expected "
              f"{r['hosts'] * r['window_s']:.0f}), arriving in {r['slots']} of the 20 "
              f"50-ms slots of a second; latency measurements: "
              f"{len(r['delays_ms'])} to screen, {len(r['paint_ms'])} to paint; max "
              f"{max(r['delays_ms'], default=float('nan')):.0f} / "
              f"{max(r['paint_ms'], default=float('nan')):.0f} ms")
        if r.get("screen") != "FleetScreen":
            print(f"  WARNING: the current screen was {r.get('screen')}, not the fleet screen")
        if srv.get("samples"):
            print(f"  server: {srv['bytes'] / srv['samples']:.0f} bytes of agent output per "
                  f"sample (JSON lines, before SSH framing)")
        for line in r["sharing"]:
            print("  " + line)
    biggest = max(results, key=lambda r: r["hosts"])
    n = biggest["hosts"]
    print()
    print(f"targets (issue), at 100 hosts; measured here at {n} hosts:")

    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    cpu, rss = biggest["cpu_pct"], biggest["maxrss_mb"]
    p99 = pct(biggest["delays_ms"], 99)
    p99p = pct(biggest["paint_ms"], 99)
    print(f"  client CPU < {TARGET_CPU:g} % of one core: {cpu:.1f} %  "
          f"{verdict(cpu < TARGET_CPU) if n >= 100 else '(not at 100 hosts)'}")
    print(f"  peak RSS < {TARGET_RSS:g} MB: {rss:.0f} MB  "
          f"{verdict(rss < TARGET_RSS) if n >= 100 else '(not at 100 hosts)'}")
    print(f"  sample-to-screen p99 < {TARGET_P99:g} ms: {p99:.0f} ms (to update_cell), "
          f"{p99p:.0f} ms (to the painted frame)  "
          f"{verdict(p99p < TARGET_P99) if n >= 100 else '(not at 100 hosts)'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="N=10 only, short windows")
    parser.add_argument("--sizes", help="comma-separated host counts (default 10,50,100)")
    parser.add_argument("--warmup", type=float, help="seconds after all hosts are live")
    parser.add_argument("--window", type=float, help="seconds measured")
    parser.add_argument("--headless", action="store_true",
                        help="Textual's headless driver instead of a real pty")
    parser.add_argument("--phases", choices=("spread", "as-connected"), default="spread",
                        help="spread: host i samples at i/N of each second (default); "
                             "as-connected: each host ticks from the moment it connected")
    parser.add_argument("--logs", action="store_true",
                        help="also tail the demo's train.log of every host (one more SSH "
                             "session per host; off by default: this measures the fleet)")
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                        help="before each size, wait up to this long for the machine to "
                             "be nearly idle (other work on it skews latency)")
    parser.add_argument("--connect-timeout", type=float, default=90.0,
                        help="seconds to wait for every host to be live")
    parser.add_argument("--role", choices=("server", "client"), help=argparse.SUPPRESS)
    parser.add_argument("--hosts", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    parser.add_argument("--config", help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    parser.add_argument("--server-pid", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "server":
        asyncio.run(serve(args))
        return
    if args.role == "client":
        asyncio.run(client(args))
        return
    sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else (
        [10] if args.quick else [10, 50, 100])
    if args.warmup is None:
        args.warmup = 3.0 if args.quick else 10.0
    if args.window is None:
        args.window = 8.0 if args.quick else 30.0
    _common.header("fleet_scale: client cost of N hosts x 8 GPUs at 1 Hz over SSH on loopback",
                   ["python", *sys.argv])
    print("the simulated hosts run in a separate process (one core of the two is theirs "
          "to use); figures for the client process only")
    results = []
    for n in sizes:
        quiet = _common.wait_for_quiet(args.wait_quiet)
        started = time.monotonic()
        results.append(run_size(n, args))
        print(f"  N={n} done in {time.monotonic() - started:.0f} s"
              + (f" ({quiet})" if quiet else ""), flush=True)
    report(results, args)


if __name__ == "__main__":
    main()
