"""Helpers shared by the benchmark scripts: CPU accounting from /proc, a pty runner,
and the header every script prints (what machine, what else is running on it).

Not a benchmark itself. Linux only (/proc, ptys).
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import os
import platform
import shutil
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TESTS = ROOT / "tests"
HZ = os.sysconf("SC_CLK_TCK")


# --------------------------------------------------------------------------- /proc


def proc_stat(pid: int) -> tuple[str, int, int] | None:
    """(comm, ppid, utime + stime in clock ticks) of a live process, or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    head, _, tail = raw.rpartition(b")")
    comm = head.partition(b"(")[2].decode("utf-8", "replace")
    fields = tail.split()
    # tail starts at field 3 (state): ppid is field 4, utime 14, stime 15.
    return comm, int(fields[1]), int(fields[11]) + int(fields[12])


def all_processes() -> dict[int, tuple[str, int, int]]:
    out: dict[int, tuple[str, int, int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = proc_stat(int(entry))
            if st is not None:
                out[int(entry)] = st
    return out


def tree(root: int, procs: Mapping[int, tuple[str, int, int]] | None = None) -> list[int]:
    """``root`` and every live descendant of it."""
    procs = all_processes() if procs is None else procs
    children: dict[int, list[int]] = {}
    for pid, (_, ppid, _) in procs.items():
        children.setdefault(ppid, []).append(pid)
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        if pid in procs:
            found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def tree_ticks(root: int) -> int:
    procs = all_processes()
    return sum(procs[p][2] for p in tree(root, procs))


def cpu_ns(pid: int) -> int:
    """Nanoseconds on a CPU of every live thread of ``pid`` (/proc/PID/task/*/schedstat)."""
    total = 0
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0
    for tid in tids:
        try:
            total += int(Path(f"/proc/{pid}/task/{tid}/schedstat").read_bytes().split()[0])
        except (OSError, ValueError, IndexError):
            continue
    return total


def tree_cpu_ns(root: int) -> int:
    """:func:`cpu_ns` summed over ``root`` and its live descendants: precise, but blind
    to processes that ended in between (use it where none do)."""
    return sum(cpu_ns(p) for p in tree(root))


CPU_FIELDS = ("user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal")


def system_ticks() -> tuple[int, ...]:
    """The machine's jiffies, summed over all CPUs, in the order of CPU_FIELDS."""
    with open("/proc/stat", "rb") as f:
        return tuple(int(v) for v in f.readline().split()[1:9])


def busy(ticks: tuple[int, ...]) -> int:
    return sum(ticks) - ticks[3] - ticks[4]


@dataclass
class MachineSnapshot:
    """Everything needed to say, for a window, who used the CPUs."""

    wall: float = field(default_factory=time.monotonic)
    system: tuple[int, ...] = field(default_factory=system_ticks)
    procs: dict[int, tuple[str, int, int]] = field(default_factory=all_processes)


def sharing_report(before: MachineSnapshot, after: MachineSnapshot,
                   ours: Mapping[str, Iterable[int]], top: int = 4) -> list[str]:
    """Lines saying how busy the machine was over the window and who else ran.

    ``ours`` names groups of pids (each with its descendants) that belong to the
    benchmark; everything else is "the rest of the machine". A pid counts in the first
    group that names it or an ancestor of it."""
    seconds = max(after.wall - before.wall, 1e-9)
    used = (busy(after.system) - busy(before.system)) / HZ
    kinds = ", ".join(f"{name} {(a - b) / HZ / seconds:.2f}"
                      for name, a, b in zip(CPU_FIELDS, after.system, before.system,
                                            strict=True)
                      if name not in ("idle", "iowait") and a != b)
    lines = [f"machine: {os.cpu_count()} cores; busy {used / seconds:.2f} cores on average "
             f"over the {seconds:.0f} s window ({kinds})"]
    claimed: set[int] = set()
    parts = []
    for name, roots in ours.items():
        pids: set[int] = set()
        for root in roots:
            pids.update(tree(root, after.procs))
            pids.update(tree(root, before.procs))
        pids -= claimed  # a group counts only what earlier groups did not claim
        claimed |= pids
        used = sum(_delta(before, after, p) for p in pids)
        parts.append(f"{name} {100 * used / HZ / seconds:.1f} %")
    others = sorted(((_delta(before, after, p), p) for p in after.procs if p not in claimed),
                    reverse=True)
    rest = sum(d for d, _ in others)
    parts.append(f"other processes {100 * rest / HZ / seconds:.1f} %")
    seen = sum(_delta(before, after, p) for p in after.procs)
    gone = (busy(after.system) - busy(before.system)) - seen
    parts.append(f"unattributed (processes that ended within the window, interrupts) "
                 f"{100 * max(gone, 0) / HZ / seconds:.1f} %")
    lines.append("  CPU by group (% of one core): " + ", ".join(parts))
    shown = [f"{after.procs[p][0]}[{p}] {100 * d / HZ / seconds:.1f} %"
             for d, p in others[:top] if d > 0]
    if shown:
        lines.append("  busiest other processes: " + ", ".join(shown))
    return lines


def _delta(before: MachineSnapshot, after: MachineSnapshot, pid: int) -> int:
    now = after.procs.get(pid)
    if now is None:
        return 0
    then = before.procs.get(pid)
    if then is None or then[0] != now[0]:
        return now[2]  # started during the window
    return now[2] - then[2]


def wait_for_quiet(limit: float, threshold: float = 0.3, every: float = 3.0) -> str:
    """Wait (at most ``limit`` seconds) until the machine is busy less than
    ``threshold`` cores over ``every`` seconds; says what it found (for the output)."""
    if limit <= 0:
        return ""
    deadline = time.monotonic() + limit
    while True:
        before = system_ticks()
        time.sleep(every)
        load = (busy(system_ticks()) - busy(before)) / HZ / every
        if load < threshold:
            return f"machine quiet ({load:.2f} cores busy) before this run"
        if time.monotonic() >= deadline:
            return (f"machine still busy ({load:.2f} cores) after waiting {limit:.0f} s: "
                    f"measured anyway")


def git_state() -> str:
    """Where the nomadlab under test is imported from, and its commit when that is
    this repository (run against a fixed copy with PYTHONPATH=<copy>)."""
    import importlib.util

    spec = importlib.util.find_spec("nomadlab")
    where = Path(spec.origin).resolve().parent if spec and spec.origin else None
    if where is None:
        return "not importable"
    if where.parent != ROOT:
        return f"imported from {where}"

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(ROOT), *args], check=False,
                                  capture_output=True, text=True, timeout=10).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    commit = git("rev-parse", "--short", "HEAD") or "unknown commit"
    dirty = git("status", "--porcelain", "--", "nomadlab")
    return (f"{where}, commit {commit}"
            + (" with uncommitted changes in nomadlab/" if dirty else ""))


