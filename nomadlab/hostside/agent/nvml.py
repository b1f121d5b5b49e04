"""GPUs through an NVML binding (the shipped nvidia-ml-py source, or one installed)."""

from typing import Any, Callable, Dict, List, Optional, Set

from .host import ProcessNames
from .nvml_health import NvmlHealth, decode, none_of
from .wire import MAX_COMMAND, GpuDict


class NvmlGpus(object):
    """GPUs through an NVML binding object with the pynvml API."""

    kind = "nvml"

    def __init__(self, nvml: Any, names: Optional[ProcessNames] = None,
                 health: bool = True, health_options: Optional[Dict[str, Any]] = None) -> None:
        self.nv = nvml
        nvml.nvmlInit()
        driver = self._try(nvml.nvmlSystemGetDriverVersion)
        self.driver: Optional[str] = None if driver is None else decode(driver)
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
                    "name": decode(name) if name is not None else "GPU %d" % i,
                    "uuid": decode(uuid) if uuid is not None else "",
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
                    name = self._try(getattr(self.nv, "nvmlSystemGetProcessName", none_of), pid)
                    command = decode(name)[:MAX_COMMAND] if name else ""
                gpu["procs"].append([pid, user, command, procs[pid]])
        return gpus

    def close(self) -> None:
        if self.health is not None:
            self.health.close()
        self._try(self.nv.nvmlShutdown)


