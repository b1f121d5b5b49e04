"""GPUs through nvidia-smi: its CSV lines parsed, and the streaming ``-lms`` child."""

import subprocess
import threading
import time
from typing import IO, Callable, Dict, List, Optional, Tuple

from .host import ProcessNames
from .wire import CLOCK_REASON_BITS, AppRow, GpuDict

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
