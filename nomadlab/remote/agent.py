"""The nomadlab sampling agent: the one piece of nomadlab that runs ON a GPU host.

Rules for this file (checked by a test with vermin):
- standard library only, Python >= 3.8 (no f-string '=' specifiers, no walrus, no
  ``list[int]`` or ``X | None`` annotations: function annotations are evaluated at
  definition time on 3.8, so they use ``typing.List`` / ``Optional``);
- it is shipped to the host over SSH on stdin and exec'd by a tiny bootstrap, together
  with the source of the client's installed nvidia-ml-py binding (pynvml), so nothing
  has to be installed on the host;
- it writes one JSON object per line to stdout: first a ``hello``, then one ``sample``
  per interval;
- it ends itself when stdin reaches EOF, when a write fails, or when no heartbeat line
  arrived for a while: sshd does not kill a command when its channel closes.

The same classes are imported in-process by the client (local machine, demo server,
tests), so there is exactly one implementation of "turn NVML into a sample".
"""

import json
import os
import socket
import subprocess
import sys
import threading
import time
from typing import (
    IO,
    Any,
    Callable,
    Dict,
    Iterable,
    List,
    NoReturn,
    Optional,
    Set,
    Tuple,
    Union,
)

# The wire format is JSON: one dict per message, one dict per GPU in it.
Message = Dict[str, Any]
GpuDict = Dict[str, Any]
# (timestamp, gpu uuid, pid, process name, used MiB) from one nvidia-smi app line.
AppRow = Tuple[str, str, int, str, Optional[float]]

AGENT_VERSION = 1
NO_PYTHON_MARKER = "NOMADLAB-NO-PYTHON"

# Fields asked of nvidia-smi, in this order, when NVML cannot be used.
SMI_GPU_FIELDS = (
    "index",
    "name",
    "uuid",
    "utilization.gpu",
    "memory.used",
    "memory.total",
    "temperature.gpu",
    "power.draw",
    "power.limit",
)
SMI_APP_FIELDS = ("timestamp", "gpu_uuid", "pid", "process_name", "used_memory")
# Health fields nvidia-smi can give (no XID, no energy, no MIG instances). The first
# one is "clocks_event_reasons.active" on current drivers and, when that is refused,
# "clocks_throttle_reasons.active" on older ones.
SMI_HEALTH_FIELDS = (
    "index", "clocks_event_reasons.active", "clocks.sm", "clocks.max.sm", "clocks.mem",
    "clocks.max.mem", "pcie.link.gen.current", "pcie.link.width.current",
    "pcie.link.gen.max", "pcie.link.width.max", "ecc.mode.current",
    "ecc.errors.corrected.volatile.total", "ecc.errors.uncorrected.volatile.total",
    "ecc.errors.corrected.aggregate.total", "ecc.errors.uncorrected.aggregate.total",
    "remapped_rows.correctable", "remapped_rows.uncorrectable", "remapped_rows.pending",
    "remapped_rows.failure", "retired_pages.single_bit_ecc.count",
    "retired_pages.double_bit.count", "retired_pages.pending", "persistence_mode",
    "compute_mode",
)
SMI_COMPUTE_MODES = {"default": 0, "exclusive_thread": 1, "prohibited": 2,
                     "exclusive_process": 3}

MAX_COMMAND = 240  # characters of a process command line sent to the client


# --------------------------------------------------------------------------- helpers


def _num(text: str) -> Optional[float]:
    """nvidia-smi field -> float, or None for [N/A], [Not Supported], blanks."""
    text = text.strip()
    if not text or text.startswith("[") or text.upper() in ("N/A", "NA"):
        return None
    # Strip units when --format had no "nounits" (e.g. "81559 MiB", "69.21 W").
    head = text.split(" ", 1)[0].rstrip("%")
    try:
        return float(head)
    except ValueError:
        return None


def _round(value: Optional[float], digits: int = 1) -> Optional[float]:
    if value is None:
        return None
    return round(value, digits)


def parse_smi_gpu_line(line: str) -> Optional[GpuDict]:
    """One line of ``--query-gpu=SMI_GPU_FIELDS --format=csv,noheader,nounits``.

    Returns a gpu dict (the sample wire format) or None for a line that is not one.
    """
    parts = [p.strip() for p in line.split(",")]
    if len(parts) != len(SMI_GPU_FIELDS):
        return None
    index = _num(parts[0])
    if index is None:
        return None
    return {
        "i": int(index),
        "name": parts[1],
        "uuid": parts[2],
        "util": _num(parts[3]),
        "mu": _num(parts[4]),
        "mt": _num(parts[5]),
        "temp": _num(parts[6]),
        "pw": _num(parts[7]),
        "pl": _num(parts[8]),
        "procs": [],
    }


def _smi_int(text: str) -> Optional[int]:
    value = _num(text)
    return None if value is None else int(value)


def _smi_flag(text: str) -> Optional[int]:
    word = text.strip().lower()
    if word in ("yes", "enabled", "on", "1"):
        return 1
    if word in ("no", "disabled", "off", "0"):
        return 0
    return None


def parse_smi_health_line(line: str) -> Optional[Tuple[int, GpuDict]]:
    """One line of ``--query-gpu=SMI_HEALTH_FIELDS --format=csv,noheader,nounits``:
    (GPU index, the ``h`` dict without throttle ages) or None."""
    parts = [p.strip() for p in line.split(",")]
    if len(parts) != len(SMI_HEALTH_FIELDS):
        return None
    index = _smi_int(parts[0])
    if index is None:
        return None
    try:
        mask = int(parts[1], 16) if parts[1].lower().startswith("0x") else None
    except ValueError:
        mask = None
    ints = [_smi_int(p) for p in parts]
    rows = [ints[15], ints[16], _smi_flag(parts[17]), _smi_flag(parts[18])]
    pages = [ints[19], ints[20], _smi_flag(parts[21])]
    ecc = [_smi_flag(parts[10]), *ints[11:15]]
    mode = SMI_COMPUTE_MODES.get(parts[23].strip().lower())
    return index, {
        "thr": mask,
        "clk": ints[2:6] if any(v is not None for v in ints[2:6]) else None,
        "pcie": ints[6:10] if any(v is not None for v in ints[6:10]) else None,
        "ecc": ecc if any(v is not None for v in ecc) else None,
        "rows": rows if any(v is not None for v in rows) else None,
        "pages": pages if any(v is not None for v in pages) else None,
        "nvl": None,
        "pm": _smi_flag(parts[22]),
        "cm": mode,
        "e": None,
        "mig": None,
        "xid": None,
    }


