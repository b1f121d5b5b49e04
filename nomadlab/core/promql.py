"""What nomadlab asks Prometheus: the dcgm-exporter and node-exporter counters it
reads (and what each becomes, :data:`GPU_FIELDS`), and the PromQL of one refresh
(:func:`queries`): a handful of instant queries, whatever the size of the fleet, each
aggregated by host and GPU in PromQL. Pure text, no network; the answers become
samples in promfleet.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

DEFAULT_HOST_LABELS = ("Hostname", "instance")

# dcgm-exporter counter -> GpuSample field
GPU_FIELDS: dict[str, str] = {
    "DCGM_FI_DEV_GPU_UTIL": "utilization",
    "DCGM_FI_DEV_FB_USED": "memory_used_mib",
    "DCGM_FI_DEV_FB_FREE": "memory_free_mib",  # total = used + free
    "DCGM_FI_DEV_GPU_TEMP": "temperature_c",
    "DCGM_FI_DEV_POWER_USAGE": "power_w",
    "DCGM_FI_DEV_POWER_MGMT_LIMIT": "power_limit_w",
    "DCGM_FI_DEV_XID_ERRORS": "xid",
    "DCGM_FI_DEV_MEM_COPY_UTIL": "memory_copy_util",
    "DCGM_FI_DEV_SM_CLOCK": "sm_clock_mhz",
    "DCGM_FI_DEV_MEM_CLOCK": "memory_clock_mhz",
    "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS": "throttle_reasons",
    "DCGM_FI_DEV_CLOCKS_EVENT_REASONS": "throttle_reasons",  # its newer name
}
NODE_FIELDS: dict[str, str] = {
    "node_load1": "load1",
    "node_memory_MemTotal_bytes": "memory_total",
    "node_memory_MemAvailable_bytes": "memory_available",
}
GPU_LABELS = ("gpu", "UUID", "modelName")
# Read on every refresh, one small query each (by host and GPU, no metric name: the
# cheapest for Prometheus to evaluate and the fewest bytes to move and parse); the
# rest (clocks, throttle reasons, copy utilization, power limit, free memory: the
# total does not change) and the GPUs' identity (UUID, model, target) only on a full
# refresh, every FULL_EVERY refreshes.
FAST_FIELDS = ("DCGM_FI_DEV_GPU_UTIL", "DCGM_FI_DEV_FB_USED", "DCGM_FI_DEV_GPU_TEMP",
               "DCGM_FI_DEV_POWER_USAGE", "DCGM_FI_DEV_XID_ERRORS")
FULL_EVERY = 12
SLOW_FIELDS = tuple(name for name in GPU_FIELDS if name not in FAST_FIELDS)


def _matchers(selector: str, *more: str) -> str:
    parts = [m for m in (*more, selector) if m]
    return "{" + ", ".join(parts) + "}"


def _by(host_label: str | None, *extra: str) -> str:
    labels = [*(DEFAULT_HOST_LABELS if host_label is None else (host_label, "instance")),
              *extra]
    return "by (" + ", ".join(dict.fromkeys(labels)) + ")"


@dataclass(slots=True, frozen=True)
class Queries:
    gpus: str  # every GPU counter with the identity labels (a full refresh)
    # counter of FAST_FIELDS -> its query by host and GPU only (the other refreshes):
    # ``lean`` reads the series that carry the host label, ``lean_any`` also those
    # that do not (by target), for a fleet where the last full refresh met such a GPU
    lean: Mapping[str, str]
    lean_any: Mapping[str, str]
    # a full refresh: the lean_any queries, the other counters by name, host and GPU,
    # and each GPU's identity (UUID, model, target) once, not once per counter
    slow: str
    identity: str
    node: str
    cpu: str
    up: str
    util_range: str  # for the sparklines of hosts seen for the first time
    memory_range: str


def queries(selector: str = "", host_label: str | None = None) -> Queries:
    """The PromQL of one refresh. ``selector``: matchers without braces."""
    names = "|".join(GPU_FIELDS)
    nodes = "|".join(NODE_FIELDS)
    gpu_by = _by(host_label, "__name__", *GPU_LABELS)
    first = host_label or DEFAULT_HOST_LABELS[0]
    # The host label when the series has one, else the target: as PromFleet.host_of.
    # No matcher on the host label (`!=""` or `=""` makes Prometheus merge the
    # postings of every host: it doubled its time at 1,000 hosts): ``lean`` groups the
    # series without it into one group per GPU index with no host (PromFleet skips
    # it); ``lean_any`` keeps the target too, a longer answer that names them all.
    lean = {name: f"max by ({first}, gpu) ({name}{_matchers(selector)})"
            for name in FAST_FIELDS}
    lean_any = {name: f"max {_by(host_label, 'gpu')} ({name}{_matchers(selector)})"
                for name in FAST_FIELDS}
    slow = f'__name__=~{_q("|".join(SLOW_FIELDS))}'
    # the GPUs' identity from the counters every dcgm-exporter configuration has (a
    # GPU seen only in others is still shown, without model and UUID)
    identity_of = f'__name__=~{_q("|".join(FAST_FIELDS))}'
    return Queries(
        gpus=f'max {gpu_by} ({_matchers(selector, f"__name__=~{_q(names)}")})',
        lean=lean, lean_any=lean_any,
        slow=f"max {_by(host_label, '__name__', 'gpu')} ({_matchers(selector, slow)})",
        identity=f"group {_by(host_label, *GPU_LABELS)} ({_matchers(selector, identity_of)})",
        node=f'max {_by(host_label, "__name__")} ({_matchers(selector, f"__name__=~{_q(nodes)}")})',
        cpu=(f'100 * (1 - avg {_by(host_label)} '
             f'(rate(node_cpu_seconds_total{_matchers(selector, _q_eq("mode", "idle"))}[1m])))'),
        up=f"up{_matchers(selector)}",
        util_range=f'max {_by(host_label, "gpu")} (DCGM_FI_DEV_GPU_UTIL{_matchers(selector)})',
        memory_range=(f'100 * max {_by(host_label, "gpu")} '
                      f'(DCGM_FI_DEV_FB_USED{_matchers(selector)}'
                      f' / (DCGM_FI_DEV_FB_USED{_matchers(selector)}'
                      f' + DCGM_FI_DEV_FB_FREE{_matchers(selector)}))'),
    )


def _q(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _q_eq(label: str, value: str) -> str:
    return f"{label}={_q(value)}"
