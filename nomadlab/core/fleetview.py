"""Fleet rules the screens share: ordering, filtering, free GPUs, what needs a look.

Pure functions over statuses and samples, so the same answers reach the TUI, the
CLI and the tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from nomadlab.core.config import Thresholds
from nomadlab.core.model import GpuSample, HostSample, HostState, HostStatus

STATE_ORDER = {
    HostState.HOSTKEY_CHANGED: 0,
    HostState.AUTH_FAILED: 1,
    HostState.PASSPHRASE: 2,
    HostState.HOSTKEY_UNKNOWN: 3,
    HostState.STALE: 4,
    HostState.RECONNECTING: 5,
    HostState.CONNECTING: 6,
    HostState.LIVE: 7,
    HostState.STOPPED: 8,
    HostState.DOWN: 5,
}


@dataclass(slots=True, frozen=True)
class Concern:
    """Why a host or GPU needs attention, with a score to sort by (higher first)."""
    score: float  # higher: needs a look sooner
    text: str


def gpu_concern(gpu: GpuSample, th: Thresholds, paid: bool) -> Concern:
    from nomadlab.core import health  # with the first GPU (XID table and all)

    verdict = health.assess(gpu)
    if verdict is not None and verdict.state == health.FAIL:
        return Concern(6, f"GPU{gpu.index} {verdict.first}")
    if verdict is not None and verdict.state == health.WARN:
        return Concern(3.5, f"GPU{gpu.index} {verdict.first}")
    temp = gpu.temperature_c
    fraction = gpu.memory_fraction
    if temp is not None and temp >= th.temperature_crit:
        return Concern(5, f"GPU{gpu.index} {temp:.0f}°C")
    if fraction is not None and 100 * fraction >= th.memory_crit:
        return Concern(4, f"GPU{gpu.index} mem {100 * fraction:.0f}%")
    if temp is not None and temp >= th.temperature_warn:
        return Concern(3, f"GPU{gpu.index} {temp:.0f}°C")
    if gpu.is_free(th.free_utilization, th.free_memory_mib):
        return Concern(2 if paid else 1, f"GPU{gpu.index} idle")
    if fraction is not None and 100 * fraction >= th.memory_warn:
        return Concern(1.5, f"GPU{gpu.index} mem {100 * fraction:.0f}%")
    util = gpu.utilization if gpu.utilization is not None else 100.0
    return Concern(1 - util / 100, f"GPU{gpu.index} {util:.0f}%")


def worst_gpu(sample: HostSample | None, th: Thresholds, paid: bool) -> Concern | None:
    """The GPU that most needs a look; idle GPUs are counted together ('GPU 4-7 idle')."""
    if sample is None or not sample.gpus:
        return None
    concerns = [(gpu_concern(g, th, paid), g) for g in sample.gpus]
    worst, _gpu = max(concerns, key=lambda c: c[0].score)
    if worst.text.endswith(" idle"):
        idle = [g.index for c, g in concerns if c.text.endswith(" idle")]
        if len(idle) > 1:
            return Concern(worst.score, f"GPU {index_ranges(idle)} idle")
    return worst


def index_ranges(indices: list[int]) -> str:
    """[0, 1, 2, 5, 7, 8] -> '0-2,5,7-8'."""
    out: list[str] = []
    run: list[int] = []
    for i in sorted(indices):
        if run and i == run[-1] + 1:
            run.append(i)
            continue
        if run:
            out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
        run = [i]
    if run:
        out.append(f"{run[0]}-{run[-1]}" if len(run) > 1 else str(run[0]))
    return ",".join(out)


def mean_utilization(sample: HostSample | None) -> float | None:
    if sample is None:
        return None
    values = [g.utilization for g in sample.gpus if g.utilization is not None]
    return sum(values) / len(values) if values else None


def memory_fraction(sample: HostSample | None) -> float | None:
    if sample is None:
        return None
    used = sum(g.memory_used_mib or 0 for g in sample.gpus)
    total = sum(g.memory_total_mib or 0 for g in sample.gpus)
    return used / total if total else None


def order_hosts(names: Iterable[str], statuses: Mapping[str, HostStatus],
                latest: Mapping[str, HostSample], costs: Mapping[str, float | None],
                key: str) -> list[str]:
    """Host names in display order for a sort key (name, state, utilization, memory, cost)."""
    def sort_key(name: str) -> tuple[object, ...]:
        status = statuses.get(name)
        state_rank = STATE_ORDER.get(status.state, 9) if status is not None else 9
        if key == "state":
            return (state_rank, name)
        if key == "utilization":
            util = mean_utilization(latest.get(name))
            return (util if util is not None else 101.0, name)
        if key == "memory":
            frac = memory_fraction(latest.get(name))
            return (-(frac if frac is not None else -1.0), name)
        if key == "cost":
            cost = costs.get(name)
            return (-(cost if cost is not None else -1.0), name)
        return (name.lower(),)

    return sorted(names, key=sort_key)


def host_matches(query: str, name: str, sample: HostSample | None, tags: Iterable[str] = (),
                 status: HostStatus | None = None) -> bool:
    """Case-insensitive match on host name, tags, state, GPU model, process user/command."""
    q = query.strip().lower()
    if not q:
        return True
    hay = [name, *tags]
    if status is not None:
        hay.append(str(status.state))
        if status.info is not None:
            hay.append(status.info.hostname)
    if sample is not None:
        for gpu in sample.gpus:
            hay.append(gpu.name)
            for proc in gpu.processes:
                hay.extend((proc.user, proc.command))
    return any(q in h.lower() for h in hay)


@dataclass(slots=True, frozen=True)
class FreeGpus:
    """The free GPUs of one host: their indices, names and memory."""
    host: str
    indices: tuple[int, ...]
    names: tuple[str, ...]
    memory_total_mib: float

    @property
    def cuda_visible_devices(self) -> str:
        return "CUDA_VISIBLE_DEVICES=" + ",".join(str(i) for i in self.indices)


def free_gpus(statuses: Mapping[str, HostStatus], latest: Mapping[str, HostSample],
              th: Thresholds) -> list[FreeGpus]:
    """Per live host, the GPUs idle enough to start a job on (most free first)."""
    out: list[FreeGpus] = []
    for name, sample in latest.items():
        status = statuses.get(name)
        if status is None or status.state is not HostState.LIVE:
            continue
        free = [g for g in sample.gpus if g.is_free(th.free_utilization, th.free_memory_mib)]
        if free:
            out.append(FreeGpus(name, tuple(g.index for g in free),
                                tuple(g.name for g in free),
                                sum(g.memory_total_mib or 0 for g in free)))
    out.sort(key=lambda f: (-len(f.indices), -f.memory_total_mib, f.host))
    return out
