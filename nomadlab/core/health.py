"""GPU health: decode what the agent read and judge it ok / warn / fail, worst first.

Pure: a :class:`~nomadlab.core.model.GpuSample` in, words out. ``gpu_json`` gives the
per-GPU fields of ``nomadlab status --json``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nomadlab.core.durations import compact
from nomadlab.core.model import GpuHealth, GpuSample
from nomadlab.core.xid import xid_info

OK, WARN, FAIL = "ok", "warn", "fail"
_RANK = {OK: 0, WARN: 1, FAIL: 2}

# nvmlClocksEventReasons bits -> name; idle and clock settings are not problems.
SW_POWER_CAP = 0x4
HW_SLOWDOWN = 0x8
SYNC_BOOST = 0x10
SW_THERMAL = 0x20
HW_THERMAL = 0x40
HW_POWER_BRAKE = 0x80
THROTTLE_NAMES: dict[int, str] = {
    SW_POWER_CAP: "SW power cap",
    HW_SLOWDOWN: "HW slowdown",
    HW_THERMAL: "HW thermal slowdown",
    HW_POWER_BRAKE: "HW power brake",
    SW_THERMAL: "SW thermal slowdown",
    SYNC_BOOST: "sync boost",
}
# Reasons that mean the GPU is held back by something wrong (not by its own power cap).
HW_REASONS = (HW_THERMAL, HW_POWER_BRAKE, HW_SLOWDOWN)
LOAD_UTILIZATION = 10.0  # % above which a GPU is "under load" (PCIe links train down idle)


@dataclass(slots=True, frozen=True)
class Assessment:
    """A GPU's health state and the reasons for it."""
    state: str  # ok | warn | fail
    reasons: list[str] = field(default_factory=list)  # worst first

    @property
    def first(self) -> str:
        return self.reasons[0] if self.reasons else ""


def throttle_reasons(health: GpuHealth) -> list[str] | None:
    """Active clock event reasons by name (idle left out); None when unknown."""
    if health.throttle_mask is None:
        return None
    return [name for bit, name in THROTTLE_NAMES.items() if health.throttle_mask & bit]


def hw_slowdown_seconds(health: GpuHealth) -> float | None:
    """How long a HW slowdown (thermal, power brake, other) has been held; None: none."""
    if health.throttle_mask is None:
        return None
    held = [health.throttle_seconds.get(bit, 0.0) for bit in HW_REASONS
            if health.throttle_mask & bit]
    return max(held) if held else None


def under_load(gpu: GpuSample) -> bool:
    util = gpu.utilization if gpu.utilization is not None else 0.0
    return util >= LOAD_UTILIZATION


def pcie_downgraded(gpu: GpuSample) -> bool:
    """The link trained below its maximum while the GPU works."""
    h = gpu.health
    if h is None or not under_load(gpu):
        return False
    pairs = ((h.pcie_gen, h.pcie_max_gen), (h.pcie_width, h.pcie_max_width))
    return any(cur is not None and top is not None and cur < top for cur, top in pairs)


