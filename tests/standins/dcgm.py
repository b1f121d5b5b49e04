"""Stand-in dcgm-exporter (and node_exporter) endpoints for many nodes on one port.

The real dcgm-exporter needs a GPU. This serves what it serves: its default counters'
names, HELP/TYPE lines and labels (gpu, UUID, device, modelName, Hostname), one
page per node at ``/dcgm/<node>`` and a node_exporter page at ``/node/<node>``.
A test changes values, takes a node down (HTTP 503: Prometheus records up == 0),
drops the Hostname label, or writes NaN.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# name, type, help: as dcgm-exporter's default-counters.csv describes them
COUNTERS = [
    ("DCGM_FI_DEV_SM_CLOCK", "gauge", "SM clock frequency (in MHz)."),
    ("DCGM_FI_DEV_MEM_CLOCK", "gauge", "Memory clock frequency (in MHz)."),
    ("DCGM_FI_DEV_GPU_TEMP", "gauge", "GPU temperature (in C)."),
    ("DCGM_FI_DEV_POWER_USAGE", "gauge", "Power draw (in W)."),
    ("DCGM_FI_DEV_GPU_UTIL", "gauge", "GPU utilization (in %)."),
    ("DCGM_FI_DEV_MEM_COPY_UTIL", "gauge", "Memory utilization (in %)."),
    ("DCGM_FI_DEV_FB_FREE", "gauge", "Framebuffer memory free (in MiB)."),
    ("DCGM_FI_DEV_FB_USED", "gauge", "Framebuffer memory used (in MiB)."),
    ("DCGM_FI_DEV_XID_ERRORS", "gauge", "Value of the last XID error encountered."),
    ("DCGM_FI_DEV_CLOCK_THROTTLE_REASONS", "gauge", "Current clock throttle reasons."),
]
H100_MIB = 81559.0


@dataclass
class Gpu:
    util: float = 0.0
    used: float = 0.0
    total: float = H100_MIB
    temp: float = 40.0
    power: float = 70.0
    xid: float = 0.0
    copy: float = 0.0
    sm_clock: float = 1980.0
    mem_clock: float = 2619.0
    throttle: float = 0.0

    def values(self) -> dict[str, float]:
        return {
            "DCGM_FI_DEV_SM_CLOCK": self.sm_clock, "DCGM_FI_DEV_MEM_CLOCK": self.mem_clock,
            "DCGM_FI_DEV_GPU_TEMP": self.temp, "DCGM_FI_DEV_POWER_USAGE": self.power,
            "DCGM_FI_DEV_GPU_UTIL": self.util, "DCGM_FI_DEV_MEM_COPY_UTIL": self.copy,
            "DCGM_FI_DEV_FB_FREE": self.total - self.used, "DCGM_FI_DEV_FB_USED": self.used,
            "DCGM_FI_DEV_XID_ERRORS": self.xid,
            "DCGM_FI_DEV_CLOCK_THROTTLE_REASONS": self.throttle,
        }


@dataclass
class Node:
    name: str
    gpus: list[Gpu] = field(default_factory=lambda: [Gpu() for _ in range(8)])
    model: str = "NVIDIA H100 80GB HBM3"
    up: bool = True
    hostname_label: bool = True
    node_exporter: bool = False
    load1: float = 0.5
    mem_total: float = 512 * 2**30
    mem_available: float = 400 * 2**30
    cpu_idle_seconds: float = 0.0  # grows with each scrape: rate() gives CPU use

    def dcgm_page(self) -> str:
        out = []
        for name, kind, text in COUNTERS:
            out.append(f"# HELP {name} {text}\n# TYPE {name} {kind}\n")
            for index, gpu in enumerate(self.gpus):
                value = gpu.values()[name]
                labels = (f'gpu="{index}",UUID="GPU-{self.name}-{index:04d}",'
                          f'device="nvidia{index}",modelName="{self.model}"')
                if self.hostname_label:
                    labels += f',Hostname="{self.name}"'
                labels += ',DCGM_FI_DRIVER_VERSION="590.48.01"'
                out.append(f"{name}{{{labels}}} {_fmt(value)}\n")
        return "".join(out)

    def node_page(self) -> str:
        self.cpu_idle_seconds += 0.5
        return (
            "# HELP node_load1 1m load average.\n# TYPE node_load1 gauge\n"
            f"node_load1 {_fmt(self.load1)}\n"
            "# HELP node_memory_MemTotal_bytes Memory information field MemTotal_bytes.\n"
            "# TYPE node_memory_MemTotal_bytes gauge\n"
            f"node_memory_MemTotal_bytes {_fmt(self.mem_total)}\n"
            "# HELP node_memory_MemAvailable_bytes Memory information field "
            "MemAvailable_bytes.\n# TYPE node_memory_MemAvailable_bytes gauge\n"
            f"node_memory_MemAvailable_bytes {_fmt(self.mem_available)}\n"
            "# HELP node_cpu_seconds_total Seconds the CPUs spent in each mode.\n"
            "# TYPE node_cpu_seconds_total counter\n"
            f'node_cpu_seconds_total{{cpu="0",mode="idle"}} {_fmt(self.cpu_idle_seconds)}\n'
        )


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return repr(float(value))


class StandinExporters:
    """One HTTP server on 127.0.0.1 serving every node's pages."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.lock = threading.Lock()
        standins = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                parts = self.path.strip("/").split("/")
                with standins.lock:
                    node = standins.nodes.get(parts[1]) if len(parts) == 2 else None
                    if node is None or not node.up:
                        body, code = b"down\n", 503
                    elif parts[0] == "dcgm":
                        body, code = node.dcgm_page().encode(), 200
                    elif parts[0] == "node" and node.node_exporter:
                        body, code = node.node_page().encode(), 200
                    else:
                        body, code = b"no such page\n", 404
                self.send_response(code)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def add(self, node: Node) -> Node:
        with self.lock:
            self.nodes[node.name] = node
        return node

    def targets(self, job: str = "dcgm") -> list[dict[str, object]]:
        """file_sd / static_configs entries: one target per node, each with its own
        path and instance (all share this one port)."""
        out: list[dict[str, object]] = []
        for name, node in self.nodes.items():
            out.append({"targets": [f"127.0.0.1:{self.port}"],
                        "labels": {"__metrics_path__": f"/dcgm/{name}",
                                   "instance": f"{name}:9400", "job": job}})
            if node.node_exporter:
                out.append({"targets": [f"127.0.0.1:{self.port}"],
                            "labels": {"__metrics_path__": f"/node/{name}",
                                       "instance": f"{name}:9100", "job": "node"}})
        return out

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
