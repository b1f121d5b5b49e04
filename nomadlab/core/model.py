"""The domain: plain dataclasses shared by every layer. No I/O, no Textual."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from nomadlab.core.durations import compact


@dataclass(slots=True, frozen=True)
class GpuProcess:
    """A process using a GPU: its pid, user, command line and GPU memory."""
    pid: int
    user: str
    command: str
    memory_mib: float | None
    info: ProcessInfo | None = None  # CPU, RSS, parents, container (agent only)


@dataclass(slots=True)
class GpuSample:
    """One GPU at one moment: utilization, memory, temperature, power, its processes and health."""
    index: int
    name: str
    uuid: str
    utilization: float | None
    memory_used_mib: float | None
    memory_total_mib: float | None
    temperature_c: float | None
    power_w: float | None
    power_limit_w: float | None
    processes: list[GpuProcess] = field(default_factory=list)
    # Clocks, throttle reasons, XID events ...: None when the source gives no health
    # fields. NVML over SSH and DCGM through Prometheus fill the same GpuHealth.
    health: GpuHealth | None = None
    memory_copy_util: float | None = None  # only DCGM reports it: None when unknown

    @property
    def memory_fraction(self) -> float | None:
        if self.memory_used_mib is None or not self.memory_total_mib:
            return None
        return self.memory_used_mib / self.memory_total_mib

    def is_free(self, max_utilization: float, max_memory_mib: float) -> bool:
        """Idle enough to hand to a new job: low utilization, little memory, no process."""
        util = self.utilization if self.utilization is not None else 0.0
        used = self.memory_used_mib if self.memory_used_mib is not None else 0.0
        return util <= max_utilization and used <= max_memory_mib and not self.processes


@dataclass(slots=True)
class HostSample:
    """One host at one moment: its CPU and memory, and every GPU; ``source`` says where it came
    from."""
    host: str
    time: float  # wall clock, seconds since the epoch (the host's clock when remote)
    cpu_percent: float | None
    memory_used_mib: float | None
    memory_total_mib: float | None
    load1: float | None
    gpus: list[GpuSample] = field(default_factory=list)
    received: float = 0.0  # wall clock on this machine when the sample arrived
    source: str | None = None  # a [[sources]] name; None: SSH or this machine
    processes_known: bool = True  # False: the source does not report GPU processes


class GpuSource(enum.StrEnum):
    NVML = "nvml"
    NVIDIA_SMI = "nvidia-smi"
    NONE = "none"


@dataclass(slots=True, frozen=True)
class AgentInfo:
    """What the agent's first line said about its host."""

    hostname: str
    agent_version: int
    python: str | None
    source: GpuSource
    driver: str | None
    gpu_count: int
    reason: str | None = None  # why there are no GPUs, when there are none


class HostState(enum.StrEnum):
    CONNECTING = "connecting"
    LIVE = "live"
    STALE = "stale"
    RECONNECTING = "reconnecting"
    AUTH_FAILED = "auth failed"
    PASSPHRASE = "passphrase needed"
    HOSTKEY_UNKNOWN = "host key unknown"
    HOSTKEY_CHANGED = "host key changed"
    STOPPED = "stopped"
    DOWN = "down"  # a monitoring source says the host's exporter is down (up == 0)

    @property
    def waits_for_user(self) -> bool:
        return self in _WAITS_FOR_USER

    @property
    def is_problem(self) -> bool:
        return self not in (HostState.LIVE, HostState.CONNECTING)


_WAITS_FOR_USER = frozenset(
    {
        HostState.AUTH_FAILED,
        HostState.PASSPHRASE,
        HostState.HOSTKEY_UNKNOWN,
        HostState.HOSTKEY_CHANGED,
    }
)


@dataclass(slots=True, frozen=True)
class HostKeyInfo:
    """A host key the user has to decide about."""

    host: str  # the name known_hosts is matched against
    port: int
    key_type: str
    fingerprint: str  # SHA256:...
    known_hosts: str  # the file it would be appended to
    line: str  # the known_hosts line that trusting it appends
    changed: bool  # known_hosts holds a different key of this type: never accepted here