def header(title: str, argv: Sequence[str] = ()) -> None:
    load = os.getloadavg()
    try:
        model = next(line.split(":", 1)[1].strip()
                     for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor() or "?"
    print(f"== {title}")
    print(f"date: {datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}; "
          f"python {platform.python_version()}; {platform.system()} {platform.release()}")
    print(f"cpu: {os.cpu_count()} x {model}; load average before start "
          f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    print(f"nomadlab: {git_state()}")
    if argv:
        print("command: " + " ".join(argv))
    sys.stdout.flush()


# --------------------------------------------------------------------------- pty


class PtyProcess:
    """A program in a pty of its own (its own session: killed as a process group).

    A thread reads the master side continuously and records (time, bytes) for every
    read, so byte counts can be taken over any window afterwards."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str], *, cols: int = 160,
                 rows: int = 48, cwd: str | None = None, keep: bool = False) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        attrs = termios.tcgetattr(slave)
        attrs[3] &= ~termios.ECHO  # what we type ("1") is not echoed back as output
        termios.tcsetattr(slave, termios.TCSANOW, attrs)

        # util-linux setsid: a new session whose controlling terminal is this pty (as in
        # a terminal emulator); it execs the program, so the pid is the program's.
        setsid = shutil.which("setsid")
        command = [setsid, "--ctty", *argv] if setsid else list(argv)
        self.proc = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave,
                                     env=dict(env), cwd=cwd, start_new_session=not setsid,
                                     close_fds=True)
        os.close(slave)
        self.reads: list[tuple[float, int]] = []
        self.total = 0
        self.tail = bytearray()
        self.data: bytearray | None = bytearray() if keep else None  # everything read
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 1 << 16)
            except OSError:  # EIO: every slave fd is closed
                return
            if not data:
                return
            now = time.monotonic()
            with self._lock:
                self.reads.append((now, len(data)))
                self.total += len(data)
                self.tail.extend(data)
                del self.tail[:-8192]
                if self.data is not None:
                    self.data.extend(data)

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def bytes_between(self, start: float, end: float) -> int:
        with self._lock:
            return sum(n for t, n in self.reads if start <= t < end)

    def bursts_between(self, start: float, end: float, gap: float = 0.005) -> int:
        """Groups of reads less than ``gap`` apart: about one per frame the program
        wrote (the pty hands a big write over in 4 kB reads)."""
        with self._lock:
            times = [t for t, _ in self.reads if start <= t < end]
        return sum(1 for i, t in enumerate(times) if i == 0 or t - times[i - 1] > gap)

    def stop(self, grace: float = 5.0) -> int | None:
        """SIGTERM the process group, then SIGKILL; returns the exit status."""
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            if self.proc.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(wait)
        # Anything left in the group (children of the program) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self._thread.join(2.0)
        with contextlib.suppress(OSError):
            os.close(self.master)
        return self.proc.poll()


def leftovers(pgids: Iterable[int]) -> list[int]:
    """Live processes in any of these process groups (should be none at the end)."""
    wanted = set(pgids)
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.getpgid(int(entry)) in wanted:
                found.append(int(entry))
        except ProcessLookupError:
            continue
    return found


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of unsorted values; nan when empty."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[min(len(ordered), int(rank)) - 1]


def isolated_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment for a program under test: its own HOME and XDG dirs, no agent."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("SSH_AUTH_SOCK", "NOMADLAB_CONFIG", "TMUX", "SSH_CONNECTION",
                        "TEXTUAL_FPS", "TEXTUAL", "COLORTERM", "NO_COLOR")}
    home.mkdir(parents=True, exist_ok=True)
    env.update({
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "XDG_DATA_HOME": str(home / ".local" / "share"),
        "XDG_STATE_HOME": str(home / ".local" / "state"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        "TERM": "xterm-256color",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    })
    env.update(extra)
    return env