def _pcie_text(gen: int | None, width: int | None) -> str:
    return f"Gen{gen if gen is not None else '?'} x{width if width is not None else '?'}"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def assess(gpu: GpuSample) -> Assessment | None:
    """ok / warn / fail and why, worst first; None when the GPU gave no health fields."""
    h = gpu.health
    if h is None:
        return None
    found: list[tuple[int, str]] = []  # (rank, text)
    # XID: one reason per code, most recent first within a severity.
    seen: set[int] = set()
    for event in sorted(h.xid or [], key=lambda e: -e.time):
        if event.code in seen:
            continue
        seen.add(event.code)
        info = xid_info(event.code)
        found.append((_RANK[info.severity], f"XID {event.code}: {info.meaning}"))
    if h.remap_failure:
        found.append((_RANK[FAIL], "row remap failed: replace the GPU"))
    unc = h.ecc_volatile_uncorrected
    if unc:
        found.append((_RANK[FAIL], f"{_plural(unc, 'uncorrectable ECC error')}"))
    if h.remap_pending:
        found.append((_RANK[FAIL], "row remap pending: reset needed"))
    if h.retired_pending:
        found.append((_RANK[FAIL], "page retirement pending: reset needed"))
    mask = h.throttle_mask or 0
    for bit in (*HW_REASONS, SW_THERMAL):
        if mask & bit:
            held = h.throttle_seconds.get(bit)
            text = THROTTLE_NAMES[bit] + (f" {compact(held)}" if held is not None else "")
            found.append((_RANK[WARN], text))
    if pcie_downgraded(gpu):
        found.append((_RANK[WARN], f"PCIe {_pcie_text(h.pcie_gen, h.pcie_width)} of "
                                   f"{_pcie_text(h.pcie_max_gen, h.pcie_max_width)} under load"))
    if h.nvlink_down:
        total = h.nvlink_links if h.nvlink_links is not None else "?"
        found.append((_RANK[WARN], f"{h.nvlink_down} of {total} NVLinks down"))
    if not unc and h.ecc_aggregate_uncorrected:
        lifetime = _plural(h.ecc_aggregate_uncorrected, "uncorrectable ECC error")
        found.append((_RANK[WARN], f"{lifetime} in its lifetime"))
    if not found:
        return Assessment(OK, [])
    found.sort(key=lambda item: -item[0])  # stable: keeps the order above within a rank
    worst = max(rank for rank, _ in found)
    state = FAIL if worst == _RANK[FAIL] else WARN
    return Assessment(state, [text for _, text in found])


def energy_joules(health: GpuHealth | None) -> float | None:
    if health is None or health.energy_mj is None:
        return None
    return health.energy_mj / 1000.0


def gpu_json(gpu: GpuSample) -> dict[str, Any]:
    """The health fields of one GPU in ``status --json`` (null where unknown)."""
    h = gpu.health
    verdict = assess(gpu)
    if h is None:
        return {"health": None, "throttle_reasons": None, "clocks": None, "pcie": None,
                "ecc": None, "xid": None, "energy_j": None, "mig": None}
    pending: bool | None = h.remap_pending
    if pending is None:
        pending = h.retired_pending
    clocks = None
    if any(v is not None for v in (h.sm_mhz, h.sm_max_mhz, h.mem_mhz, h.mem_max_mhz)):
        clocks = {"sm_mhz": h.sm_mhz, "sm_max_mhz": h.sm_max_mhz, "mem_mhz": h.mem_mhz,
                  "mem_max_mhz": h.mem_max_mhz}
    pcie = None
    if any(v is not None for v in (h.pcie_gen, h.pcie_width, h.pcie_max_gen, h.pcie_max_width)):
        pcie = {"gen": h.pcie_gen, "width": h.pcie_width, "max_gen": h.pcie_max_gen,
                "max_width": h.pcie_max_width}
    ecc = {
        "enabled": h.ecc_enabled,
        "volatile_corrected": h.ecc_volatile_corrected,
        "volatile_uncorrected": h.ecc_volatile_uncorrected,
        "aggregate_uncorrected": h.ecc_aggregate_uncorrected,
        "remap_pending": pending,
        "remap_failure": h.remap_failure,
    }
    return {
        "health": None if verdict is None else {"state": verdict.state,
                                                "reasons": verdict.reasons},
        "throttle_reasons": throttle_reasons(h),
        "clocks": clocks,
        "pcie": pcie,
        "ecc": ecc,
        "xid": None if h.xid is None else [{"code": x.code, "time": x.time} for x in h.xid],
        "energy_j": energy_joules(h),
        "mig": None if h.mig is None else [
            {"profile": m.profile, "memory_used_mib": m.memory_used_mib,
             "memory_total_mib": m.memory_total_mib, "processes": list(m.processes)}
            for m in h.mig
        ],
    }
