"""Cells and lines as rich ``Text``: host data is always data, never markup.

Every string that came from a host or a user goes through ``Text(...)`` (or
:func:`safe`), never through markup parsing; control characters are replaced so a
process name cannot retitle, clear or move the terminal.
"""

from __future__ import annotations

import re

from rich.text import Text

from nomadlab.core.config import Thresholds
from nomadlab.core.model import GpuSample, HostSample, HostState, HostStatus
from nomadlab.core.text import show_format

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")

STATE_STYLE = {
    HostState.LIVE: "green",
    HostState.CONNECTING: "cyan",
    HostState.STALE: "yellow",
    HostState.RECONNECTING: "yellow",
    HostState.AUTH_FAILED: "bold red",
    HostState.PASSPHRASE: "bold magenta",
    HostState.HOSTKEY_UNKNOWN: "bold magenta",
    HostState.HOSTKEY_CHANGED: "bold white on red",
    HostState.STOPPED: "dim",
    HostState.DOWN: "red",
}

BAR_FULL = "█"
BAR_PARTS = " ▏▎▍▌▋▊▉"


def clean(text: str, limit: int | None = None) -> str:
    """Replace control characters (ESC, C1, BEL, ...) with '?' and cut long text."""
    text = _CONTROL.sub("\ufffd", text.replace("\t", " ").replace("\n", " "))
    text = show_format(text)  # bidi overrides, zero-width characters: <U+202E>
    if limit is not None and len(text) > limit:
        text = text[: max(0, limit - 1)] + "…"
    return text


def safe(text: str, style: str = "", limit: int | None = None) -> Text:
    """Untrusted text as a Text: no markup, no control sequences."""
    return Text(clean(text, limit), style=style, no_wrap=True, overflow="ellipsis")


def bar(fraction: float | None, width: int, style: str) -> Text:
    """A horizontal bar with eighth-block resolution, padded to ``width``."""
    if width <= 0:
        return Text("")
    if fraction is None:
        return Text("·" * width, style="dim")
    fraction = max(0.0, min(1.0, fraction))
    eighths = round(fraction * width * 8)
    full, part = divmod(eighths, 8)
    body = BAR_FULL * full + (BAR_PARTS[part] if part and full < width else "")
    text = Text(body, style=style)
    text.append("·" * (width - len(body)), style="grey30")
    return text


def util_style(util: float | None) -> str:
    if util is None:
        return "dim"
    if util >= 80:
        return "green"
    if util >= 30:
        return "yellow3"
    if util > 5:
        return "dark_orange"
    return "grey50"


def memory_style(fraction: float | None, th: Thresholds) -> str:
    if fraction is None:
        return "dim"
    percent = 100 * fraction
    if percent >= th.memory_crit:
        return "bold red"
    if percent >= th.memory_warn:
        return "yellow"
    return "cyan"


def temp_style(temp: float | None, th: Thresholds) -> str:
    if temp is None:
        return "dim"
    if temp >= th.temperature_crit:
        return "bold red"
    if temp >= th.temperature_warn:
        return "yellow"
    return ""


def power_style(gpu: GpuSample, th: Thresholds) -> str:
    if gpu.power_w is None or not gpu.power_limit_w:
        return "dim"
    if 100 * gpu.power_w / gpu.power_limit_w >= th.power_warn:
        return "yellow"
    return ""


def gib(mib: float | None) -> str:
    if mib is None:
        return "?"
    if mib >= 1024:
        return f"{mib / 1024:.1f}G"
    return f"{mib:.0f}M"


def percent(value: float | None) -> str:
    return "N/A" if value is None else f"{value:.0f}%"


def util_cell(gpu: GpuSample, width: int) -> Text:
    util = gpu.utilization
    style = util_style(util)
    text = bar(None if util is None else util / 100, width, style)
    text.append(f" {percent(util):>4}", style=style or "")
    return text


def memory_cell(gpu: GpuSample, th: Thresholds, bar_width: int = 0) -> Text:
    fraction = gpu.memory_fraction
    style = memory_style(fraction, th)
    text = Text()
    if bar_width:
        text.append_text(bar(fraction, bar_width, style))
        text.append(" ")
    text.append(f"{gib(gpu.memory_used_mib)}/{gib(gpu.memory_total_mib)}", style=style)
    return text


def temp_cell(gpu: GpuSample, th: Thresholds) -> Text:
    if gpu.temperature_c is None:
        return Text("N/A", style="dim")
    return Text(f"{gpu.temperature_c:.0f}°C", style=temp_style(gpu.temperature_c, th))


def power_cell(gpu: GpuSample, th: Thresholds) -> Text:
    if gpu.power_w is None:
        return Text("N/A", style="dim")
    limit = f"/{gpu.power_limit_w:.0f}" if gpu.power_limit_w else ""
    return Text(f"{gpu.power_w:.0f}{limit}W", style=power_style(gpu, th))


def host_stats(sample: HostSample | None, load: bool = True) -> Text:
    """'cpu 14% ram 0.6/23.5G load 0.4' (load optional where space is short)."""
    if sample is None:
        return Text("")
    parts = Text()
    if sample.cpu_percent is not None:
        parts.append("cpu ", style="dim")
        parts.append(f"{sample.cpu_percent:.0f}% ")
    if sample.memory_used_mib is not None and sample.memory_total_mib:
        parts.append("ram ", style="dim")
        parts.append(f"{sample.memory_used_mib / 1024:.1f}/{sample.memory_total_mib / 1024:.1f}G ")
    if load and sample.load1 is not None:
        parts.append("load ", style="dim")
        parts.append(f"{sample.load1:.1f}")
    parts.rstrip()
    return parts


def load_text(sample: HostSample | None) -> Text:
    if sample is None or sample.load1 is None:
        return Text("")
    return Text.assemble(("load ", "dim"), f"{sample.load1:.2f}")


def state_text(status: HostStatus, now: float) -> Text:
    return Text(status.label(now), style=STATE_STYLE.get(status.state, ""), no_wrap=True)


def no_gpu_reason(status: HostStatus | None) -> str:
    """Why a live host has no GPU ('no NVIDIA driver (...)'), '' when it has some."""
    info = status.info if status is not None else None
    if info is None or info.gpu_count:
        return ""
    return info.reason or "no GPU reported"


def spark_text(values: list[float | None]) -> Text:
    """A sparkline whose every bar has the colour of its own value, so a new sample
    changes (and repaints) one character, not the whole line's colour."""
    from nomadlab.core.history import sparkline

    chars = sparkline(values)
    text = Text(no_wrap=True)
    for char, value in zip(chars, values, strict=True):
        text.append(char, style=util_style(value) if value is not None else "")
    return text


def worst_gpu_key(gpu: GpuSample) -> tuple[float, float]:
    """Sort key putting the GPU that most needs a look first: hot, then idle."""
    temp = gpu.temperature_c or 0.0
    util = gpu.utilization if gpu.utilization is not None else 100.0
    return (-temp, util)
