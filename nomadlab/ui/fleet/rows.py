"""The fleet table's row keys: a host, one of its GPUs, or one of a GPU's MIG
instances, and the rows a host has under it."""

from __future__ import annotations

from nomadlab.core.model import HostSample


def host_key(name: str) -> str:
    return f"h\x00{name}"


def gpu_key(name: str, index: int) -> str:
    return f"g\x00{name}\x00{index}"


def mig_key(name: str, index: int, instance: int) -> str:
    return f"m\x00{name}\x00{index}\x00{instance}"


def gpu_rows(name: str, sample: HostSample | None) -> list[str]:
    """Row keys of a host's GPUs, each followed by its MIG instances (MIG on)."""
    rows: list[str] = []
    for gpu in sample.gpus if sample is not None else []:
        rows.append(gpu_key(name, gpu.index))
        mig = gpu.health.mig if gpu.health is not None else None
        rows.extend(mig_key(name, gpu.index, k) for k in range(len(mig or [])))
    return rows


def parse_key(key: str) -> tuple[str, int | None]:
    """(host, GPU index or None); a MIG instance row gives its GPU."""
    parts = key.split("\x00")
    if parts[0] in ("g", "m") and len(parts) in (3, 4):
        return parts[1], int(parts[2])
    return parts[1] if len(parts) > 1 else key, None
