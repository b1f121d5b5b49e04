"""What evaluating ssh_config costs per host: ``ssh -G`` against asyncssh's parser.

nomadlab asks OpenSSH (``ssh -G``) what it would use for a host
(:mod:`nomadlab.remote.sshconfig`) on every connect and reconnect, and once per host
in ``hosts list``; without ssh it reads asyncssh's options object instead. This
times both routes on a config like users have (an ``Include`` of 20 host blocks,
two ``Match user`` blocks, ``Host *`` defaults), N resolves each, one after
another, in this process (wall time per resolve: ``ssh -G`` is a fork+exec).

Target: under 50 ms per resolve on ``ssh -G`` (a reconnect or a ``hosts list`` line
must not wait on it noticeably).

Run: ``python benchmarks/ssh_resolve.py [--quick]``.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import header, percentile

from nomadlab.remote import sshconfig

TARGET_MS = 50.0


def write_config(base: Path) -> Path:
    included = base / "conf.d"
    included.mkdir()
    (included / "lab.conf").write_text("".join(
        f"Host gpu{i}\n  HostName 10.0.0.{i + 1}\n  Port {2200 + i}\n  ProxyJump bastion\n\n"
        for i in range(20)))
    config = base / "config"
    config.write_text(f"Include {included}/*.conf\n\nMatch user nobody\n  Port 1\n\n"
                      "Match user ana\n  IdentitiesOnly yes\n\n"
                      "Host *\n  User ana\n  IdentityFile ~/.ssh/id_ed25519\n"
                      "  ServerAliveInterval 10\n")
    return config


def measure(config: Path, runs: int, use_ssh: bool) -> list[float]:
    times: list[float] = []
    for i in range(runs):
        start = time.perf_counter()
        options = sshconfig.resolve(f"gpu{i % 20}", str(config), use_ssh=use_ssh)
        times.append((time.perf_counter() - start) * 1000)
        assert options.hostname == f"10.0.0.{i % 20 + 1}"
    return times


def main() -> None:
    quick = "--quick" in sys.argv
    runs = 20 if quick else 200
    header("ssh_config evaluation per host", sys.argv)
    if sshconfig.ssh_binary() is None:
        print("ssh not installed: only the asyncssh route is measured")
    with tempfile.TemporaryDirectory() as tmp:
        config = write_config(Path(tmp))
        routes = [("asyncssh", False)]
        if sshconfig.ssh_binary() is not None:
            routes.insert(0, ("ssh -G", True))
        for name, use_ssh in routes:
            measure(config, 3, use_ssh)  # warm the page cache and imports
            times = measure(config, runs, use_ssh)
            p50, p95 = percentile(times, 50), percentile(times, 95)
            verdict = "" if not use_ssh else (
                f"  target < {TARGET_MS:.0f} ms: {'met' if p95 < TARGET_MS else 'MISSED'}")
            print(f"{name:>9}: {runs} resolves, median {p50:.1f} ms, p95 {p95:.1f} ms, "
                  f"max {max(times):.1f} ms{verdict}")


if __name__ == "__main__":
    main()
