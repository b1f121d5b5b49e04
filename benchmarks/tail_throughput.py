"""Log tail throughput over real SSH on loopback: lines/s reaching LogTail's buffer.

A writer process appends ~90-byte lines to a file as fast as it can for ``--seconds``
(default 5); the file is followed by the real ``Logs``/``LogTail`` over a real OpenSSH
sshd on 127.0.0.1 (tests/sshd.py), through the tail agent. Printed: lines written,
lines received during the write window (lines/s), the time to catch up after the
writer stopped, the overall rate, client CPU (``time.process_time``), and whether
every line arrived once and in order.

Run: ``python benchmarks/tail_throughput.py [--seconds 5] [--local]``.
The machine's cores are shared by the writer, sshd, the agent and the client.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from sshd import SshServer  # noqa: E402

from nomadlab.core.config import HostConfig, LogConfig, SshSettings, load_config_text  # noqa: E402
from nomadlab.core.logs import LogLine, LogStatus  # noqa: E402
from nomadlab.remote.fleet import Fleet  # noqa: E402
from nomadlab.remote.tail import Logs  # noqa: E402

WRITER = r"""
import sys, time
path, seconds = sys.argv[1], float(sys.argv[2])
n = 0
end = time.monotonic() + seconds
with open(path, "ab", buffering=1 << 16) as f:
    while time.monotonic() < end:
        f.write(b"".join(b"2026-01-01T00:00:00Z step %09d loss 0.123456 lr 3.0e-4 tok/s 12345.6\n"
                         % i for i in range(n, n + 1000)))
        n += 1000
print(n)
"""


class Counter:
    def __init__(self) -> None:
        self.lines = 0
        self.last: str | None = None
        self.ordered = True
        self.expect = 0

    def log_lines(self, name: str, lines: list[LogLine]) -> None:
        self.lines += len(lines)
        first = int(lines[0].text.split()[2])
        last = int(lines[-1].text.split()[2])
        if first != self.expect or last - first != len(lines) - 1:
            self.ordered = False
        self.expect = last + 1

    def log_status(self, status: LogStatus) -> None:
        pass


async def main(seconds: float, local: bool) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="nomadlab-tail-bench-"))
    server = None if local else SshServer(tmp / "sshd").start()
    log = tmp / "train.log"
    log.write_bytes(b"")
    config = load_config_text(f'data_dir = "{tmp / "data"}"\nshow_local = false\n')
    if server is not None:
        server.write_known_hosts(server.base / "known_hosts")
        config.hosts = [HostConfig(name="h", hostname="127.0.0.1", port=server.port,
                                   user=server.user, identity_file=str(server.client_key),
                                   known_hosts=str(server.base / "known_hosts"))]
        config.ssh = SshSettings(connect_timeout=5, login_timeout=5)
    config.logs = [LogConfig("bench", "local" if local else "h", str(log), lines=0)]
    fleet = Fleet(config) if not local else None
    if fleet is not None:
        await fleet.start()
    logs = Logs(config, fleet)
    counter = Counter()
    logs.listeners.append(counter)
    await logs.start()
    try:
        deadline = time.monotonic() + 20
        while logs.statuses["bench"].state.value != "live":
            if time.monotonic() > deadline:
                raise SystemExit(f"tail not live: {logs.statuses['bench']}")
            await asyncio.sleep(0.05)
        cpu0 = time.process_time()
        t0 = time.monotonic()
        writer = await asyncio.create_subprocess_exec(
            sys.executable, "-c", WRITER, str(log), str(seconds), stdout=subprocess.PIPE)
        out, _ = await writer.communicate()
        t1 = time.monotonic()
        in_window = counter.lines
        written = int(out)
        deadline = time.monotonic() + 120
        while counter.lines < written and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        t2 = time.monotonic()
        cpu = time.process_time() - cpu0
        size = log.stat().st_size
        print(f"transport: {'local subprocess' if local else 'ssh (OpenSSH sshd, loopback)'}")
        print(f"written: {written} lines, {size / 1e6:.0f} MB in {t1 - t0:.2f} s "
              f"({written / (t1 - t0):,.0f} lines/s)")
        print(f"received while writing: {in_window} lines = {in_window / (t1 - t0):,.0f} lines/s")
        print(f"caught up {t2 - t1:.2f} s after the writer stopped; overall "
              f"{counter.lines / (t2 - t0):,.0f} lines/s ({counter.lines} lines)")
        share = 100 * cpu / (t2 - t0)
        print(f"client CPU: {cpu:.2f} s over {t2 - t0:.2f} s = {share:.0f}% of one core")
        print(f"all once and in order: {counter.lines == written and counter.ordered}")
    finally:
        await logs.stop()
        if fleet is not None:
            await fleet.stop()
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--local", action="store_true", help="local subprocess, no SSH")
    args = parser.parse_args()
    asyncio.run(main(args.seconds, args.local))
