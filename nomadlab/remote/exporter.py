"""``nomadlab exporter``: what nomadlab sees, in the Prometheus exposition format.

The GPUs of the hosts watched over SSH (and this machine) under dcgm-exporter's
metric names and labels where the meaning is the same, so DCGM dashboards work on
them; ``nomadlab_*`` names for the rest (host state, host figures, processes, alerts
fired). Hosts that came from a ``[[sources]]`` entry are not exported again: they are
in a Prometheus already.

The HTTP server is prometheus-client's, in a thread; the collector reads the fleet's
latest samples at scrape time (copies of dicts, never iterated while they change).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from nomadlab.core.alerts import Alert
from nomadlab.core.clock import Clock
from nomadlab.core.model import GpuSample, HostSample, HostState, HostStatus

GPU_LABELS = ["gpu", "UUID", "device", "modelName", "Hostname"]

# (metric, help, value): dcgm-exporter's names where nomadlab measures the same thing
DCGM_GAUGES: list[tuple[str, str, Callable[[GpuSample], float | None]]] = [
    ("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).", lambda g: g.utilization),
    ("DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).", lambda g: g.memory_used_mib),
    ("DCGM_FI_DEV_FB_FREE", "Framebuffer memory free (in MiB).",
     lambda g: (None if g.memory_used_mib is None or g.memory_total_mib is None
                else g.memory_total_mib - g.memory_used_mib)),
    ("DCGM_FI_DEV_GPU_TEMP", "GPU temperature (in C).", lambda g: g.temperature_c),
    ("DCGM_FI_DEV_POWER_USAGE", "Power draw (in W).", lambda g: g.power_w),
    ("DCGM_FI_DEV_POWER_MGMT_LIMIT", "Power management limit (in W).",
     lambda g: g.power_limit_w),
]


class AlertCounter:
    """Counts alerts by (rule, host, severity) for ``nomadlab_alerts_total``."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str, str]] = Counter()

    def add(self, alerts: list[Alert]) -> None:
        for alert in alerts:
            self.counts[(alert.rule, alert.host or "", alert.severity)] += 1


def _gpu_labels(host: str, gpu: GpuSample) -> list[str]:
    return [str(gpu.index), gpu.uuid, f"nvidia{gpu.index}", gpu.name, host]


class FleetCollector(Collector):
    def __init__(self, latest: dict[str, HostSample], statuses: dict[str, HostStatus],
                 clock: Clock, alerts: AlertCounter | None = None) -> None:
        self.latest = latest
        self.statuses = statuses
        self.clock = clock
        self.alerts = alerts

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        # list(...) of a dict is taken under the GIL in one go: the fleet may go on
        # changing its dicts in the event loop thread while a scrape runs here.
        samples = [s for _, s in list(self.latest.items()) if s.source is None]
        statuses = [s for _, s in list(self.statuses.items())]
        sourced = {s.host for _, s in list(self.latest.items()) if s.source is not None}
        statuses = [s for s in statuses if s.name not in sourced]
        now = self.clock.time()
        for name, text, value_of in DCGM_GAUGES:
            family = GaugeMetricFamily(name, text, labels=GPU_LABELS)
            for sample in samples:
                for gpu in sample.gpus:
                    value = value_of(gpu)
                    if value is not None:
                        family.add_metric(_gpu_labels(sample.host, gpu), float(value))
            yield family
        procs = GaugeMetricFamily("nomadlab_gpu_processes",
                                  "Processes on the GPU, as nomadlab saw them.",
                                  labels=GPU_LABELS)
        for sample in samples:
            for gpu in sample.gpus:
                procs.add_metric(_gpu_labels(sample.host, gpu), float(len(gpu.processes)))
        yield procs
        up = GaugeMetricFamily("nomadlab_host_up",
                               "1 when nomadlab gets live samples from the host.",
                               labels=["Hostname"])
        state = GaugeMetricFamily("nomadlab_host_state",
                                  "1 for the state the host is in (live, stale, ...).",
                                  labels=["Hostname", "state"])
        for status in statuses:
            up.add_metric([status.name], 1.0 if status.state is HostState.LIVE else 0.0)
            state.add_metric([status.name, str(status.state)], 1.0)
        yield up
        yield state
        host_values: list[tuple[str, str, Callable[[HostSample], float | None]]] = [
            ("nomadlab_host_cpu_percent", "CPU use of the host (in %).",
             lambda s: s.cpu_percent),
            ("nomadlab_host_memory_used_bytes", "Memory used on the host.",
             lambda s: None if s.memory_used_mib is None else s.memory_used_mib * 1048576),
            ("nomadlab_host_memory_total_bytes", "Memory of the host.",
             lambda s: None if s.memory_total_mib is None else s.memory_total_mib * 1048576),
            ("nomadlab_host_load1", "1-minute load average of the host.", lambda s: s.load1),
            ("nomadlab_sample_age_seconds", "Seconds since the host's last sample arrived.",
             lambda s: max(0.0, now - (s.received or s.time))),
        ]
        for name, text, host_value in host_values:
            family = GaugeMetricFamily(name, text, labels=["Hostname"])
            for sample in samples:
                value = host_value(sample)
                if value is not None:
                    family.add_metric([sample.host], float(value))
            yield family
        if self.alerts is not None:
            fired = CounterMetricFamily("nomadlab_alerts", "Alerts nomadlab raised.",
                                        labels=["rule", "Hostname", "severity"])
            for (rule, host, severity), count in sorted(self.alerts.counts.items()):
                fired.add_metric([rule, host, severity], float(count))
            yield fired


def parse_listen(text: str, default_port: int = 9835) -> tuple[str, int]:
    """'127.0.0.1:9835', '[::1]:9835', ':9835', '0.0.0.0' -> (address, port)."""
    text = text.strip()
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep:
            raise ValueError(f"bad address {text!r}: missing ']'")
        port_text = rest[1:] if rest.startswith(":") else rest
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
    elif ":" in text:  # a bare IPv6 address
        host, port_text = text, ""
    else:
        host, port_text = text, ""
    host = host or "127.0.0.1"
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"bad port {port_text!r} in {text!r}: expected 1 to 65535")
    return host, int(port_text)