@dataclass(slots=True)
class HostStatus:
    """A host's connection state, since when, and what went wrong (error, retry time, host key)."""
    name: str
    state: HostState
    since: float  # wall clock when this state began
    error: str | None = None
    retry_at: float | None = None  # wall clock of the next attempt (RECONNECTING)
    last_sample: float | None = None  # wall clock (local) of the last sample
    info: AgentInfo | None = None
    hostkey: HostKeyInfo | None = None
    key_path: str | None = None  # the encrypted key a passphrase is asked for
    garbage_lines: int = 0  # lines from the agent that were not understood

    def label(self, now: float) -> str:
        """Short human text: 'live', 'stale 42s', 'reconnecting in 8s', ..."""
        if self.state is HostState.LIVE and self.info is not None and self.info.gpu_count == 0:
            return "live · no GPU"
        if self.state is HostState.STALE:
            ref = self.last_sample if self.last_sample is not None else self.since
            return f"stale {compact(now - ref)}"
        if self.state is HostState.RECONNECTING and self.retry_at is not None:
            wait = max(0.0, self.retry_at - now)
            return f"reconnecting in {compact(round(wait))}"
        return str(self.state)


LOCAL_HOST = "local"


# --------------------------------------------------------------------------- GPU health


@dataclass(slots=True, frozen=True)
class XidEvent:
    """An XID critical error the driver reported, as the agent saw it happen."""

    code: int
    time: float  # wall clock on the host


@dataclass(slots=True, frozen=True)
class MigInstance:
    """One MIG device of a GPU in MIG mode."""

    profile: str  # e.g. "3g.40gb"
    memory_used_mib: float | None
    memory_total_mib: float | None
    processes: tuple[int, ...] = ()  # pids


@dataclass(slots=True)
class GpuHealth:
    """What a GPU says about its own condition; None where the driver or GPU has no such thing."""

    throttle_mask: int | None = None  # nvmlClocksEventReasons bits
    throttle_seconds: dict[int, float] = field(default_factory=dict)  # bit -> seconds held
    sm_mhz: int | None = None
    sm_max_mhz: int | None = None
    mem_mhz: int | None = None
    mem_max_mhz: int | None = None
    pcie_gen: int | None = None
    pcie_width: int | None = None
    pcie_max_gen: int | None = None
    pcie_max_width: int | None = None
    ecc_enabled: bool | None = None
    ecc_volatile_corrected: int | None = None
    ecc_volatile_uncorrected: int | None = None
    ecc_aggregate_corrected: int | None = None
    ecc_aggregate_uncorrected: int | None = None
    remap_corrected: int | None = None  # rows remapped (Ampere and later)
    remap_uncorrected: int | None = None
    remap_pending: bool | None = None  # a reset is needed to apply a remap
    remap_failure: bool | None = None
    retired_single_bit: int | None = None  # retired pages (before Ampere)
    retired_double_bit: int | None = None
    retired_pending: bool | None = None
    nvlink_links: int | None = None
    nvlink_down: int | None = None
    persistence: bool | None = None
    compute_mode: int | None = None  # 0 default, 1/3 exclusive thread/process, 2 prohibited
    energy_mj: int | None = None  # total energy since the driver loaded, millijoules
    xid: list[XidEvent] | None = None  # since the agent started; None: not watched
    mig: list[MigInstance] | None = None  # None: MIG off or not supported


@dataclass(slots=True, frozen=True)
class Container:
    """Where a process runs: a Docker (or other runtime) container, or a Kubernetes pod."""

    kind: str  # "docker" or "pod"
    id: str  # 64 hex for a container, the pod uid for a pod
    name: str | None = None  # the container's name, where the docker CLI answered

    @property
    def label(self) -> str:
        if self.kind == "pod":
            return f"pod {self.id[:8]}"
        return self.name or self.id[:12]


@dataclass(slots=True, frozen=True)
class ProcessInfo:
    """What /proc on the host says about one GPU process."""

    start: int  # start time in clock ticks after boot: tells a reused pid apart
    cpu_percent: float | None
    rss_mib: float | None
    age_s: float | None  # how long it has run
    ppid: int
    parents: tuple[tuple[int, str], ...] = ()  # (pid, name) from the parent up to init
    container: Container | None = None
