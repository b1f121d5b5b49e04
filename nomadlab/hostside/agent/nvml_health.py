"""GPU health through NVML: clocks, PCIe, ECC, row remapping, NVLink, XID events."""

import threading
import time
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from .wire import CLOCK_REASON_BITS, GpuDict


def none_of(*args: Any) -> None:
    return None


def decode(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


# --------------------------------------------------------------------------- GPU health

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
            text = decode(name) if name is not None else ""
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


