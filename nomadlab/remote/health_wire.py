"""The ``h`` dict of a sample's GPU (agent wire format) <-> GpuHealth.

Untrusted input: every field is checked; what is not a number of a sane size is None.
"""

from __future__ import annotations

import math
from typing import Any

from nomadlab.core.model import GpuHealth, MigInstance, XidEvent

MAX_XIDS = 64
MAX_MIGS = 16
MAX_PIDS = 256


def _int(value: Any, low: int = 0, high: int = 2**63) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    number = int(value)
    return number if low <= number <= high else None


def _float(value: Any, low: float = 0.0, high: float = 1e12) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) and low <= number <= high else None


def _flag(value: Any) -> bool | None:
    number = _int(value, 0, 1 << 32)
    return None if number is None else bool(number)


def _list(value: Any, size: int) -> list[Any]:
    """A list of exactly ``size`` items, or ``size`` Nones."""
    if isinstance(value, list) and len(value) == size:
        return value
    return [None] * size


def decode_health(raw: Any) -> GpuHealth | None:
    if not isinstance(raw, dict):
        return None
    h = GpuHealth()
    h.throttle_mask = _int(raw.get("thr"), 0, 2**64)
    ages = raw.get("thr_s")
    if isinstance(ages, dict):
        for key, value in list(ages.items())[:32]:
            bit = _int(int(key), 0, 2**64) if isinstance(key, str) and key.isdigit() else None
            seconds = _float(value, 0.0, 1e10)
            if bit is not None and seconds is not None:
                h.throttle_seconds[bit] = seconds
    h.sm_mhz, h.sm_max_mhz, h.mem_mhz, h.mem_max_mhz = (
        _int(v, 0, 100_000) for v in _list(raw.get("clk"), 4))
    h.pcie_gen, h.pcie_width, h.pcie_max_gen, h.pcie_max_width = (
        _int(v, 0, 64) for v in _list(raw.get("pcie"), 4))
    ecc = _list(raw.get("ecc"), 5)
    h.ecc_enabled = _flag(ecc[0])
    (h.ecc_volatile_corrected, h.ecc_volatile_uncorrected, h.ecc_aggregate_corrected,
     h.ecc_aggregate_uncorrected) = (_int(v) for v in ecc[1:])
    rows = _list(raw.get("rows"), 4)
    h.remap_corrected, h.remap_uncorrected = _int(rows[0]), _int(rows[1])
    h.remap_pending, h.remap_failure = _flag(rows[2]), _flag(rows[3])
    pages = _list(raw.get("pages"), 3)
    h.retired_single_bit, h.retired_double_bit = _int(pages[0]), _int(pages[1])
    h.retired_pending = _flag(pages[2])
    nvl = _list(raw.get("nvl"), 2)
    h.nvlink_links, h.nvlink_down = _int(nvl[0], 0, 64), _int(nvl[1], 0, 64)
    h.persistence = _flag(raw.get("pm"))
    h.compute_mode = _int(raw.get("cm"), 0, 16)
    h.energy_mj = _int(raw.get("e"))
    xids = raw.get("xid")
    if isinstance(xids, list):
        h.xid = []
        for item in xids[-MAX_XIDS:]:
            pair = _list(item, 2)
            code, when = _int(pair[0], 0, 1_000_000), _float(pair[1], 0.0, 1e11)
            if code is not None and when is not None:
                h.xid.append(XidEvent(code, when))
    migs = raw.get("mig")
    if isinstance(migs, list):
        h.mig = []
        for item in migs[:MAX_MIGS]:
            profile, used, total, pids = _list(item, 4)
            h.mig.append(MigInstance(
                profile=profile[:40] if isinstance(profile, str) else "?",
                memory_used_mib=_float(used, 0.0, 1e9),
                memory_total_mib=_float(total, 0.0, 1e9),
                processes=tuple(p for p in (_int(x, 0, 2**32) for x in
                                            (pids if isinstance(pids, list) else [])[:MAX_PIDS])
                                if p is not None),
            ))
    return h


def encode_health(h: GpuHealth) -> dict[str, Any]:
    """Back to the wire dict (the demo server and benchmarks speak the agent's format)."""
    return {
        "thr": h.throttle_mask,
        "thr_s": {str(bit): s for bit, s in h.throttle_seconds.items()},
        "clk": [h.sm_mhz, h.sm_max_mhz, h.mem_mhz, h.mem_max_mhz],
        "pcie": [h.pcie_gen, h.pcie_width, h.pcie_max_gen, h.pcie_max_width],
        "ecc": [None if h.ecc_enabled is None else int(h.ecc_enabled),
                h.ecc_volatile_corrected, h.ecc_volatile_uncorrected,
                h.ecc_aggregate_corrected, h.ecc_aggregate_uncorrected],
        "rows": [h.remap_corrected, h.remap_uncorrected,
                 None if h.remap_pending is None else int(h.remap_pending),
                 None if h.remap_failure is None else int(h.remap_failure)],
        "pages": [h.retired_single_bit, h.retired_double_bit,
                  None if h.retired_pending is None else int(h.retired_pending)],
        "nvl": [h.nvlink_links, h.nvlink_down],
        "pm": None if h.persistence is None else int(h.persistence),
        "cm": h.compute_mode,
        "e": h.energy_mj,
        "xid": None if h.xid is None else [[x.code, x.time] for x in h.xid],
        "mig": None if h.mig is None else [
            [m.profile, m.memory_used_mib, m.memory_total_mib, list(m.processes)] for m in h.mig],
    }
