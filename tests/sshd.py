"""A real OpenSSH sshd on 127.0.0.1 for tests: temp host key, temp authorized_keys.

Where sshd is missing the tests that need it are skipped, except when
NOMADLAB_REQUIRE_SSHD=1 (set by .ci/run): then they fail, so CI cannot go green
without having exercised the real server.
"""

from __future__ import annotations

import getpass
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/local/sbin/sshd", "/sbin/sshd")


def find_sshd() -> str | None:
    for path in SSHD_CANDIDATES:
        if os.path.exists(path):
            return path
    return shutil.which("sshd")


def require_sshd() -> str:
    sshd = find_sshd()
    if sshd is None or shutil.which("ssh-keygen") is None:
        message = "OpenSSH sshd/ssh-keygen not installed (apt-get install openssh-server)"
        if os.environ.get("NOMADLAB_REQUIRE_SSHD") == "1":
            pytest.fail(message + " but NOMADLAB_REQUIRE_SSHD=1", pytrace=False)
        pytest.skip(message)
    return sshd


class PortTaken(RuntimeError):
    """sshd could not bind its port: something else took it after free_port()."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def keygen(path: Path, kind: str = "ed25519", passphrase: str = "") -> Path:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, "-N", passphrase, "-C", "nomadlab-test", "-f", str(path)],
        check=True,
    )
    return path


class SshServer:
    """One sshd. ``env`` is set for every session with SetEnv (PATH is appended to
    by the login shell's rc files, so stand-ins must not rely on coming first)."""

    def __init__(self, base: Path, env: dict[str, str] | None = None,
                 client_key: Path | None = None, extra: str = "") -> None:
        self.sshd = require_sshd()
        self.base = base
        base.mkdir(parents=True, exist_ok=True)
        self.host_key = keygen(base / "host_ed25519")
        self.client_key = client_key or keygen(base / "id_ed25519")
        self.authorized = base / "authorized_keys"
        self.authorized.write_text(Path(str(self.client_key) + ".pub").read_text())
        self.user = getpass.getuser()
        self.port = free_port()
        self.env = dict(env or {})
        self.extra = extra
        self.log = base / "sshd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def host_key_line(self) -> str:
        kind, blob = Path(str(self.host_key) + ".pub").read_text().split()[:2]
        return f"[127.0.0.1]:{self.port} {kind} {blob}"

    def write_known_hosts(self, path: Path) -> Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as f:
            f.write(self.host_key_line + "\n")
        return path

    def _config(self) -> Path:
        lines = [
            f"Port {self.port}",
            "ListenAddress 127.0.0.1",
            f"HostKey {self.host_key}",
            f"PidFile {self.base / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.authorized}",
            "StrictModes no",
            "UsePAM no",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes",
            "PermitRootLogin yes",
            "AllowTcpForwarding yes",
            "MaxStartups 400:30:800",
            "MaxSessions 200",
            "Subsystem sftp internal-sftp",
            "LogLevel VERBOSE",
        ]
        if self.env:
            pairs = " ".join(f'"{k}={v}"' for k, v in self.env.items())
            lines.append(f"SetEnv {pairs}")
        if self.extra:
            lines.append(self.extra)
        path = self.base / "sshd_config"
        path.write_text("\n".join(lines) + "\n")
        return path

    def start(self) -> SshServer:
        # free_port() closes its socket before sshd binds the port: another test (another
        # pytest-xdist worker) can take it in between. A few tries with fresh ports.
        for attempt in range(3):
            try:
                return self._start()
            except PortTaken:
                if attempt == 2:
                    raise
                self.port = free_port()
        raise AssertionError("unreachable")

    def _start(self) -> SshServer:
        if os.geteuid() == 0:
            os.makedirs("/run/sshd", exist_ok=True)
        config = self._config()
        check = subprocess.run([self.sshd, "-t", "-f", str(config)], capture_output=True,
                               text=True, check=False)
        if check.returncode != 0:
            raise RuntimeError(f"sshd config rejected: {check.stderr}")
        log = self.log.open("ab")
        self.proc = subprocess.Popen([self.sshd, "-D", "-e", "-f", str(config)],
                                     stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log_text = self.log.read_text()[-2000:]
                if "Address already in use" in log_text:
                    self.log.write_text("")
                    raise PortTaken(log_text)
                raise RuntimeError(f"sshd exited: {log_text}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("sshd did not start listening within 10 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def session_pids(self) -> list[int]:
        """PIDs of processes started under this sshd (its per-connection children)."""
        if self.proc is None:
            return []
        out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True,
                             check=True)
        children: dict[int, list[int]] = {}
        for line in out.stdout.splitlines():
            pid, ppid = (int(v) for v in line.split())
            children.setdefault(ppid, []).append(pid)
        found: list[int] = []
        todo = list(children.get(self.proc.pid, []))
        while todo:
            pid = todo.pop()
            found.append(pid)
            todo.extend(children.get(pid, []))
        return found
