"""How long something took, lasted or has left: the one place durations become text.

Two styles, each with one variant:

- `compact`: the two largest units, the second padded: ``45s``, ``15m``, ``1h05m``,
  ``2d03h`` (seconds are shown only below a minute). For ages, idle spans, run times,
  alert messages. ``parts=1`` keeps the leading unit only (``15m``, ``1h``, ``2d``) for
  narrow columns. `total` is the same style for sums of time that are read in hours
  (focus): whole minutes, never days: ``0m``, ``45m``, ``3h20m``, ``52h10m``.
- `clock`: what a running clock shows, as Slurm's squeue does: ``0:05``, ``25:00``,
  ``2:41:07``, ``1-02:03:04`` (whole seconds, rounded down). `countdown` is the same
  clock for time left, rounded up, so that it shows ``0:00`` only at the end.

`config_text` writes a duration the way the config file takes it (``15m``, ``1.5h``,
``0.5s``), for messages about configured values.

Times of day (``14:05``) are not durations: see nomadlab.core.focus ``Days``.
"""

from __future__ import annotations

import math

_UNITS = (("d", 86400), ("h", 3600), ("m", 60), ("s", 1))


def compact(seconds: float, *, parts: int = 2) -> str:
    """``45s``, ``15m``, ``1h05m``, ``2d03h`` (``parts=1``: ``45s``, ``15m``, ``1h``, ``2d``).
    Negative values count as zero; a value is rounded down, never up."""
    whole = int(max(0.0, seconds))
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m"
    for index, (unit, size) in enumerate(_UNITS[:2]):
        if whole >= size:
            lead = f"{whole // size}{unit}"
            if parts < 2:
                return lead
            next_unit, next_size = _UNITS[index + 1]
            return f"{lead}{whole % size // next_size:02d}{next_unit}"
    raise AssertionError("unreachable")  # pragma: no cover


def total(seconds: float) -> str:
    """A sum of time in hours and minutes: ``0m``, ``45m``, ``3h20m``, ``52h10m``
    (whole minutes, rounded down; never days)."""
    minutes = max(0, int(seconds // 60))
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"


def clock(seconds: float | None) -> str:
    """``0:05``, ``25:00``, ``2:41:07``, ``1-02:03:04``: squeue's TIME column; ``-``
    when not known."""
    if seconds is None:
        return "-"
    rest = int(max(0.0, seconds))
    days, rest = divmod(rest, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}-{hours:02d}:{minutes:02d}:{secs:02d}"
    if hours:
        return f"{hours}:{minutes:02d}:{secs:02d}"
    return f"{minutes}:{secs:02d}"


def countdown(seconds: float) -> str:
    """Time left as a `clock`, rounded up: ``0:01`` until the very end, then ``0:00``."""
    return clock(max(0, math.ceil(seconds - 1e-6)))


def config_text(seconds: float) -> str:
    """A duration as the config file takes it: ``2h``, ``15m``, ``90s``, ``0.5s``."""
    seconds = float(seconds)
    for unit, size in _UNITS[:3]:
        if seconds and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


__all__ = ["clock", "compact", "config_text", "countdown", "total"]
