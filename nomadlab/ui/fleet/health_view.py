"""GPU health as the user sees it: the fleet table's column and the GPU detail text.

Everything that came from a host goes through ``render.safe``: data, never markup.
"""

from __future__ import annotations

import time

from rich.text import Text

from nomadlab.core import health
from nomadlab.core.durations import compact
from nomadlab.core.model import GpuHealth, GpuSample, HostSample
from nomadlab.core.xid import xid_info
from nomadlab.ui import render

STATE_STYLE = {health.OK: "green", health.WARN: "yellow", health.FAIL: "bold red"}
STATE_WORD = {health.OK: "ok", health.WARN: "warn", health.FAIL: "FAIL"}
COMPUTE_MODES = {0: "default", 1: "exclusive thread", 2: "prohibited", 3: "exclusive process"}


def gpu_cell(gpu: GpuSample, width: int) -> Text:
    """``ok`` / ``warn`` / ``FAIL``, and the worst reason when the column is wide."""
    verdict = health.assess(gpu)
    if verdict is None:
        return Text("—", style="dim")
    out = Text(STATE_WORD[verdict.state], style=STATE_STYLE[verdict.state])
    if width > 5 and verdict.reasons:
        out.append(" ")
        out.append_text(render.safe(verdict.first, STATE_STYLE[verdict.state].replace("bold ", "")))
    return out


def host_cell(gpus: list[GpuSample], width: int = 8) -> Text:
    """The host row: how many GPUs warn or fail (nothing when all are fine or unknown)."""
    states = [v.state for v in (health.assess(g) for g in gpus) if v is not None]
    fails, warns = states.count(health.FAIL), states.count(health.WARN)
    if fails:
        return Text(f"{fails} FAIL" if width > 5 else "FAIL", style="bold red")
    if warns:
        return Text(f"{warns} warn" if width > 5 else "warn", style="yellow")
    return Text("")


def _value(value: object, unit: str = "") -> str:
    return "?" if value is None else f"{value}{unit}"


def _yes(value: bool | None, yes: str = "yes", no: str = "no") -> str:
    return "?" if value is None else (yes if value else no)


def _row(out: Text, label: str, value: Text | str) -> None:
    out.append(f"{label:<15}", style="bold")
    out.append_text(value if isinstance(value, Text) else Text(value))
    out.append("\n")


def _clock_time(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(stamp)) + " UTC"


def detail_text(host: str, gpu: GpuSample, sample: HostSample | None = None) -> Text:
    """Everything known about one GPU's health, one line per subject."""
    out = Text()
    out.append_text(render.safe(host, "bold"))
    out.append(f" · GPU {gpu.index} · ")
    out.append_text(render.safe(gpu.name))
    if gpu.uuid:
        out.append(" · ")
        out.append_text(render.safe(gpu.uuid, "dim"))
    out.append("\n\n")
    h = gpu.health
    verdict = health.assess(gpu)
    if h is None or verdict is None:
        out.append("No health fields from this host (nvidia-smi without them, or no "
                   "NVML).\n", style="dim")
        return out
    state = Text(STATE_WORD[verdict.state], style=STATE_STYLE[verdict.state])
    _row(out, "Health", state)
    for reason in verdict.reasons:
        out.append(" " * 15)
        out.append_text(render.safe(reason, STATE_STYLE[verdict.state].replace("bold ", "")))
        out.append("\n")
    _throttle(out, h)
    _row(out, "Clocks", f"SM {_value(h.sm_mhz)} of {_value(h.sm_max_mhz)} MHz · memory "
                        f"{_value(h.mem_mhz)} of {_value(h.mem_max_mhz)} MHz")
    pcie = (f"Gen{_value(h.pcie_gen)} x{_value(h.pcie_width)} of Gen{_value(h.pcie_max_gen)} "
            f"x{_value(h.pcie_max_width)}")
    if health.pcie_downgraded(gpu):
        _row(out, "PCIe", Text(pcie + " under load", style="yellow"))
    else:
        _row(out, "PCIe", pcie + ("" if health.under_load(gpu) else " (idle links train down)"))
    _memory(out, h)
    if h.nvlink_links is not None:
        down = h.nvlink_down or 0
        text = f"{h.nvlink_links - down} of {h.nvlink_links} up"
        _row(out, "NVLink", Text(text, style="yellow" if down else ""))
    else:
        _row(out, "NVLink", Text("none", style="dim"))
    mode = COMPUTE_MODES.get(h.compute_mode, "?") if h.compute_mode is not None else "?"
    _row(out, "Modes", f"persistence {_yes(h.persistence, 'on', 'off')} · compute {mode}")
    energy = health.energy_joules(h)
    _row(out, "Energy", "?" if energy is None else
         f"{energy / 3.6e6:,.1f} kWh since the driver loaded")
    _xids(out, h)
    _mig(out, h)
    return out


