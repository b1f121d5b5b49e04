"""The host itself, read from /proc: CPU, RAM and load, and who runs a pid."""

import os
from typing import Dict, Iterable, Optional, Tuple

from .wire import MAX_COMMAND

# --------------------------------------------------------------------------- host stats


class HostStats(object):
    """CPU %, RAM and load from /proc (Linux); None where /proc is missing."""

    def __init__(self, proc_root: str = "/proc") -> None:
        self.root = proc_root
        self._prev: Optional[Tuple[int, int]] = None

    def _cpu_times(self) -> Tuple[int, int]:
        with open(os.path.join(self.root, "stat"), "rb") as f:
            first = f.readline().split()
        values = [int(v) for v in first[1:]]
        idle = values[3] + (values[4] if len(values) > 4 else 0)
        return idle, sum(values[:8])

    def sample(self) -> Dict[str, Optional[float]]:
        out: Dict[str, Optional[float]] = {
            "cpu": None, "ram_used": None, "ram_total": None, "load1": None}
        try:
            idle, total = self._cpu_times()
            if self._prev is not None:
                d_total = total - self._prev[1]
                d_idle = idle - self._prev[0]
                if d_total > 0:
                    out["cpu"] = round(100.0 * (d_total - d_idle) / d_total, 1)
            self._prev = (idle, total)
        except (OSError, ValueError, IndexError):
            pass
        try:
            info: Dict[bytes, float] = {}
            with open(os.path.join(self.root, "meminfo"), "rb") as f:
                for raw in f:
                    key, _, rest = raw.partition(b":")
                    if key in (b"MemTotal", b"MemAvailable", b"MemFree"):
                        info[key] = int(rest.split()[0]) / 1024.0
            total_mib = info.get(b"MemTotal")
            avail = info.get(b"MemAvailable", info.get(b"MemFree"))
            if total_mib is not None and avail is not None:
                out["ram_total"] = round(total_mib, 1)
                out["ram_used"] = round(total_mib - avail, 1)
        except (OSError, ValueError, IndexError):
            pass
        try:
            out["load1"] = round(os.getloadavg()[0], 2)
        except (OSError, AttributeError):
            pass
        return out


# --------------------------------------------------------------------------- processes


class ProcessNames(object):
    """pid -> (user, command line), read through /proc and cached while the pid lives."""

    def __init__(self, proc_root: str = "/proc") -> None:
        self.root = proc_root
        self._cache: Dict[int, Tuple[str, str]] = {}

    def _read(self, pid: int) -> Tuple[str, str]:
        base = os.path.join(self.root, str(pid))
        user = "?"
        command = ""
        try:
            with open(os.path.join(base, "status"), "rb") as f:
                for raw in f:
                    if raw.startswith(b"Uid:"):
                        uid = int(raw.split()[1])
                        try:
                            import pwd

                            user = pwd.getpwuid(uid).pw_name
                        except (ImportError, KeyError):
                            user = str(uid)
                        break
        except (OSError, ValueError, IndexError):
            pass
        try:
            with open(os.path.join(base, "cmdline"), "rb") as f:
                raw = f.read(4096)
            command = raw.replace(b"\0", b" ").strip().decode("utf-8", "replace")
            if not command:
                with open(os.path.join(base, "comm"), "rb") as f:
                    command = "[" + f.read(64).strip().decode("utf-8", "replace") + "]"
        except OSError:
            pass
        if len(command) > MAX_COMMAND:
            command = command[: MAX_COMMAND - 1] + "\u2026"
        return user, command

    def lookup(self, pids: Iterable[int]) -> Dict[int, Tuple[str, str]]:
        """Return {pid: (user, command)} and forget pids no longer asked for."""
        result: Dict[int, Tuple[str, str]] = {}
        for pid in pids:
            hit = self._cache.get(pid)
            if hit is None:
                hit = self._read(pid)
                self._cache[pid] = hit
            result[pid] = hit
        for gone in [p for p in self._cache if p not in result]:
            del self._cache[gone]
        return result


# --------------------------------------------------------------------------- GPU sources


def which(name: str) -> Optional[str]:
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        path = os.path.join(directory, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None
