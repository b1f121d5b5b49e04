"""The log viewer under a burst: lines/s reaching the view, keypress latency, memory.

A writer process appends ~80-byte lines to a log as fast as it can for ``--seconds``
(default 10). The log is followed over a real OpenSSH sshd on 127.0.0.1
(tests/sshd.py) by the real TUI (headless, 160x48, logs screen, following). While the
burst runs, a key is pressed every 100 ms in the viewer (up/down: cursor moves that
repaint the view); each press is timed from sending the key until the app has handled
it (the cursor moved: the next frame shows it), i.e. what a user waits for.

Printed: lines written, lines that reached the view (/s), keypress latency p50/p99/max,
and resident memory every second (flat once the per-log line limit, [tail].max_lines,
is reached), peak RSS. Targets from the issue: >= 50,000 lines/s ingested, p99 input
latency under 100 ms, memory flat once the line limit is reached.

Run: python benchmarks/log_view.py [--seconds 10] [--max-lines 100000]
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from sshd import SshServer  # noqa: E402
from textual import events  # noqa: E402

from nomadlab.cli.tui import build_app  # noqa: E402
from nomadlab.core.config import HostConfig, LogConfig, SshSettings, load_config_text  # noqa: E402
from nomadlab.ui.logs.screen import LogsScreen  # noqa: E402

WRITER = r"""
import sys, time
path, seconds = sys.argv[1], float(sys.argv[2])
end = time.monotonic() + seconds
n = 0
with open(path, "a", buffering=1 << 16) as f:
    while time.monotonic() < end:
        chunk = []
        for _ in range(500):
            n += 1
            chunk.append(f"step {n:>9} | loss 1.{n % 9973:04d} | lr 3.0e-04 | 45.1k tok/s | ok\n")
        f.write("".join(chunk))
print(n)
"""


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * resource.getpagesize() / 1e6


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(seconds: float, max_lines: int) -> None:
    with tempfile.TemporaryDirectory(prefix="nomadlab-logbench-") as tmp:
        base = Path(tmp)
        server = SshServer(base / "sshd", {"NOMADLAB_FAKE_NVML": "/nonexistent"}).start()
        try:
            known = server.write_known_hosts(base / "known_hosts")
            log = base / "train.log"
            log.write_text("start\n")
            config = load_config_text(f'data_dir = "{base / "data"}"\nshow_local = false\n'
                                      "[notify]\nbell = false\ndesktop = false\n"
                                      "notify_send = false\n")
            config.hosts = [HostConfig("bench", "127.0.0.1", port=server.port, user=server.user,
                                       identity_file=str(server.client_key),
                                       known_hosts=str(known))]
            config.ssh = SshSettings(connect_timeout=5, keepalive_interval=5)
            config.logs = [LogConfig("burst", "bench", str(log))]
            config.tail.max_lines = max_lines
            app = build_app(config)
            async with app.run_test(size=(160, 48)) as pilot:
                await pilot.press("2")
                screen = app.screen
                assert isinstance(screen, LogsScreen)
                view = screen.view
                deadline = time.monotonic() + 20
                while not view.rows and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                view.focus()
                logs = app.services.logs
                assert logs is not None
                tail = logs.tails["burst"]
                received0 = tail.buffer.next_seq
                writer = subprocess.Popen([sys.executable, "-c", WRITER, str(log), str(seconds)],
                                          stdout=subprocess.PIPE, text=True)
                start = time.monotonic()
                latencies: list[float] = []
                memory: list[tuple[float, float]] = []
                next_mem = start
                key = "up"
                handled: list[float] = []
                original = view.action_cursor

                def timed_cursor(step: int) -> None:  # instrumentation: when the key acted
                    original(step)
                    view.refresh()
                    handled.append(time.perf_counter())

                view.action_cursor = timed_cursor  # type: ignore[method-assign]
                while writer.poll() is None:
                    count = len(handled)
                    t0 = time.perf_counter()
                    app.post_message(events.Key(key, None))
                    limit = t0 + 5.0
                    while len(handled) == count and time.perf_counter() < limit:
                        await asyncio.sleep(0.001)
                    latencies.append((handled[-1] if len(handled) > count
                                      else time.perf_counter()) - t0)
                    key = "down" if key == "up" else "up"
                    now = time.monotonic()
                    if now >= next_mem:
                        memory.append((now - start, rss_mb()))
                        next_mem += 1.0
                    await asyncio.sleep(0.1)
                burst = time.monotonic() - start
                written = int((writer.stdout.read() if writer.stdout else "0").strip() or 0)
                in_burst = tail.buffer.next_seq - received0
                await pilot.press("end")
                deadline = time.monotonic() + 180
                while tail.buffer.next_seq - received0 < written and time.monotonic() < deadline:
                    await asyncio.sleep(0.05)
                total = time.monotonic() - start
                received = tail.buffer.next_seq - received0
                memory.append((total, rss_mb()))
        finally:
            server.stop()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("log viewer under a burst (real sshd on 127.0.0.1, TUI headless 160x48, "
          "2 shared cores: writer + sshd + tail agent + client)")
    print(f"  lines written          {written:>12,} in {burst:.1f} s "
          f"({written / burst:,.0f} lines/s)")
    print(f"  reached the view       {in_burst:>12,} during the burst "
          f"({in_burst / burst:,.0f} lines/s)   target >= 50,000 lines/s")
    print(f"  all lines              {received:>12,} after {total:.1f} s "
          f"({received / total:,.0f} lines/s overall), every line once: {received == written}")
    print(f"  keypresses             {len(latencies):>12} during the burst: "
          f"p50 {1000 * statistics.median(latencies):.1f} ms, "
          f"p99 {1000 * percentile(latencies, 0.99):.1f} ms, "
          f"max {1000 * max(latencies):.1f} ms   target p99 < 100 ms")
    print(f"  lines kept per log     {max_lines:>12,} ([tail].max_lines)")
    print("  RSS (MB) by second     " + ", ".join(f"{mb:.0f}" for _, mb in memory))
    print(f"  peak RSS               {peak:>12.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--max-lines", type=int, default=100_000)
    args = parser.parse_args()
    asyncio.run(run(args.seconds, args.max_lines))


if __name__ == "__main__":
    main()