def parse_smi_app_line(line: str) -> Optional[AppRow]:
    """One line of ``--query-compute-apps=SMI_APP_FIELDS --format=csv,noheader,nounits``.

    Returns (timestamp, gpu_uuid, pid, name, memory_mib) or None.
    """
    parts = [p.strip() for p in line.split(",")]
    if len(parts) < len(SMI_APP_FIELDS):
        return None
    # A process name may itself contain commas: everything between pid and the last
    # field belongs to it.
    stamp, uuid, pid_text = parts[0], parts[1], parts[2]
    memory = _num(parts[-1])
    name = ",".join(parts[3:-1])
    try:
        pid = int(pid_text)
    except ValueError:
        return None
    return stamp, uuid, pid, name, memory


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


class NoGpu(object):
    kind = "none"

    def __init__(self, reason: str) -> None:
        self.reason: Optional[str] = reason
        self.driver: Optional[str] = None

    def inventory(self) -> List[GpuDict]:
        return []

    def sample(self) -> List[GpuDict]:
        return []

    def close(self) -> None:
        pass


def _none(*args: Any) -> None:
    return None


def _decode(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


# --------------------------------------------------------------------------- GPU health

# nvmlClocksEventReasons bits (nvml.h); "GPU idle" and the application clock settings
# are not problems and are left out of the wire's decoded list by the client.
CLOCK_REASON_BITS = (0x1, 0x2, 0x4, 0x8, 0x10, 0x20, 0x40, 0x80, 0x100)
XID_EVENT = 0x8  # nvmlEventTypeXidCriticalError
MAX_XIDS = 64  # XID events kept per GPU (the newest)
SLOW_EVERY = 30  # ECC, row remapping, NVLink, modes, energy: read every N samples
NVLINK_LINKS = 18  # NVML_NVLINK_MAX_LINKS


class NvmlHealth(object):
    """Health fields of each GPU (the ``h`` dict of a sample's gpu) through NVML.

    Every call is guarded: what the driver or GPU does not have is ``None``. XID
    critical errors are waited for in a thread on an NVML event set, so none is missed
    between samples; each sample carries every XID seen since the agent started.
    """

    def __init__(self, nvml: Any, handles: List[Any], *, every: int = SLOW_EVERY,
                 monotonic: Callable[[], float] = time.monotonic,
                 wall: Callable[[], float] = time.time, thread: bool = True) -> None:
        """``every``: slow fields every N samples; ``monotonic``/``wall``: clocks;
        ``thread``: wait for XIDs in a thread (False: drain the event set at each
        sample, for a simulation that must be reproducible)."""
        self.nv = nvml
        self.handles = handles
        self.every = max(1, int(every))
        self.monotonic = monotonic
        self.wall = wall
        self.thread = thread
        self._event_set: Any = None
        self._lock = threading.Lock()
        self._xids: Dict[int, List[List[float]]] = {}
        self._xid_ok = False
        self._stop = threading.Event()
        self._since: Dict[Tuple[int, int], float] = {}  # (gpu, reason bit) -> first seen
        self._slow: Dict[int, GpuDict] = {}
        self._pcie_now: Dict[int, List[Any]] = {}
        self._fns: Dict[str, Any] = {}
        self._unsupported: Set[Tuple[str, Any]] = set()
        self._gpu_of: Dict[int, int] = dict((id(h), i) for i, h in enumerate(handles))
        self._links: Dict[int, List[int]] = {}  # GPU -> the NVLinks it has
        self._count = 0
        self._thread: Optional[threading.Thread] = None
        self._start_xid_thread()

    def _try(self, fn: Any, *args: Any) -> Any:
        if fn is None:
            return None
        # Only calls on one of our GPU handles (kept alive in self.handles) are remembered.
        if self._unsupported and args and (
                getattr(fn, "__name__", ""), self._gpu_of.get(id(args[0]))) in self._unsupported:
            return None
        try:
            return fn(*args)
        except Exception as exc:  # NVMLError_NotSupported, FunctionNotFound, GPU lost, ...
            # What the driver or GPU does not have, it will not have later: stop asking.
            gpu = self._gpu_of.get(id(args[0])) if args else None
            if gpu is not None and type(exc).__name__ in (
                    "NVMLError_NotSupported", "NVMLError_FunctionNotFound"):
                self._unsupported.add((getattr(fn, "__name__", ""), gpu))
            return None

    def _fn(self, *names: str) -> Any:
        for name in names:
            fn = self._fns.get(name, self)
            if fn is self:
                fn = self._fns[name] = getattr(self.nv, name, None)
            if fn is not None:
                return fn
        return None

    # ---------------------------------------------------------------- XID thread

    def _start_xid_thread(self) -> None:
        create = self._fn("nvmlEventSetCreate")
        register = self._fn("nvmlDeviceRegisterEvents")
        if create is None or register is None:
            return
        event_set = self._try(create)
        if event_set is None:
            return
        registered = 0
        for handle in self.handles:
            try:
                register(handle, XID_EVENT, event_set)
                registered += 1
            except Exception:
                pass
        if not registered:
            self._try(self._fn("nvmlEventSetFree"), event_set)
            return
        self._xid_ok = True
        if not self.thread:
            self._event_set = event_set
            return
        t = threading.Thread(target=self._wait_xids, args=(event_set,))
        t.daemon = True
        t.start()
        self._thread = t

    def _index_of(self, device: Any) -> Optional[int]:
        index = self._try(self._fn("nvmlDeviceGetIndex"), device)
        if index is not None:
            return int(index)
        try:
            import ctypes

            want = ctypes.cast(device, ctypes.c_void_p).value
            for i, handle in enumerate(self.handles):
                if ctypes.cast(handle, ctypes.c_void_p).value == want:
                    return i
        except Exception:
            pass
        return None

    def _wait_xids(self, event_set: Any) -> None:
        wait = self._fn("nvmlEventSetWait_v2", "nvmlEventSetWait")
        failures = 0
        while not self._stop.is_set():
            try:
                data = wait(event_set, 1000)
            except Exception as exc:
                # A timeout is the normal case; anything else: back off, then give up.
                if "Timeout" not in type(exc).__name__:
                    failures += 1
                    if failures > 20:
                        break
                    self._stop.wait(1.0)
                continue
            failures = 0
            self._record(data)
        self._try(self._fn("nvmlEventSetFree"), event_set)

    def _record(self, data: Any) -> None:
        if not (int(getattr(data, "eventType", 0)) & XID_EVENT):
            return
        index = self._index_of(data.device)
        if index is None:
            return
        with self._lock:
            events = self._xids.setdefault(index, [])
            # Real event data has no time stamp: the time it arrived (a simulation's does).
            stamp = getattr(data, "time", None)
            events.append([int(data.eventData), round(stamp if stamp is not None
                                                      else self.wall(), 3)])
            del events[:-MAX_XIDS]

    def _drain(self) -> None:
        """Without the thread: take what the event set holds now (no waiting)."""
        wait = self._fn("nvmlEventSetWait_v2", "nvmlEventSetWait")
        for _ in range(64):
            try:
                data = wait(self._event_set, 0)
            except Exception:
                return
            self._record(data)

    # ---------------------------------------------------------------- per sample

    def _reasons(self, i: int, handle: Any) -> Tuple[Optional[int], Optional[Dict[str, float]]]:
        mask = self._try(self._fn("nvmlDeviceGetCurrentClocksEventReasons"), handle)
        if mask is None:
            mask = self._try(self._fn("nvmlDeviceGetCurrentClocksThrottleReasons"), handle)
        if mask is None:
            return None, None
        mask = int(mask)
        ages: Dict[str, float] = {}
        if not mask and not self._since:
            return mask, ages
        now = self.monotonic()
        for bit in CLOCK_REASON_BITS:
            if mask & bit:
                first = self._since.setdefault((i, bit), now)
                ages[str(bit)] = round(now - first, 1)
            elif self._since:
                self._since.pop((i, bit), None)
        return mask, ages

    def _clocks(self, handle: Any, slow: GpuDict) -> Optional[List[Optional[int]]]:
        get = self._fn("nvmlDeviceGetClockInfo")
        # Maxima do not change and the memory clock seldom does: read with the slow
        # fields. The SM clock is what a throttled GPU shows: every sample.
        top = slow["_clk_max"]
        sm = self._try(get, handle, 1)
        if sm is None and top[0] is None and slow["_clk_mem"] is None and top[1] is None:
            return None
        return [sm, top[0], slow["_clk_mem"], top[1]]

    def _pcie(self, i: int, handle: Any, busy: bool, slow: GpuDict
              ) -> Optional[List[Optional[int]]]:
        # The current link matters under load only (idle links train down to save
        # power). Read with the slow fields, and at once under load while the last
        # reading is below the maximum (a link that trains up when work starts must
        # not be reported as a downgrade from a reading taken at idle).
        current = self._pcie_now.get(i)
        top = slow["_pcie_max"]
        below = current is not None and any(
            c is not None and m is not None and c < m
            for c, m in zip(current, top))  # noqa: B905  (3.8: no strict=)
        if current is None or self._count % self.every == 0 or (busy and below):
            current = [self._try(self._fn("nvmlDeviceGetCurrPcieLinkGeneration"), handle),
                       self._try(self._fn("nvmlDeviceGetCurrPcieLinkWidth"), handle)]
            self._pcie_now[i] = current
        if current[0] is None and current[1] is None and top[0] is None and top[1] is None:
            return None
        out = list(current) + list(top)  # type: List[Optional[int]]
        return out

    def _ecc(self, handle: Any) -> Optional[List[Optional[int]]]:
        mode = self._try(self._fn("nvmlDeviceGetEccMode"), handle)
        total = self._fn("nvmlDeviceGetTotalEccErrors")
        counts = [self._try(total, handle, err, counter)
                  for err, counter in ((0, 0), (1, 0), (0, 1), (1, 1))]
        enabled = None if mode is None else int(mode[0])
        if enabled is None and all(c is None for c in counts):
            return None
        return [enabled] + [None if c is None else int(c) for c in counts]

    def _rows(self, handle: Any) -> Tuple[Optional[List[int]], Optional[List[Optional[int]]]]:
        rows = self._try(self._fn("nvmlDeviceGetRemappedRows"), handle)
        if rows is not None:
            return [int(v) for v in rows], None
        # Before Ampere: retired pages (single bit, double bit, pending).
        get = self._fn("nvmlDeviceGetRetiredPages")
        sbe = self._try(get, handle, 0)
        dbe = self._try(get, handle, 1)
        pending = self._try(self._fn("nvmlDeviceGetRetiredPagesPendingStatus"), handle)
        if sbe is None and dbe is None and pending is None:
            return None, None
        return None, [None if sbe is None else len(sbe), None if dbe is None else len(dbe),
                      None if pending is None else int(pending)]

    def _nvlink(self, i: int, handle: Any) -> Optional[List[int]]:
        state = self._fn("nvmlDeviceGetNvLinkState")
        if state is None:
            return None
        known = self._links.get(i)
        if known is None:  # first time: find which links this GPU has
            known = []
            for link in range(NVLINK_LINKS):
                try:
                    state(handle, link)
                    known.append(link)
                except Exception:
                    continue
            self._links[i] = known
        down = 0
        for link in known:
            active = self._try(state, handle, link)
            if active is not None and not active:
                down += 1
        return [len(known), down] if known else None

    def _mig(self, handle: Any, on: bool) -> Optional[List[List[Any]]]:
        if not on:
            return None
        count = self._try(self._fn("nvmlDeviceGetMaxMigDeviceCount"), handle) or 0
        by_index = self._fn("nvmlDeviceGetMigDeviceHandleByIndex")
        out: List[List[Any]] = []
        for k in range(int(count)):
            mig = self._try(by_index, handle, k)
            if mig is None:
                continue
            name = self._try(self._fn("nvmlDeviceGetName"), mig)
            text = _decode(name) if name is not None else ""
            profile = text.rsplit("MIG ", 1)[-1] if "MIG " in text else text
            mem = self._try(self._fn("nvmlDeviceGetMemoryInfo"), mig)
            procs = self._try(self._fn("nvmlDeviceGetComputeRunningProcesses"), mig) or []
            out.append([
                profile[:40],
                None if mem is None else round(mem.used / 1048576.0, 1),
                None if mem is None else round(mem.total / 1048576.0, 1),
                sorted(int(p.pid) for p in procs),
            ])
        return out

    def _slow_fields(self, i: int, handle: Any) -> GpuDict:
        rows, pages = self._rows(handle)
        pm = self._try(self._fn("nvmlDeviceGetPersistenceMode"), handle)
        cm = self._try(self._fn("nvmlDeviceGetComputeMode"), handle)
        energy = self._try(self._fn("nvmlDeviceGetTotalEnergyConsumption"), handle)
        get_max = self._fn("nvmlDeviceGetMaxClockInfo")
        mig_mode = self._try(self._fn("nvmlDeviceGetMigMode"), handle)
        return {
            # "_" keys stay in the agent: read slowly, used by the per-sample fields.
            "_clk_max": [self._try(get_max, handle, 1), self._try(get_max, handle, 2)],
            "_clk_mem": self._try(self._fn("nvmlDeviceGetClockInfo"), handle, 2),
            "_pcie_max": [self._try(self._fn("nvmlDeviceGetMaxPcieLinkGeneration"), handle),
                          self._try(self._fn("nvmlDeviceGetMaxPcieLinkWidth"), handle)],
            "_mig": mig_mode is not None and bool(int(mig_mode[0])),
            "e": None if energy is None else int(energy),
            "ecc": self._ecc(handle),
            "rows": rows,
            "pages": pages,
            "nvl": self._nvlink(i, handle),
            "pm": None if pm is None else int(pm),
            "cm": None if cm is None else int(cm),
        }

    def read(self, i: int, handle: Any, busy: bool = True) -> GpuDict:
        """The ``h`` dict of GPU ``i`` for this sample (``busy``: the GPU works)."""
        if i not in self._slow or self._count % self.every == 0:
            self._slow[i] = self._slow_fields(i, handle)
        slow = self._slow[i]
        mask, ages = self._reasons(i, handle)
        out: GpuDict = {"thr": mask, "thr_s": ages, "clk": self._clocks(handle, slow),
                        "pcie": self._pcie(i, handle, busy, slow)}
        for key, value in slow.items():
            if not key.startswith("_"):
                out[key] = value
        out["mig"] = self._mig(handle, slow["_mig"])
        if self._xid_ok:
            if self._event_set is not None and i == 0:
                self._drain()
            with self._lock:
                out["xid"] = [list(x) for x in self._xids.get(i, [])]
        else:
            out["xid"] = None
        return out

    def next_sample(self) -> None:
        self._count += 1

    def close(self) -> None:
        self._stop.set()
        if self._event_set is not None:
            self._try(self._fn("nvmlEventSetFree"), self._event_set)
            self._event_set = None


class NvmlGpus(object):
    """GPUs through an NVML binding object with the pynvml API."""

    kind = "nvml"

    def __init__(self, nvml: Any, names: Optional[ProcessNames] = None,
                 health: bool = True, health_options: Optional[Dict[str, Any]] = None) -> None:
        self.nv = nvml
        nvml.nvmlInit()
        driver = self._try(nvml.nvmlSystemGetDriverVersion)
        self.driver: Optional[str] = None if driver is None else _decode(driver)
        count = nvml.nvmlDeviceGetCount()
        self.handles: List[Any] = []
        self.static: List[GpuDict] = []
        for i in range(count):
            handle = nvml.nvmlDeviceGetHandleByIndex(i)
            name = self._try(nvml.nvmlDeviceGetName, handle)
            uuid = self._try(nvml.nvmlDeviceGetUUID, handle)
            self.handles.append(handle)
            self.static.append(
                {
                    "i": i,
                    "name": _decode(name) if name is not None else "GPU %d" % i,
                    "uuid": _decode(uuid) if uuid is not None else "",
                }
            )
        self.names = names if names is not None else ProcessNames()
        self.reason: Optional[str] = None
        self.health: Optional[NvmlHealth] = (
            NvmlHealth(nvml, self.handles, **(health_options or {})) if health else None)

    def _try(self, fn: Callable[..., Any], *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception:  # NVMLError_*: not supported, GPU lost, ...
            return None

    def inventory(self) -> List[GpuDict]:
        return [dict(s) for s in self.static]

    def _processes(self, handle: Any) -> Dict[int, Optional[float]]:
        procs: Dict[int, Optional[float]] = {}
        for getter in ("nvmlDeviceGetComputeRunningProcesses",
                       "nvmlDeviceGetGraphicsRunningProcesses"):
            fn = getattr(self.nv, getter, None)
            if fn is None:
                continue
            found = self._try(fn, handle)
            for p in found or []:
                used = getattr(p, "usedGpuMemory", None)
                mib = None if used is None else round(used / 1048576.0, 1)
                seen = procs.get(p.pid)
                if seen is not None and mib is not None:
                    mib = max(mib, seen)
                procs[p.pid] = mib
        return procs

    def sample(self) -> List[GpuDict]:
        nv = self.nv
        gpus: List[GpuDict] = []
        all_pids: Set[int] = set()
        per_gpu: List[Dict[int, Optional[float]]] = []
        for i, handle in enumerate(self.handles):  # self.static[i] is its inventory
            util = self._try(nv.nvmlDeviceGetUtilizationRates, handle)
            mem = self._try(nv.nvmlDeviceGetMemoryInfo, handle)
            temp = self._try(nv.nvmlDeviceGetTemperature, handle, 0)  # NVML_TEMPERATURE_GPU
            power = self._try(nv.nvmlDeviceGetPowerUsage, handle)
            limit = self._try(nv.nvmlDeviceGetEnforcedPowerLimit, handle)
            procs = self._processes(handle)
            all_pids.update(procs)
            per_gpu.append(procs)
            gpus.append(
                {
                    "i": self.static[i]["i"],
                    "util": None if util is None else float(util.gpu),
                    "mu": None if mem is None else round(mem.used / 1048576.0, 1),
                    "mt": None if mem is None else round(mem.total / 1048576.0, 1),
                    "temp": None if temp is None else float(temp),
                    "pw": None if power is None else round(power / 1000.0, 1),
                    "pl": None if limit is None else round(limit / 1000.0, 1),
                    "procs": [],
                }
            )
            if self.health is not None:
                busy = (util is not None and util.gpu >= 10) or bool(procs)
                gpus[-1]["h"] = self.health.read(self.static[i]["i"], handle, busy)
        if self.health is not None:
            self.health.next_sample()
        names = self.names.lookup(sorted(all_pids))
        for gpu, procs in zip(gpus, per_gpu):  # noqa: B905  (strict= is 3.10+; same length)
            for pid in sorted(procs):
                user, command = names.get(pid, ("?", ""))
                if not command:
                    # Not in our /proc (a container's PID namespace): ask the driver.
                    name = self._try(getattr(self.nv, "nvmlSystemGetProcessName", _none), pid)
                    command = _decode(name)[:MAX_COMMAND] if name else ""
                gpu["procs"].append([pid, user, command, procs[pid]])
        return gpus

    def close(self) -> None:
        if self.health is not None:
            self.health.close()
        self._try(self.nv.nvmlShutdown)


class SmiGpus(object):
    """GPUs through a streaming ``nvidia-smi ... -lms`` child (no NVML binding)."""

    kind = "nvidia-smi"

    def __init__(self, interval: float, command: str = "nvidia-smi",
                 names: Optional[ProcessNames] = None, health: bool = True) -> None:
        self.interval = interval
        self.names = names if names is not None else ProcessNames()
        self.driver: Optional[str] = None
        self.reason: Optional[str] = None
        self._lock = threading.Lock()
        self._rows: Dict[int, GpuDict] = {}
        # uuid -> list of (pid, name, mib)
        self._apps: Dict[str, List[Tuple[int, str, Optional[float]]]] = {}
        self._apps_stamp: Optional[str] = None
        self._apps_seen = 0.0
        ms = str(max(100, int(interval * 1000)))
        self.children: "List[subprocess.Popen[bytes]]" = []
        gpu_cmd = [
            command,
            "--query-gpu=" + ",".join(SMI_GPU_FIELDS),
            "--format=csv,noheader,nounits",
            "-lms",
            ms,
        ]
        app_cmd = [
            command,
            "--query-compute-apps=" + ",".join(SMI_APP_FIELDS),
            "--format=csv,noheader,nounits",
            "-lms",
            ms,
        ]
        self._first = threading.Event()
        readers: List[Tuple[List[str], Callable[[IO[bytes]], None]]] = [
            (gpu_cmd, self._read_gpus), (app_cmd, self._read_apps)]
        for cmd, target in readers:
            child = subprocess.Popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
            )
            self.children.append(child)
            t = threading.Thread(target=target, args=(child.stdout,))
            t.daemon = True
            t.start()
        self._first.wait(max(5.0, 3 * interval))
        with self._lock:
            if not self._rows:
                raise RuntimeError("nvidia-smi printed no GPU lines")
        self._command = command
        self._ms = ms
        self._health: Dict[int, GpuDict] = {}
        self._since: Dict[Tuple[int, int], float] = {}
        self._health_first = threading.Event()
        if health:
            t = threading.Thread(target=self._health_reader)
            t.daemon = True
            t.start()
            # The first sample should have them: wait a little (a refused field name
            # costs a second start).
            self._health_first.wait(max(5.0, 3 * interval))

    def _health_reader(self) -> None:
        """Health fields from a third streaming child; on a driver that refuses a field
        name, the older name of clock event reasons, then nothing."""
        for reasons in ("clocks_event_reasons.active", "clocks_throttle_reasons.active"):
            fields = list(SMI_HEALTH_FIELDS)
            fields[1] = reasons
            try:
                child = subprocess.Popen(
                    [self._command, "--query-gpu=" + ",".join(fields),
                     "--format=csv,noheader,nounits", "-lms", self._ms],
                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL)
            except OSError:
                return
            with self._lock:
                self.children.append(child)
            got = False
            assert child.stdout is not None
            for raw in iter(child.stdout.readline, b""):
                parsed = parse_smi_health_line(raw.decode("utf-8", "replace"))
                if parsed is None:
                    continue
                got = True
                index, h = parsed
                with self._lock:
                    self._health[index] = h
                    if len(self._health) >= len(self._rows):
                        self._health_first.set()
            child.wait()
            if got:
                break
        self._health_first.set()

    def _with_ages(self, index: int, h: GpuDict) -> GpuDict:
        out = dict(h)
        mask = h.get("thr")
        ages: Dict[str, float] = {}
        if mask is not None:
            now = time.monotonic()
            for bit in CLOCK_REASON_BITS:
                if mask & bit:
                    ages[str(bit)] = round(now - self._since.setdefault((index, bit), now), 1)
                else:
                    self._since.pop((index, bit), None)
        out["thr_s"] = ages
        return out

    def _read_gpus(self, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            gpu = parse_smi_gpu_line(raw.decode("utf-8", "replace"))
            if gpu is None:
                continue
            with self._lock:
                self._rows[gpu["i"]] = gpu
            self._first.set()
        self._first.set()

    def _read_apps(self, stream: IO[bytes]) -> None:
        for raw in iter(stream.readline, b""):
            row = parse_smi_app_line(raw.decode("utf-8", "replace"))
            if row is None:
                continue
            stamp, uuid, pid, name, mib = row
            with self._lock:
                # Rows of one poll share a timestamp: a new stamp starts a new poll.
                if stamp != self._apps_stamp:
                    self._apps = {}
                    self._apps_stamp = stamp
                self._apps.setdefault(uuid, []).append((pid, name, mib))
                self._apps_seen = time.monotonic()

    def inventory(self) -> List[GpuDict]:
        with self._lock:
            return [{"i": g["i"], "name": g["name"], "uuid": g["uuid"]}
                    for _, g in sorted(self._rows.items())]

    def sample(self) -> List[GpuDict]:
        with self._lock:
            rows = [dict(g) for _, g in sorted(self._rows.items())]
            # nvidia-smi prints nothing at all when no process runs: forget a poll
            # that was not repeated.
            if time.monotonic() - self._apps_seen > 2.5 * self.interval + 0.5:
                self._apps = {}
            apps = dict((k, list(v)) for k, v in self._apps.items())
            health = dict(self._health)
        pids = [pid for entries in apps.values() for pid, _, _ in entries]
        names = self.names.lookup(pids)
        for gpu in rows:
            gpu.pop("name", None)
            uuid = gpu.pop("uuid", "")
            gpu["procs"] = []
            for pid, name, mib in apps.get(uuid, []):
                user, command = names.get(pid, ("?", ""))
                gpu["procs"].append([pid, user, command or name, mib])
            if gpu["i"] in health:
                gpu["h"] = self._with_ages(gpu["i"], health[gpu["i"]])
        return rows

    def close(self) -> None:
        for child in self.children:
            try:
                child.kill()
                child.wait()
            except OSError:
                pass


# What open_gpus returns: every GPU source has kind, driver, reason, inventory(),
# sample() and close().
GpuBackend = Union[NoGpu, NvmlGpus, SmiGpus]


def _which(name: str) -> Optional[str]:
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        path = os.path.join(directory, name)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def load_nvml_from_source(source: str) -> Any:
    """Build a pynvml module from shipped source text (no install on the host)."""
    import types

    module = types.ModuleType("pynvml")
    module.__file__ = "<nomadlab:pynvml>"
    sys.modules["pynvml"] = module
    try:
        exec(compile(source, "pynvml.py", "exec"), module.__dict__)
    except BaseException:
        del sys.modules["pynvml"]  # a later ``import pynvml`` must not get half a module
        raise
    return module


def open_gpus(interval: float, pynvml_source: Optional[str] = None,
              nvml: Any = None, health: bool = True) -> GpuBackend:
    """NVML first, then nvidia-smi, then nothing; the reason is kept for the hello."""
    reasons: List[str] = []
    if nvml is None and pynvml_source:
        try:
            nvml = load_nvml_from_source(pynvml_source)
        except Exception as exc:
            reasons.append("NVML binding: %s" % exc)
    if nvml is None:
        try:
            import pynvml  # a binding installed on this host

            nvml = pynvml
        except Exception:
            nvml = None
    if nvml is not None:
        try:
            return NvmlGpus(nvml, health=health)
        except Exception as exc:
            reasons.append("NVML: %s" % exc)
    smi = _which("nvidia-smi")
    if smi is not None:
        try:
            return SmiGpus(interval, smi, health=health)
        except Exception as exc:
            reasons.append("nvidia-smi: %s" % exc)
    else:
        reasons.append("nvidia-smi not found")
    return NoGpu("no NVIDIA driver (" + "; ".join(reasons) + ")")


# --------------------------------------------------------------------------- process details
# (issue 11: CPU %, RSS, run time, parent chain and container of each GPU process; the
# "proc" and "signal" commands the client sends on stdin)

MAX_CHAIN = 32  # parents walked up from a process (a loop in /proc cannot hold us)
DOCKER_EVERY = 60.0  # seconds between two ``docker ps`` on the host, at most
SIGNALS = {"TERM": 15, "INT": 2, "KILL": 9}
_HEX = "0123456789abcdef"


def _clock_ticks() -> int:
    try:
        return int(os.sysconf("SC_CLK_TCK"))
    except (ValueError, OSError, AttributeError):
        return 100


def read_stat(pid: int, proc_root: str = "/proc") -> Optional[Tuple[str, int, int, int]]:
    """(comm, ppid, utime+stime ticks, start time ticks) from /proc/PID/stat, or None."""
    try:
        with open(os.path.join(proc_root, str(pid), "stat"), "rb") as f:
            data = f.read(4096)
    except OSError:
        return None
    left = data.find(b"(")
    right = data.rfind(b")")
    if left < 0 or right < left:
        return None
    comm = data[left + 1:right].decode("utf-8", "replace")
    fields = data[right + 2:].split()
    try:
        return comm, int(fields[1]), int(fields[11]) + int(fields[12]), int(fields[19])
    except (IndexError, ValueError):
        return None


def _page_size() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 4096


def start_time(pid: int, proc_root: str = "/proc") -> Optional[int]:
    """The pid's start time in clock ticks after boot: a reused pid has another one."""
    stat = read_stat(pid, proc_root)
    return None if stat is None else stat[3]


def _boot_time(proc_root: str) -> Optional[float]:
    try:
        with open(os.path.join(proc_root, "stat"), "rb") as f:
            for raw in f:
                if raw.startswith(b"btime "):
                    return float(raw.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return None


def _hex_run(text: str, start: int, length: int) -> bool:
    part = text[start:start + length]
    return len(part) == length and all(c in _HEX for c in part)


def container_of(cgroup: str) -> Optional[Dict[str, str]]:
    """The container a process runs in, from the text of /proc/PID/cgroup.

    Kubernetes: ``{"kind": "pod", "id": UID}`` (the pod's uid, from ``kubepods`` paths,
    cgroupfs or systemd style); Docker and other runtimes: ``{"kind": "docker", "id":
    64 hex}``; None outside a container.
    """
    pod: Optional[str] = None
    container: Optional[str] = None
    for line in cgroup.splitlines():
        path = line.split(":", 2)[-1]
        for part in path.split("/"):
            if "kubepods" in path and pod is None:
                at = part.rfind("pod")
                if at >= 0:
                    uid = part[at + 3:]
                    if uid.endswith(".slice"):
                        uid = uid[:-6]
                    uid = uid.replace("_", "-")
                    if len(uid) == 36 and uid.count("-") == 4:
                        pod = uid
            name = part
            for suffix in (".scope",):
                if name.endswith(suffix):
                    name = name[: -len(suffix)]
            name = name.rsplit("-", 1)[-1]
            if len(name) == 64 and _hex_run(name, 0, 64):
                container = name
    if pod is not None:
        return {"kind": "pod", "id": pod}
    if container is not None:
        return {"kind": "docker", "id": container}
    return None


class DockerNames(object):
    """container id -> name, from ``docker ps`` asked at most once a minute."""

    def __init__(self, command: Optional[str] = None, every: float = DOCKER_EVERY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.command = command if command is not None else _which("docker")
        self.every = every
        self.clock = clock
        self.names: Dict[str, str] = {}
        self.asked: Optional[float] = None
        self.calls = 0

    def name(self, container_id: str) -> Optional[str]:
        if not self.command:  # no docker CLI on this host
            return None
        now = self.clock()
        if container_id not in self.names and (
                self.asked is None or now - self.asked >= self.every):
            self.asked = now
            self.calls += 1
            try:
                out = subprocess.run(
                    [self.command, "ps", "--no-trunc", "--format", "{{.ID}} {{.Names}}"],
                    stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                    stderr=subprocess.DEVNULL, timeout=3, check=False).stdout
            except (OSError, subprocess.SubprocessError):
                out = b""
            names: Dict[str, str] = {}
            for raw in out.decode("utf-8", "replace").splitlines():
                parts = raw.split(None, 1)
                if len(parts) == 2:
                    names[parts[0]] = parts[1][:MAX_COMMAND]
            self.names = names
        return self.names.get(container_id)


class ProcessDetails(object):
    """Per pid: CPU % since the last sample, RSS, run time, parents, container.

    One read of /proc/PID/stat per distinct process per sample, through a descriptor
    kept open while the process lives; CPU % (utime + stime), RSS (rss pages) and run
    time (start time) all come from that one line. What does not change while a
    process lives (its container) or changes rarely (its parents) is read and sent
    when the process is first seen and again every ``refresh`` seconds; the client
    keeps it in between.
    """

    def __init__(self, proc_root: str = "/proc", docker: Optional[DockerNames] = None,
                 clock: Callable[[], float] = time.monotonic, refresh: float = 30.0) -> None:
        self.root = proc_root
        self.docker = docker if docker is not None else DockerNames()
        self.clock = clock
        self.refresh = refresh
        self.ticks = float(_clock_ticks())
        self.page_mib = _page_size() / 1048576.0
        self.boot = _boot_time(proc_root)
        # pid -> [fd, start, cpu ticks, when, when parents were sent, born (wall s), key]:
        # the open /proc/PID/stat costs one pread per sample instead of open, read,
        # close; once the process ends the read fails (ESRCH), even if the pid is
        # reused. One list per pid, updated in place: no allocation per sample but
        # the sample's own dict.
        self._state: Dict[int, List[Any]] = {}

    def _open(self, pid: int) -> Optional[List[Any]]:
        try:
            fd = os.open(os.path.join(self.root, str(pid), "stat"), os.O_RDONLY)
        except OSError:
            return None
        state: List[Any] = [fd, None, 0, 0.0, None, None, str(pid)]
        self._state[pid] = state
        return state

    def _close(self, pid: int) -> None:
        state = self._state.pop(pid, None)
        if state is not None:
            try:
                os.close(state[0])
            except OSError:
                pass

    def close(self) -> None:
        for pid in list(self._state):
            self._close(pid)

    def chain(self, ppid: int) -> List[List[Any]]:
        """[[pid, comm], ...] from the parent up to pid 1."""
        out: List[List[Any]] = []
        pid = ppid
        while pid > 0 and len(out) < MAX_CHAIN:
            stat = read_stat(pid, self.root)
            if stat is None:
                break
            out.append([pid, stat[0][:64]])
            pid = stat[1]
        return out

    def _container(self, pid: int) -> Optional[Dict[str, str]]:
        try:
            with open(os.path.join(self.root, str(pid), "cgroup"), "rb") as f:
                text = f.read(65536).decode("utf-8", "replace")
        except OSError:
            return None
        found = container_of(text)
        if found is not None and found["kind"] == "docker":
            name = self.docker.name(found["id"])
            if name is not None:
                found["name"] = name
        return found

    def details(self, pids: Iterable[int], now: Optional[float] = None,
                wall: Optional[float] = None) -> Dict[str, Message]:
        """``{"pid": {...}}`` for each pid alive; each pid is read once however often
        it is listed. ``now``/``wall`` default to the clock and ``time.time()``."""
        if now is None:
            now = self.clock()
        if wall is None:
            wall = time.time()
        out: Dict[str, Message] = {}
        states = self._state
        pread = os.pread
        cpu_scale = 1000.0 / self.ticks  # ticks -> tenths of a percent of a core
        ticks = self.ticks
        rss_scale = self.page_mib * 10.0  # pages -> tenths of a MiB
        boot = self.boot
        refresh = self.refresh
        seen = 0
        for pid in pids:
            state = states.get(pid)
            if state is None:
                state = self._open(pid)
                if state is None:
                    continue
            elif state[3] == now and state[6] in out:
                continue  # listed twice: read once
            try:
                data = pread(state[0], 4096, 0)
            except OSError:
                data = b""
            # after "pid (comm) ": state ppid ... utime(11) stime(12) ... start(19)
            # vsize(20) rss(21); the rest of the line is left unsplit. The start time
            # and the parent are parsed only when needed: the descriptor stays on one
            # process, so its start time cannot change.
            fields = data[data.rfind(b")") + 2:].split(None, 22)
            try:
                cpu_ticks = int(fields[11]) + int(fields[12])
                rss = int(int(fields[21]) * rss_scale + 0.5) / 10.0  # MiB, 1 decimal
                start = state[1]
                if start is None:
                    start = state[1] = int(fields[19])
                    state[5] = None if boot is None else boot + start / ticks
                    cpu = None  # one reading is no rate yet
                elif now > state[3]:
                    cpu = int((cpu_ticks - state[2]) * cpu_scale / (now - state[3])
                              + 0.5) / 10.0
                else:
                    cpu = None
            except (IndexError, ValueError):
                self._close(pid)
                continue
            seen += 1
            state[2] = cpu_ticks
            state[3] = now
            born = state[5]
            if born is None:
                age: Optional[int] = None
            else:
                run = wall - born
                age = int(run + 0.5) if run > 0.0 else 0
            info: Message = {"start": start, "cpu": cpu, "rss": rss, "age": age}
            sent = state[4]
            if sent is None or now - sent >= refresh:
                ppid = int(fields[1])
                info["ppid"] = ppid
                info["chain"] = self.chain(ppid)
                info["ctr"] = self._container(pid)
                state[4] = now
            out[state[6]] = info
        if seen != len(states):  # a process ended (or was not asked for): forget it
            for gone in [p for p, st in states.items() if st[6] not in out]:
                self._close(gone)
        return out


def add_process_details(message: Message, details: ProcessDetails) -> Message:
    """Adds ``"pinfo": {pid: {...}}`` for every process of a sample's GPUs."""
    pids = set()
    for gpu in message.get("gpus", []):
        for proc in gpu.get("procs", []):
            pids.add(int(proc[0]))
    message["pinfo"] = details.details(sorted(pids))
    return message


def _user_of(pid: int, proc_root: str) -> str:
    return ProcessNames(proc_root).lookup([pid])[pid][0]


def handle_command(request: Message, proc_root: str = "/proc") -> Message:
    """One stdin command -> its reply. ``proc``: what a pid is; ``signal``: send one.

    A signal goes only to the process that had the given start time: a pid reused
    since the client saw it is refused, never hit.
    """
    reply: Message = {"type": "reply", "id": request.get("id")}
    cmd = request.get("cmd")
    pid = request.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        reply.update(ok=False, error="bad pid")
        return reply
    start = start_time(pid, proc_root)
    if cmd == "proc":
        if start is None:
            reply.update(ok=False, error="no process %d" % pid)
            return reply
        user, command = ProcessNames(proc_root).lookup([pid])[pid]
        reply.update(ok=True, pid=pid, start=start, user=user, command=command)
        return reply
    if cmd != "signal":
        reply.update(ok=False, error="unknown command")
        return reply
    number = SIGNALS.get(str(request.get("sig")))
    if number is None:
        reply.update(ok=False, error="signal must be one of TERM, INT, KILL")
        return reply
    if start is None:
        reply.update(ok=False, error="no process %d (it has ended)" % pid)
        return reply
    if start != request.get("start"):
        reply.update(ok=False, error="pid %d is now another process (its start time "
                                     "changed): not signalled" % pid)
        return reply
    try:
        os.kill(pid, number)
    except PermissionError:
        reply.update(ok=False, error="not permitted: process %d belongs to user %s"
                     % (pid, _user_of(pid, proc_root)))
        return reply
    except ProcessLookupError:
        reply.update(ok=False, error="no process %d (it has ended)" % pid)
        return reply
    except OSError as exc:
        reply.update(ok=False, error="cannot signal %d: %s" % (pid, exc.strerror or exc))
        return reply
    reply.update(ok=True, pid=pid, sig=request.get("sig"))
    return reply


def command_line(agent: Any, raw: bytes) -> bool:
    """A JSON command line on stdin: answered on stdout. False when it was not one."""
    if not raw.lstrip().startswith(b"{"):
        return False
    try:
        request = json.loads(raw.decode("utf-8", "replace"))
    except ValueError:
        return True
    if isinstance(request, dict):
        try:
            agent.write(handle_command(request))
        except (OSError, ValueError):
            pass
    return True


# --------------------------------------------------------------------------- wire format


def hello_message(gpus: GpuBackend, hostname: Optional[str] = None) -> Message:
    return {
        "type": "hello",
        "agent": AGENT_VERSION,
        "python": "%d.%d.%d" % sys.version_info[:3],
        "hostname": hostname if hostname is not None else socket.gethostname(),
        "source": gpus.kind,
        "driver": gpus.driver,
        "gpus": gpus.inventory(),
        "reason": gpus.reason,
    }


def sample_message(gpus: GpuBackend, host: HostStats) -> Message:
    msg: Message = {"type": "sample", "t": round(time.time(), 3)}
    msg.update(host.sample())
    msg["gpus"] = gpus.sample()
    return msg


def encode(message: Message) -> bytes:
    return (json.dumps(message, separators=(",", ":")) + "\n").encode("ascii")


# --------------------------------------------------------------------------- main loop


class Agent(object):
    def __init__(self, out: IO[bytes], inp: IO[bytes], interval: float, gpus: GpuBackend,
                 *, host: Optional[HostStats] = None, heartbeat_timeout: float = 60.0) -> None:
        self.out = out
        self.inp = inp
        self.interval = max(0.1, float(interval))
        self.gpus = gpus
        self.host = host if host is not None else HostStats()
        self.heartbeat_timeout = heartbeat_timeout
        self.last_input = time.monotonic()
        self.stop = threading.Event()
        self.wake = threading.Event()
        self.details: Optional[ProcessDetails] = ProcessDetails()
        self._write_lock = threading.Lock()  # samples and command replies share stdout

    def _listen(self) -> None:
        """Heartbeats and commands on stdin; EOF ends the agent."""
        try:
            for raw in iter(self.inp.readline, b""):
                self.last_input = time.monotonic()
                if command_line(self, raw):
                    continue
                words = raw.decode("utf-8", "replace").split()
                if len(words) == 2 and words[0] == "interval":
                    try:
                        self.interval = min(3600.0, max(0.1, float(words[1])))
                        self.wake.set()
                    except ValueError:
                        pass
                elif words == ["quit"]:
                    break
        except (OSError, ValueError):
            pass
        self.stop.set()
        self.wake.set()

    def write(self, message: Message) -> None:
        with self._write_lock:
            self.out.write(encode(message))
            self.out.flush()

    def sample(self) -> Message:
        message = sample_message(self.gpus, self.host)
        if self.details is not None:
            add_process_details(message, self.details)
        return message

    def run(self, once: bool = False) -> int:
        try:
            self.write(hello_message(self.gpus))
            if once:
                self.host.sample()
                time.sleep(0.1)
                self.write(sample_message(self.gpus, self.host))
                return 0
            listener = threading.Thread(target=self._listen)
            listener.daemon = True
            listener.start()
            next_tick = time.monotonic()
            while not self.stop.is_set():
                if time.monotonic() - self.last_input > self.heartbeat_timeout:
                    return 3  # the client is gone without closing stdin
                self.write(self.sample())
                next_tick += self.interval
                delay = next_tick - time.monotonic()
                if delay < 0:  # fell behind (slow NVML, suspended): do not burst
                    next_tick = time.monotonic()
                    delay = 0.0
                self.wake.wait(delay)
                if self.wake.is_set() and not self.stop.is_set():
                    self.wake.clear()
                    next_tick = time.monotonic()
            return 0
        except (OSError, ValueError):  # stdout gone: the channel closed
            return 2
        finally:
            self.gpus.close()


def main(argv: Optional[List[str]] = None, bundle: Optional[Message] = None) -> NoReturn:
    """Entry point: ``bundle`` when exec'd by the bootstrap, ``argv`` when run as a script."""
    interval = 1.0
    once = False
    heartbeat_timeout = 60.0
    source: Optional[str] = None
    health = True
    if bundle is not None:
        args = bundle.get("args", {})
        interval = float(args.get("interval", 1.0))
        once = bool(args.get("once", False))
        heartbeat_timeout = float(args.get("heartbeat_timeout", 60.0))
        source = bundle.get("pynvml")
        health = bool(args.get("health", True))
    else:
        argv = list(sys.argv[1:] if argv is None else argv)
        if "--once" in argv:
            once = True
        if "--interval" in argv:
            interval = float(argv[argv.index("--interval") + 1])
        health = "--no-health" not in argv
    out = sys.stdout.buffer
    inp = sys.stdin.buffer
    try:
        gpus: GpuBackend = open_gpus(interval, source, health=health)
    except Exception as exc:  # never die before saying why
        gpus = NoGpu("GPU probe failed: %s" % exc)
    agent = Agent(out, inp, interval, gpus, heartbeat_timeout=heartbeat_timeout)
    code = agent.run(once=once)
    try:
        out.flush()
    except (OSError, ValueError):
        pass
    # Threads reading stdin or nvidia-smi must not keep the process alive.
    os._exit(code)


if __name__ == "__nomadlab_remote__":
    main(bundle=BUNDLE)  # type: ignore[name-defined]  # noqa: F821  (set by the bootstrap)
elif __name__ == "__main__":
    main()
