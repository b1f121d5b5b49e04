"""A real terminal for tests: a command on a pseudo-terminal, its screen read through
pyte (a VT100 emulator), keys written as a user's terminal writes them.

Every wait is bounded by a deadline and ends as soon as the screen shows what the
test waits for; nothing sleeps for a fixed time.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pyte

KEYS = {
    "enter": b"\r", "tab": b"\t", "escape": b"\x1b", "backspace": b"\x7f",
    "up": b"\x1b[A", "down": b"\x1b[B", "right": b"\x1b[C", "left": b"\x1b[D",
    "home": b"\x1b[H", "end": b"\x1b[F", "ctrl+c": b"\x03", "ctrl+u": b"\x15",
}


class PtyTerm:
    """``argv`` running on a ``cols`` x ``rows`` pseudo-terminal."""

    def __init__(self, argv: Sequence[str], *, env: dict[str, str], cols: int = 120,
                 rows: int = 36, cwd: str | Path | None = None) -> None:
        self.cols, self.rows = cols, rows
        self.screen = pyte.Screen(cols, rows)
        self.stream = pyte.ByteStream(self.screen)
        self.raw = bytearray()
        self.status: int | None = None
        env = {**env, "TERM": "xterm-256color", "COLUMNS": str(cols), "LINES": str(rows)}
        pid, fd = pty.fork()
        if pid == 0:  # the child: the pty is its terminal
            try:
                fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
                if cwd is not None:
                    os.chdir(cwd)
                os.execvpe(argv[0], list(argv), env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd

    # ------------------------------------------------------------------ output

    def _read(self, timeout: float) -> bool:
        """Read what is there (waiting at most ``timeout``); False at end of output."""
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not ready:
            return True
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            return False
        if not data:
            return False
        self.raw += data
        self.stream.feed(data)
        return True

    def text(self) -> str:
        return "\n".join(self.screen.display)

    def wait_for(self, predicate: Callable[[str], bool] | str, timeout: float = 60.0,
                 what: str = "") -> str:
        """Read until ``predicate(screen text)`` (or the text appears on screen)."""
        check = (lambda t: predicate in t) if isinstance(predicate, str) else predicate
        deadline = time.monotonic() + timeout
        while True:
            screen = self.text()
            if check(screen):
                return screen
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._read(min(0.5, remaining)):
                if remaining > 0:
                    # End of output: the child closed the terminal as it exits, a
                    # moment before waitpid can see it gone. Wait for that moment so
                    # a predicate asking "has it exited?" is answered truly.
                    self._reap(min(10.0, remaining))
                if check(self.text()):
                    return self.text()
                raise AssertionError(
                    f"the terminal never showed {what or predicate!r}; exit status "
                    f"{self.poll()}; screen:\n{self.text()}\n--- output tail:\n"
                    f"{bytes(self.raw[-3000:]).decode('utf-8', 'replace')}")

    # ------------------------------------------------------------------ input

    def send(self, data: bytes | str) -> None:
        os.write(self.fd, data.encode() if isinstance(data, str) else data)

    def press(self, *keys: str) -> None:
        for key in keys:
            self.send(KEYS.get(key, key.encode()))

    # ------------------------------------------------------------------ exit

    def poll(self) -> int | None:
        if self.status is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.status = os.waitstatus_to_exitcode(status)
        return self.status

    def _reap(self, timeout: float) -> None:
        """Wait (at most ``timeout``) for the child to exit, without reading."""
        if self.poll() is not None:
            return
        pidfd = os.pidfd_open(self.pid)  # readable once the child has exited
        try:
            select.select([pidfd], [], [], timeout)
        finally:
            os.close(pidfd)
        self.poll()

    def wait_exit(self, timeout: float = 30.0) -> int:
        """The exit status, reading the output meanwhile (a full pty blocks the child)."""
        deadline = time.monotonic() + timeout
        while self.poll() is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"still running after {timeout:.0f} s; screen:\n"
                                     f"{self.text()}")
            if not self._read(min(0.2, remaining)):
                with contextlib.suppress(OSError):
                    _, status = os.waitpid(self.pid, 0)
                    self.status = os.waitstatus_to_exitcode(status)
        with contextlib.suppress(OSError):  # what was left in the pty
            while self._read(0):
                pass
        assert self.status is not None
        return self.status

    def output(self) -> str:
        return bytes(self.raw).decode("utf-8", "replace")

    def close(self) -> None:
        if self.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
        with contextlib.suppress(OSError):
            os.close(self.fd)

    def __enter__(self) -> PtyTerm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# The hog's loop. It spins, and measures what share of a CPU its spinning got: at most
# N/(N+2) on N CPUs means at least N+1 other tasks want to run, so the machine is
# overloaded without the hog (e.g. the rest of the suite on the other xdist workers);
# then it rests, probing now and then, and spins again as soon as there is room. So
# the machine is always busy, and the hog adds no load where there is already too much
# (in a full run on 2 cores, a plain busy loop took ~25 s of CPU from the other tests).
_HOG = """
import os, time
SPIN, PROBE, REST = 0.2, 0.05, 0.3
CROWDED = (os.cpu_count() or 1) / ((os.cpu_count() or 1) + 2)
def spin(seconds):
    start, cpu = time.monotonic(), time.process_time()
    while time.monotonic() - start < seconds:
        pass
    return (time.process_time() - cpu) / (time.monotonic() - start)
while True:
    if spin(SPIN) <= CROWDED:
        while True:
            time.sleep(REST)
            if spin(PROBE) > CROWDED:
                break
"""


class CpuHog:
    """A busy loop in a child process: a loaded machine, as where the races show. It
    keeps every CPU busy, and steps back only while the machine is overloaded without
    it (see _HOG)."""

    def __init__(self) -> None:
        self.process = subprocess.Popen([sys.executable, "-c", _HOG])

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)

    def __enter__(self) -> CpuHog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def nomadlab_argv(*args: str) -> list[str]:
    """The installed ``nomadlab`` script next to this interpreter, as a user runs it."""
    script = Path(sys.executable).with_name("nomadlab")
    return [str(script), *args]
