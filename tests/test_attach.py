"""Attach to a host's tmux through the system ssh, driven through a real pty.

A real tmux server on the sshd "host" (its own socket directory); ``nomadlab attach``
and the TUI's ``a`` -> ``enter`` both run ``ssh -t ... tmux attach``; detaching with
C-b d comes back (to the shell, or to the same fleet screen).
"""

from __future__ import annotations

import fcntl
import os
import pty
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from sshd import SshServer
from test_cli import host_block, nomadlab, write_config

from nomadlab.core.config import HostConfig, SshSettings
from nomadlab.remote.attach import ssh_argv, tmux_command

pytestmark = pytest.mark.sshd

MARKER = "MARKER-4242"


class Terminal:
    """A program on a pty of 120x40: keys in, screen bytes out (bounded reads)."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # the child: exec at once
            os.execvpe(argv[0], argv, env)
        self.pid, self.fd = pid, fd
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
        self.output = bytearray()
        self.status: int | None = None

    def expect(self, text: str, timeout: float = 30.0, after: int = 0) -> int:
        """Read until ``text`` appears after offset ``after``; its end offset."""
        needle = text.encode()
        deadline = time.monotonic() + timeout
        while True:
            at = self.output.find(needle, after)
            if at >= 0:
                return at + len(needle)
            left = deadline - time.monotonic()
            if left <= 0:
                tail = bytes(self.output[-1500:]).decode("utf-8", "replace")
                raise AssertionError(f"{text!r} never appeared; last output: {tail!r}")
            ready, _, _ = select.select([self.fd], [], [], min(left, 0.5))
            if ready:
                try:
                    data = os.read(self.fd, 65536)
                except OSError:
                    data = b""
                if not data:
                    tail = bytes(self.output[-1500:]).decode("utf-8", "replace")
                    raise AssertionError(f"{text!r} never appeared before EOF: {tail!r}")
                self.output.extend(data)

    def send(self, data: bytes) -> None:
        os.write(self.fd, data)

    def press_until(self, data: bytes, text: str, after: int = 0, tries: int = 6) -> int:
        """Send keys until ``text`` appears: keys typed while a program is still
        switching the terminal to raw mode can be flushed away, so try again (bounded)."""
        for attempt in range(tries):
            self.send(data)
            try:
                return self.expect(text, timeout=5.0, after=after)
            except AssertionError:
                if attempt == tries - 1:
                    raise
        raise AssertionError("unreachable")

    def wait(self, timeout: float = 30.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready, _, _ = select.select([self.fd], [], [], 0.2)
            if ready:
                try:
                    self.output.extend(os.read(self.fd, 65536))
                except OSError:
                    pass
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
                return self.status
        raise AssertionError("the program did not end")

    def close(self) -> None:
        if self.status is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
                os.waitpid(self.pid, 0)
            except (ProcessLookupError, ChildProcessError):
                pass
        os.close(self.fd)


@pytest.fixture
def tmux_host(make_sshd: Callable[..., SshServer], tmp_path: Path) -> Iterator[SshServer]:
    if shutil.which("tmux") is None or shutil.which("ssh") is None:
        pytest.skip("tmux and the ssh client are needed")
    tmux_dir = tmp_path / "tmux"
    tmux_dir.mkdir()
    env = {**os.environ, "TMUX_TMPDIR": str(tmux_dir)}
    server = make_sshd({"TMUX_TMPDIR": str(tmux_dir)})
    server.write_known_hosts(server.base / "known_hosts")
    subprocess.run(["tmux", "new-session", "-d", "-s", "train-7", "-x", "100", "-y", "30",
                    f"echo {MARKER}; exec sh"], env=env, check=True, timeout=10)
    server.tmux_env = env  # type: ignore[attr-defined]
    yield server
    subprocess.run(["tmux", "kill-server"], env=env, capture_output=True, check=False,
                   timeout=10)


def term_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(TERM="xterm-256color", COLUMNS="120", LINES="40")
    env.pop("TMUX_TMPDIR", None)
    return env


def test_ssh_argv_keeps_the_host_key_rules(tmp_path: Path) -> None:
    host = HostConfig("gpu", "10.0.0.5", user="ann", port=2222, identity_file="/k/id",
                      known_hosts=str(tmp_path / "kh"), jump="bastion")
    bastion = HostConfig("bastion", "bastion.example", user="jo", port=22)
    argv = ssh_argv(host, SshSettings(), "run 1; rm -rf /", {"bastion": bastion})
    assert argv[:2] == ["ssh", "-t"]
    assert f"UserKnownHostsFile={tmp_path / 'kh'}" in argv
    assert "StrictHostKeyChecking=yes" in argv
    assert argv[argv.index("-p") + 1] == "2222" and argv[argv.index("-l") + 1] == "ann"
    proxy = next(a for a in argv if a.startswith("ProxyCommand="))
    assert "-W %h:%p" in proxy and "jo" in proxy and "bastion.example" in proxy
    assert "StrictHostKeyChecking=yes" in proxy
    assert argv[-3:] == ["--", "10.0.0.5", "tmux attach-session -t '=run 1; rm -rf /'"]
    assert tmux_command(None) == "tmux attach-session 2>/dev/null || tmux new-session"


def test_cli_attach_and_detach(tmux_host: SshServer, isolated_home: Path) -> None:
    write_config(isolated_home, host_block(tmux_host, "gpu1"))
    term = Terminal([sys.executable, "-m", "nomadlab", "attach", "gpu1", "train-7"], term_env())
    try:
        at = term.expect(MARKER)  # tmux drew the session's window
        term.press_until(b"\x02d", "[detached", after=at)  # C-b d
        assert term.wait() == 0
    finally:
        term.close()


def test_cli_attach_refusals(isolated_home: Path, tmp_path: Path) -> None:
    config = write_config(isolated_home, "")
    unknown = nomadlab("attach", "nope")
    assert unknown.returncode == 2 and "unknown host 'nope'" in unknown.stderr
    assert "Traceback" not in unknown.stderr
    config.write_text(config.read_text().replace('interval = "0.5s"',
                                                 'interval = "0.5s"\nread_only = true'))
    locked = nomadlab("attach", "nope")
    assert locked.returncode == 2 and "read-only" in locked.stderr


def test_tui_attach_detach_returns_to_the_fleet(tmux_host: SshServer,
                                                isolated_home: Path) -> None:
    write_config(isolated_home, host_block(tmux_host, "gpu1"))
    term = Terminal([sys.executable, "-m", "nomadlab"], term_env())
    try:
        term.expect("Workspace")
        term.send(b"1")
        at = term.expect("Hosts and GPUs")
        # The host connected (the header's count; a bare "live" would also match
        # "0/1 hosts live" while the connection, started after the first frame, is
        # still in flight, and `a` would then rightly say "gpu1 is not connected").
        at = term.expect("1/1 hosts live", after=at)
        term.send(b"a")
        at = term.expect("train-7", after=at)
        term.send(b"\r")
        at = term.expect(MARKER, after=at)  # in tmux, nomadlab suspended
        detached = term.press_until(b"\x02d", "[detached", after=at)  # C-b d
        term.expect("Back from tmux", after=detached)  # nomadlab is back...
        term.expect("Hosts and GPUs", after=detached)  # ...repainted, on the fleet screen
        term.send(b"q")
        term.wait()
    finally:
        term.close()
    listed = subprocess.run(["tmux", "list-sessions", "-F", "#{session_name}"],
                            env=tmux_host.tmux_env,  # type: ignore[attr-defined]
                            capture_output=True, text=True, check=True, timeout=10)
    assert listed.stdout.split() == ["train-7"]  # detached, not ended