def _throttle(out: Text, h: GpuHealth) -> None:
    names = health.throttle_reasons(h)
    if names is None:
        _row(out, "Throttle", "?")
        return
    if not names:
        _row(out, "Throttle", Text("none", style="green"))
        return
    parts = Text()
    for i, (bit, name) in enumerate((b, n) for b, n in health.THROTTLE_NAMES.items()
                                    if (h.throttle_mask or 0) & b):
        if i:
            parts.append(", ")
        held = h.throttle_seconds.get(bit)
        style = "yellow" if bit in (*health.HW_REASONS, health.SW_THERMAL) else ""
        parts.append(name + (f" ({compact(held)})" if held is not None else ""), style=style)
    _row(out, "Throttle", parts)


def _memory(out: Text, h: GpuHealth) -> None:
    ecc = (f"{_yes(h.ecc_enabled, 'on', 'off')} · volatile {_value(h.ecc_volatile_corrected)} "
           f"corrected, {_value(h.ecc_volatile_uncorrected)} uncorrectable · lifetime "
           f"{_value(h.ecc_aggregate_corrected)} / {_value(h.ecc_aggregate_uncorrected)}")
    _row(out, "ECC", Text(ecc, style="red" if h.ecc_volatile_uncorrected else ""))
    if h.remap_corrected is not None or h.remap_pending is not None:
        remap = Text(f"{_value(h.remap_corrected)} corrected, {_value(h.remap_uncorrected)} "
                     "uncorrectable rows")
        if h.remap_pending:
            remap.append(" · pending: reset needed", style="red")
        if h.remap_failure:
            remap.append(" · FAILED: replace the GPU", style="bold red")
        _row(out, "Row remap", remap)
    elif h.retired_single_bit is not None or h.retired_pending is not None:
        pages = Text(f"{_value(h.retired_single_bit)} single-bit, "
                     f"{_value(h.retired_double_bit)} double-bit")
        if h.retired_pending:
            pages.append(" · pending: reset needed", style="red")
        _row(out, "Retired pages", pages)
    else:
        _row(out, "Row remap", Text("not reported", style="dim"))


def _xids(out: Text, h: GpuHealth) -> None:
    if h.xid is None:
        _row(out, "XID", Text("not watched (no NVML events)", style="dim"))
        return
    if not h.xid:
        _row(out, "XID", Text("none since the agent started", style="green"))
        return
    out.append("XID events", style="bold")
    out.append("\n")
    for event in sorted(h.xid, key=lambda e: -e.time):
        info = xid_info(event.code)
        style = "red" if info.severity == health.FAIL else "yellow"
        out.append(" " * 2)
        out.append_text(Text(f"{_clock_time(event.time)}  "))
        out.append_text(Text(f"XID {event.code}: {info.meaning}", style=style))
        out.append("\n")
        out.append(" " * 2)
        out.append_text(Text(info.action, style="dim"))
        out.append("\n")


def _mig(out: Text, h: GpuHealth) -> None:
    if h.mig is None:
        return
    out.append("MIG devices", style="bold")
    out.append("\n")
    if not h.mig:
        out.append(" " * 2)
        out.append_text(Text("none", style="dim"))
        out.append("\n")
    for m in h.mig:
        out.append(" " * 2)
        out.append_text(render.safe(f"{m.profile:<9}"))
        out.append(f" {render.gib(m.memory_used_mib)} of {render.gib(m.memory_total_mib)}")
        pids = ", ".join(str(p) for p in m.processes) or "no process"
        out.append(f"  {pids}\n", style="dim")
