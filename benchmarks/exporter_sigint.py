"""How often ``nomadlab exporter`` is slow to exit on SIGINT, on a loaded machine.

The host is real: OpenSSH's sshd on 127.0.0.1 (tests/sshd.py) with the stand-in
NVML (8 GPUs), as in tests/test_readme_commands.py. Each run starts the installed
``nomadlab exporter``, waits until it answers a scrape, sends SIGINT and times the
exit; a CPU hog (tests/ptyterm.py CpuHog) keeps the machine busy, where the races
show. A run slower than ``--slow`` seconds is counted; for it, the exporter's
asyncio tasks (each task's stack, as ``Task.print_stack`` writes it) are dumped on
SIGUSR1 and printed, so the await it is stuck at is on record.

Run: ``python benchmarks/exporter_sigint.py [--runs 40] [--slow 2.0] [--no-hog]``.
Prints one line per run and the slow-exit count. Fleet.stop bounds a stuck host at
STOP_TIMEOUT (5 s): a slow run exits after about 5.5 s instead of well under 1 s.
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common

sys.path.insert(0, str(_common.TESTS))

# The exporter, as the installed script runs it, plus a SIGUSR1 handler that prints
# every asyncio task's stack to stderr (a debugging aid of this script only).
LAUNCHER = r"""
import asyncio, signal, sys, traceback

def dump(signum, frame):
    loop = asyncio._get_running_loop()
    print("--- asyncio tasks at SIGUSR1", file=sys.stderr)
    if loop is None:
        traceback.print_stack(frame, file=sys.stderr)
        return
    for task in asyncio.all_tasks(loop):
        print(f"{task!r}", file=sys.stderr)
        coro = task.get_coro()
        while coro is not None:  # the whole await chain, not just the outer frame
            frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
            if frame is not None:
                print(f"  {frame.f_code.co_filename}:{frame.f_lineno} "
                      f"in {frame.f_code.co_name}", file=sys.stderr)
            coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
            if coro is not None and not hasattr(coro, "cr_frame") \
                    and not hasattr(coro, "gi_frame"):
                print(f"  awaiting {coro!r}", file=sys.stderr)
                break
    sys.stderr.flush()

signal.signal(signal.SIGUSR1, dump)
from nomadlab.cli import main
sys.exit(main(sys.argv[1:]))
"""


def world(base: Path) -> tuple[dict[str, str], object]:
    from sshd import SshServer
    from standins.nvml import build_fake_nvml

    lib = build_fake_nvml(base / "nvml")
    conf = base / "nvml.conf"
    conf.write_text((_common.TESTS / "data" / "nvml" / "h100x8.conf").read_text())
    server = SshServer(base / "sshd", {"LD_LIBRARY_PATH": str(lib),
                                       "NOMADLAB_FAKE_NVML": str(conf)}).start()
    home = base / "home"
    config = home / ".config" / "nomadlab" / "config.toml"
    config.parent.mkdir(parents=True)
    known = server.write_known_hosts(base / "known_hosts")
    config.write_text(
        'show_local = false\n'
        '[ssh]\nconnect_timeout = 5\nlogin_timeout = 10\n'
        f'config_file = "{base / "no_ssh_config"}"\n'
        '[notify]\nbell = false\ndesktop = false\nnotify_send = false\n'
        f'[[hosts]]\nname = "gpu1"\nhostname = "127.0.0.1"\nport = {server.port}\n'
        f'user = "{server.user}"\nidentity_file = "{server.client_key}"\n'
        f'known_hosts = "{known}"\n')
    return _common.isolated_env(home), server


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def one_run(env: dict[str, str], slow: float, log: Path | None) -> tuple[float, int, str]:
    """(seconds from SIGINT to exit, exit status, output when slow)."""
    port = free_port()
    argv = [sys.executable, "-c", LAUNCHER, "exporter", "--listen", f"127.0.0.1:{port}"]
    if log is not None:
        argv[3:3] = ["--log", str(log)]
    process = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        for _ in range(300):  # bounded: about 60 s
            if process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:
                    if b"nomadlab_host_up" in answer.read():
                        break
            except OSError:
                time.sleep(0.2)
        if process.poll() is not None:
            return -1.0, process.returncode, process.communicate()[0]
        start = time.monotonic()
        process.send_signal(signal.SIGINT)
        dumped = False
        while process.poll() is None and time.monotonic() - start < 60:
            if not dumped and time.monotonic() - start > slow:
                process.send_signal(signal.SIGUSR1)
                dumped = True
            time.sleep(0.02)
        took = time.monotonic() - start
        out = process.communicate(timeout=10)[0]
        return took, process.returncode, out if took > slow else ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--slow", type=float, default=2.0,
                        help="seconds after SIGINT that count as a slow exit")
    parser.add_argument("--no-hog", action="store_true", help="without the CPU hog")
    parser.add_argument("--log", action="store_true", help="pass --log FILE to each run")
    args = parser.parse_args()
    from ptyterm import CpuHog

    _common.header("exporter_sigint: seconds from SIGINT to exit of `nomadlab exporter`, "
                   "one host over real sshd", sys.argv)
    with tempfile.TemporaryDirectory(prefix="nomadlab-sigint-") as tmp:
        env, server = world(Path(tmp))
        times: list[float] = []
        slow_runs = 0
        hog = contextlib.nullcontext() if args.no_hog else CpuHog()
        try:
            with hog:
                for i in range(args.runs):
                    log = Path(tmp) / f"run{i}.log" if args.log else None
                    took, status, out = one_run(env, args.slow, log)
                    times.append(took)
                    mark = ""
                    if took > args.slow or took < 0:
                        slow_runs += 1
                        mark = "  SLOW" if took >= 0 else "  NO SCRAPE"
                    print(f"run {i + 1:3d}: exit {status} after {took:.2f}s{mark}", flush=True)
                    if out:
                        print(out.rstrip(), flush=True)
                        if log is not None and log.exists():
                            print("--- log tail\n" + "\n".join(
                                log.read_text().splitlines()[-40:]), flush=True)
        finally:
            server.stop()  # type: ignore[attr-defined]
        ok = sorted(t for t in times if t >= 0)
        print(f"slow exits (> {args.slow:g}s after SIGINT): {slow_runs} of {len(times)}"
              f"{'' if args.no_hog else ' (with a CPU hog)'}; target 0: "
              f"{'met' if slow_runs == 0 else 'MISSED'}")
        if ok:
            print(f"exit time: median {ok[len(ok) // 2]:.2f}s, max {ok[-1]:.2f}s")


if __name__ == "__main__":
    main()
