"""`nomadlab exporter` scraped by a real Prometheus; read back through the source."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import nvml_env
from prom import PromServer, free_port, prometheus
from sshd import SshServer

from nomadlab.core.config import SourceConfig
from nomadlab.core.model import HostSample
from nomadlab.remote.exporter import parse_listen
from nomadlab.remote.promsource import PrometheusSource

__all__ = ["prometheus"]  # fixture


def write_config(home: Path, server: SshServer) -> None:
    path = home / ".config" / "nomadlab" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(f"""\
        show_local = false
        data_dir = "{home / 'data'}"
        [fleet]
        interval = "0.5s"
        [[hosts]]
        name = "gpu1"
        hostname = "127.0.0.1"
        port = {server.port}
        user = "{server.user}"
        identity_file = "{server.client_key}"
        known_hosts = "{server.base / 'known_hosts'}"
        """))


@pytest.fixture
def ssh_lab(make_sshd: Callable[..., SshServer], fake_nvml_dir: Path,
            nvml_conf: Path, isolated_home: Path) -> SshServer:
    server = make_sshd(nvml_env(fake_nvml_dir, nvml_conf))
    server.write_known_hosts(server.base / "known_hosts")
    write_config(isolated_home, server)
    return server


@pytest.fixture
def exporter(ssh_lab: SshServer) -> Iterator[tuple[subprocess.Popen[str], int]]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "nomadlab", "exporter", "--listen",
                             f"127.0.0.1:{port}"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    assert proc.stderr is not None
    first = proc.stderr.readline()
    while first.startswith(("/", "  ")):  # library deprecation warnings, if any
        first = proc.stderr.readline()
    assert first == f"nomadlab exporter: serving http://127.0.0.1:{port}/metrics (1 hosts)\n"
    yield proc, port
    proc.terminate()
    proc.wait(15)
    proc.stdout.close()  # type: ignore[union-attr]
    proc.stderr.close()


@pytest.mark.sshd
def test_exporter_round_trip_through_prometheus(
        exporter: tuple[subprocess.Popen[str], int], prometheus: PromServer) -> None:
    _proc, port = exporter
    prometheus.set_targets([{"targets": [f"127.0.0.1:{port}"],
                             "labels": {"job": "nomadlab"}}])
    prometheus.wait_for('DCGM_FI_DEV_GPU_UTIL{Hostname="gpu1"}', lambda r: len(r) == 8)
    prometheus.wait_for('nomadlab_host_up{Hostname="gpu1"}',
                        lambda r: bool(r) and r[0]["value"][1] == "1")
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as r:
        page = r.read().decode()
    assert "# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %)." in page
    assert "# TYPE DCGM_FI_DEV_GPU_UTIL gauge" in page
    assert 'nomadlab_host_state{Hostname="gpu1",state="live"} 1.0' in page
    # The SSH path: what `nomadlab status` shows for the host
    status = subprocess.run([sys.executable, "-m", "nomadlab", "status", "--json"],
                            capture_output=True, text=True, timeout=90, check=False)
    assert status.returncode == 0, status.stderr
    [ssh_view] = json.loads(status.stdout)["hosts"]
    # The way back: the Prometheus source reads the exported series
    seen: dict[str, HostSample] = {}
    source = PrometheusSource(
        SourceConfig(name="back", kind="prometheus", url=prometheus.url),
        on_status=lambda s: None, on_sample=lambda s: seen.__setitem__(s.host, s))
    asyncio.run(source.refresh())
    back = seen["gpu1"]
    fields = ("utilization", "memory_used_mib", "memory_total_mib", "temperature_c",
              "power_w", "power_limit_w")
    assert len(back.gpus) == len(ssh_view["gpus"]) == 8
    for gpu, shown in zip(back.gpus, ssh_view["gpus"], strict=True):
        assert (gpu.index, gpu.uuid, gpu.name) == (shown["index"], shown["uuid"], shown["name"])
        assert {f: getattr(gpu, f) for f in fields} == {f: shown[f] for f in fields}
    processes = prometheus.query('nomadlab_gpu_processes{Hostname="gpu1",gpu="0"}')
    assert processes[0]["value"][1] == str(len(ssh_view["gpus"][0]["processes"]))


def test_listen_addresses() -> None:
    assert parse_listen("127.0.0.1:9835") == ("127.0.0.1", 9835)
    assert parse_listen(":9000") == ("127.0.0.1", 9000)
    assert parse_listen("0.0.0.0") == ("0.0.0.0", 9835)
    assert parse_listen("[::1]:9100") == ("::1", 9100)
    with pytest.raises(ValueError, match="bad port 'x'"):
        parse_listen("127.0.0.1:x")


def test_bad_listen_is_one_line_and_exit_2(isolated_home: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "nomadlab", "exporter", "--listen",
                             "127.0.0.1:99999"], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1] == (
        "nomadlab: --listen: bad port '99999' in '127.0.0.1:99999': expected 1 to 65535")
    assert "Traceback" not in result.stderr
