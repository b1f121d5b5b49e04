"""Client memory under hostile hosts: peak RSS of ``nomadlab watch`` per flood.

One real OpenSSH sshd on 127.0.0.1 (tests/sshd.py). For each case ``nomadlab watch``
runs as its own process for ``--seconds`` (default 20) with one host and one log:

- ``idle``: the real agents, following a quiet file (the baseline);
- ``huge-frame``: the tail agent announces a 10^12-byte frame and sends data endlessly;
- ``no-window``: the tail agent ignores the flow window and sends short lines endlessly;
- ``sample-flood``: the sampling agent sends samples as fast as it can.

The hostile agents are tests/hostile.py, run through sshd in place of python3. Printed
per case: the peak RSS (VmHWM), the RSS at the end, the peak above the idle case, and
the log's last state as ``watch --states`` printed it. Target: under 100 MB above idle.

Run: ``python benchmarks/hostile_floods.py [--seconds 20] [--cases idle,huge-frame]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from hostile import install, sent  # noqa: E402
from sshd import SshServer  # noqa: E402

CASES = ("idle", "huge-frame", "no-window", "sample-flood")


def status_kb(pid: int, field: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def write_config(path: Path, server: SshServer, python: str, log: Path, data: Path) -> None:
    path.write_text(f"""
data_dir = "{data}"
show_local = false

[[hosts]]
name = "hostile"
hostname = "127.0.0.1"
port = {server.port}
user = "{server.user}"
identity_file = "{server.client_key}"
known_hosts = "{server.base / 'known_hosts'}"
python = "{python}"

[[logs]]
name = "flood"
host = "hostile"
path = "{log}"

[tail]
max_lines = 1000

[notify]
default_rules = false
bell = false
desktop = false
notify_send = false
""")


def run_case(case: str, server: SshServer, base: Path, seconds: float) -> dict[str, object]:
    work = base / case
    work.mkdir()
    log = work / "quiet.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    if case == "idle":
        python, counter = "python3", None
    else:
        python, counter = install(work / "bin", case)
    config = work / "config.toml"
    write_config(config, server, python, log, work / "data")
    out = work / "watch.out"
    with out.open("wb") as stdout:
        proc = subprocess.Popen([sys.executable, "-m", "nomadlab", "watch", "--states",
                                 "--config", str(config)], stdout=stdout,
                                stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end and proc.poll() is None:
            time.sleep(0.2)
        peak = status_kb(proc.pid, "VmHWM")
        final = status_kb(proc.pid, "VmRSS")
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    state = "?"
    for raw in out.read_text(errors="replace").splitlines():
        try:
            event = json.loads(raw)
        except ValueError:
            continue
        if event.get("event") == "log" and event.get("state") != "stopped":
            state = f"{event.get('state')}" + (f" ({event['error']})" if event.get("error")
                                               else "")
    return {"case": case, "peak_mb": peak / 1024, "end_mb": final / 1024, "log": state,
            "sent": sent(counter) if counter is not None else 0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--cases", default=",".join(CASES))
    args = parser.parse_args()
    cases = [c for c in args.cases.split(",") if c]
    if "idle" not in cases:
        cases.insert(0, "idle")
    base = Path(tempfile.mkdtemp(prefix="nomadlab-floods-"))
    os.environ["HOME"] = str(base / "home")
    (base / "home").mkdir()
    server = SshServer(base / "sshd").start()
    server.write_known_hosts(server.base / "known_hosts")
    print(f"nomadlab watch under hostile hosts, {args.seconds:g} s each, "
          f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}")
    try:
        results = [run_case(case, server, base, args.seconds) for case in cases]
    finally:
        server.stop()
    idle = float(results[0]["peak_mb"])  # type: ignore[arg-type]
    print(f"{'case':<14}{'peak MB':>9}{'end MB':>9}{'above idle':>12}  sent   log state")
    for r in results:
        above = float(r["peak_mb"]) - idle  # type: ignore[arg-type]
        print(f"{r['case']:<14}{r['peak_mb']:>9.1f}{r['end_mb']:>9.1f}{above:>+12.1f}  "
              f"{r['sent']!s:<6} {str(r['log'])[:90]}")


if __name__ == "__main__":
    main()
