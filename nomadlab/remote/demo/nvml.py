"""The subset of the pynvml API the agent uses, answered from a simulated host."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nomadlab.core.clock import SYSTEM_CLOCK, Clock
from nomadlab.remote.demo.profiles import H100, H200, L40S, PROFILES, RTX4090, HostHealth
from nomadlab.remote.demo.world import MIB, GpuState, SimGpu, SimHost


class SimulatedNvmlError(Exception):
    """What pynvml.NVMLError is to the real binding."""


@dataclass(frozen=True, slots=True)
class _Utilization:
    gpu: int
    memory: int


@dataclass(frozen=True, slots=True)
class _Memory:
    total: int
    free: int
    used: int


@dataclass(frozen=True, slots=True)
class _Process:
    pid: int
    usedGpuMemory: int  # pynvml's name


# --------------------------------------------------------------------------- health

# (SM max, memory max, PCIe gen, datacenter part: ECC, row remapping, NVLink, MIG)
_PART: dict[str, tuple[int, int, int, bool]] = {
    H100.name: (1980, 2619, 5, True),
    H200.name: (1980, 3201, 5, True),
    L40S.name: (2520, 9001, 4, True),
    RTX4090.name: (3105, 10501, 4, False),
}


class _EventSet:
    def __init__(self) -> None:
        self.gpus: set[int] = set()
        self.delivered: set[tuple[int, int, float]] = set()
        self.wake = threading.Event()


@dataclass(frozen=True, slots=True)
class _EventData:
    device: SimGpu
    eventType: int  # pynvml's names
    eventData: int
    gpuInstanceId: int
    computeInstanceId: int
    time: float  # not in NVML's event data: the simulation knows when it happened


class SimulatedNvmlHealth:
    """The health part of the pynvml API over a SimHost (mixed into SimulatedNvml)."""

    host: SimHost

    if TYPE_CHECKING:  # given by SimulatedNvml, which mixes this in
        def _state(self, handle: SimGpu) -> GpuState: ...

    def _health(self) -> HostHealth:
        return self.host.profile.health or HostHealth()

    def _part(self, handle: SimGpu) -> tuple[int, int, int, bool]:
        return _PART.get(handle.model.name, (1980, 2619, 4, True))

    def _datacenter(self, handle: SimGpu) -> None:
        if not self._part(handle)[3]:
            raise SimulatedNvmlError("Not Supported")

    def _slowed(self, handle: SimGpu) -> bool:
        return (handle.index in self._health().thermal_slowdown
                and self._state(handle).util >= 10)

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: SimGpu) -> int:
        state = self._state(handle)
        mask = 0x1 if state.util == 0 else 0
        if state.power_mw >= 0.97 * handle.model.power_limit_w * 1000.0:
            mask |= 0x4  # SW power cap: normal at the limit
        if self._slowed(handle):
            mask |= 0x40
        return mask

    def nvmlDeviceGetClockInfo(self, handle: SimGpu, kind: int) -> int:
        sm_max, mem_max, _gen, _dc = self._part(handle)
        if kind == 2:
            return mem_max
        if self._state(handle).util == 0:
            return 345
        return sm_max // 2 if self._slowed(handle) else sm_max - 15

    def nvmlDeviceGetMaxClockInfo(self, handle: SimGpu, kind: int) -> int:
        sm_max, mem_max, _gen, _dc = self._part(handle)
        return mem_max if kind == 2 else sm_max

    def nvmlDeviceGetCurrPcieLinkGeneration(self, handle: SimGpu) -> int:
        if handle.index in self._health().pcie_degraded:
            return 3
        return self._part(handle)[2] if self._state(handle).util > 0 else 1

    def nvmlDeviceGetMaxPcieLinkGeneration(self, handle: SimGpu) -> int:
        return self._part(handle)[2]

    def nvmlDeviceGetCurrPcieLinkWidth(self, handle: SimGpu) -> int:
        return 8 if handle.index in self._health().pcie_degraded else 16

    def nvmlDeviceGetMaxPcieLinkWidth(self, handle: SimGpu) -> int:
        return 16

    def nvmlDeviceGetEccMode(self, handle: SimGpu) -> tuple[int, int]:
        self._datacenter(handle)
        return 1, 1

    def nvmlDeviceGetTotalEccErrors(self, handle: SimGpu, error: int, counter: int) -> int:
        self._datacenter(handle)
        if error != 1:
            return 0
        return sum(n for gpu, n in self._health().ecc_uncorrected if gpu == handle.index)

    def nvmlDeviceGetRemappedRows(self, handle: SimGpu) -> tuple[int, int, int, int]:
        self._datacenter(handle)
        pending = int(handle.index in self._health().remap_pending)
        return 0, pending, pending, 0

    def nvmlDeviceGetPersistenceMode(self, handle: SimGpu) -> int:
        return 1

    def nvmlDeviceGetComputeMode(self, handle: SimGpu) -> int:
        return 0

    def nvmlDeviceGetMigMode(self, handle: SimGpu) -> tuple[int, int]:
        self._datacenter(handle)
        return 0, 0

    def nvmlDeviceGetNvLinkState(self, handle: SimGpu, link: int) -> int:
        if handle.model not in (H100, H200) or link >= 18:
            raise SimulatedNvmlError("Not Supported")
        return 1

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: SimGpu) -> int:
        # Since the driver loaded (a day before the demo's epoch), at a middling draw.
        seconds = round(self.host.clock.time() - self.host.epoch + 86_400.0, 1)
        watts = handle.idle_power + 0.45 * (handle.model.power_limit_w - handle.idle_power)
        return int(seconds * watts * 1000.0)

    def nvmlDeviceGetIndex(self, handle: SimGpu) -> int:
        return handle.index

    def nvmlEventSetCreate(self) -> _EventSet:
        return _EventSet()

    def nvmlDeviceRegisterEvents(self, handle: SimGpu, kinds: int, event_set: _EventSet) -> None:
        event_set.gpus.add(handle.index)

    def nvmlEventSetWait_v2(self, event_set: _EventSet, timeout_ms: int) -> _EventData:
        now = self.host.clock.time() - self.host.epoch
        for event in self._health().xids:
            gpu, code, at = event
            if at <= now and gpu in event_set.gpus and event not in event_set.delivered:
                event_set.delivered.add(event)
                return _EventData(self.host.gpus[gpu], 0x8, code, 0xFFFFFFFF, 0xFFFFFFFF,
                                  self.host.epoch + at)
        event_set.wake.wait(timeout_ms / 1000.0)
        raise SimulatedNvmlTimeout("Timeout")

    def nvmlEventSetFree(self, event_set: _EventSet) -> None:
        event_set.wake.set()


class SimulatedNvmlTimeout(SimulatedNvmlError):
    """What pynvml.NVMLError_Timeout is to the real binding (the name is what counts)."""


SimulatedNvmlTimeout.__name__ = "NVMLError_Timeout"


class SimulatedNvml(SimulatedNvmlHealth):
    """The subset of the pynvml API that :class:`agent.NvmlGpus` uses, over a SimHost.

    Pass a host, or a seed/clock/profile index to build one (tests)."""

    def __init__(self, host: SimHost | None = None, *, seed: int = 0,
                 clock: Clock = SYSTEM_CLOCK, index: int = 0, gpus: int = 8,
                 epoch: float | None = None) -> None:
        if host is None:
            profile = PROFILES[index % len(PROFILES)]
            host = SimHost(profile.key, profile, seed=seed, clock=clock, epoch=epoch,
                           gpu_count=gpus, index=index)
        self.host = host
        self.initialized = 0

    def _state(self, handle: SimGpu) -> GpuState:
        if not self.initialized:
            raise SimulatedNvmlError("NVML Uninitialized")
        return handle.state(self.host.clock.time())

    def nvmlInit(self) -> None:
        self.initialized += 1

    def nvmlShutdown(self) -> None:
        if not self.initialized:
            raise SimulatedNvmlError("NVML Uninitialized")
        self.initialized -= 1

    def nvmlSystemGetDriverVersion(self) -> str:
        return self.host.profile.driver

    def nvmlDeviceGetCount(self) -> int:
        if not self.initialized:
            raise SimulatedNvmlError("NVML Uninitialized")
        return len(self.host.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> SimGpu:
        if not 0 <= index < len(self.host.gpus):
            raise SimulatedNvmlError("Invalid Argument")
        return self.host.gpus[index]

    def nvmlDeviceGetName(self, handle: SimGpu) -> str:
        return handle.model.name

    def nvmlDeviceGetUUID(self, handle: SimGpu) -> str:
        return handle.uuid

    def nvmlDeviceGetUtilizationRates(self, handle: SimGpu) -> _Utilization:
        state = self._state(handle)
        return _Utilization(gpu=state.util, memory=state.memory_util)

    def nvmlDeviceGetMemoryInfo(self, handle: SimGpu) -> _Memory:
        state = self._state(handle)
        total = handle.model.memory_mib * MIB
        return _Memory(total=total, free=total - state.used_bytes, used=state.used_bytes)

    def nvmlDeviceGetTemperature(self, handle: SimGpu, sensor: int = 0) -> int:
        return self._state(handle).temperature

    def nvmlDeviceGetPowerUsage(self, handle: SimGpu) -> int:
        return self._state(handle).power_mw

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: SimGpu) -> int:
        return round(handle.model.power_limit_w * 1000.0)

    def nvmlDeviceGetComputeRunningProcesses(self, handle: SimGpu) -> list[_Process]:
        return [_Process(pid, used) for pid, used in self._state(handle).processes]

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: SimGpu) -> list[_Process]:
        return [_Process(pid, used) for pid, used in self._state(handle).graphics]

    def nvmlSystemGetProcessName(self, pid: int) -> str:
        known = self.host.commands.get(pid)
        if known is None:
            raise SimulatedNvmlError("Not Found")
        return known[1].split(" ", 1)[0]  # the driver knows the executable, not argv
