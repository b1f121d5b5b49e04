"""Prometheus hosts in the fleet: `nomadlab status --json`, merging with SSH hosts, alerts."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import nvml_env
from prom import PromServer, exporters, free_port, prometheus
from sshd import SshServer
from standins.dcgm import Gpu, Node, StandinExporters

from nomadlab.core.alert_engine import AlertEngine
from nomadlab.core.alerts import Alert
from nomadlab.core.clock import ManualClock
from nomadlab.core.config import AlertRule, SourceConfig, load_config_text
from nomadlab.core.model import HostSample, HostStatus
from nomadlab.remote.promsource import PrometheusSource

__all__ = ["exporters", "prometheus"]  # fixtures


def nomadlab(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nomadlab", *args], capture_output=True,
                          text=True, env=dict(os.environ), timeout=90, check=False)


def write_config(home: Path, text: str) -> None:
    path = home / ".config" / "nomadlab" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))


def source_block(url: str, **extra: str) -> str:
    more = "".join(f"{k} = {v}\n" for k, v in extra.items())
    return f'[[sources]]\nkind = "prometheus"\nname = "lab"\nurl = "{url}"\n{more}'


def scraped(prometheus: PromServer, count: int) -> None:
    prometheus.wait_for("up", lambda r: len(r) == count and all(x["value"][1] == "1" for x in r))


@pytest.mark.sshd
def test_status_json_mixes_ssh_and_prometheus_hosts(
        make_sshd: Callable[..., SshServer], fake_nvml_dir: Path, nvml_conf: Path,
        prometheus: PromServer, exporters: StandinExporters, isolated_home: Path) -> None:
    server = make_sshd(nvml_env(fake_nvml_dir, nvml_conf))
    server.write_known_hosts(server.base / "known_hosts")
    # gpu1 is watched over SSH and also has a DCGM exporter: it shows once
    exporters.add(Node("gpu1"))
    exporters.add(Node("node02", gpus=[Gpu(util=55.0, used=1000.0)] * 2))
    prometheus.set_targets(exporters.targets())
    scraped(prometheus, 2)
    write_config(isolated_home, f"""\
        show_local = false
        data_dir = "{isolated_home / 'data'}"
        [fleet]
        interval = "0.5s"
        [[hosts]]
        name = "gpu1"
        hostname = "127.0.0.1"
        port = {server.port}
        user = "{server.user}"
        identity_file = "{server.client_key}"
        known_hosts = "{server.base / 'known_hosts'}"
        """ + source_block(prometheus.url))
    result = nomadlab("status", "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert list(data) == ["hosts", "sources"]
    assert data["sources"] == [{"name": "lab", "kind": "prometheus", "state": "live",
                                "error": None, "hosts": 2}]
    hosts = {h["name"]: h for h in data["hosts"]}
    assert sorted(hosts) == ["gpu1", "node02"]
    gpu1, node02 = hosts["gpu1"], hosts["node02"]
    assert (gpu1["source"], gpu1["state"]) == ("ssh", "live")
    # processes come from SSH (the stand-in NVML has some on GPU 0)
    assert gpu1["gpus"][0]["processes"]
    assert "note" not in gpu1
    assert (node02["source"], node02["state"], node02["error"]) == ("lab", "live", None)
    assert node02["note"] == "processes not reported by this source"
    basics = ("index", "name", "uuid", "utilization", "memory_used_mib", "memory_total_mib",
              "temperature_c", "power_w", "power_limit_w", "processes")
    assert [{k: g[k] for k in basics} for g in node02["gpus"]] == [
        {"index": i, "name": "NVIDIA H100 80GB HBM3", "uuid": f"GPU-node02-{i:04d}",
         "utilization": 55.0, "memory_used_mib": 1000.0, "memory_total_mib": 81559.0,
         "temperature_c": 40.0, "power_w": 70.0, "power_limit_w": None, "processes": []}
        for i in range(2)]
    # DCGM's clocks and XID feed the same health fields as NVML over SSH
    assert [g["health"] for g in node02["gpus"]] == [{"state": "ok", "reasons": []}] * 2
    assert node02["gpus"][0]["clocks"]["sm_mhz"] == 1980
    table = nomadlab("status")
    assert table.returncode == 0
    node_rows = [line.split() for line in table.stdout.splitlines() if "n/a" in line]
    assert len(node_rows) == 2  # node02's GPUs: processes not known, not "0"


def test_status_when_the_source_is_unreachable(isolated_home: Path) -> None:
    port = free_port()
    write_config(isolated_home, f"""\
        show_local = true
        data_dir = "{isolated_home / 'data'}"
        [fleet]
        interval = "0.5s"
        """ + source_block(f"http://127.0.0.1:{port}", timeout='"3s"'))
    result = nomadlab("status", "--json")
    assert result.returncode == 1
    data = json.loads(result.stdout)
    assert data["sources"] == [{
        "name": "lab", "kind": "prometheus", "state": "failed", "hosts": 0,
        "error": f"cannot reach http://127.0.0.1:{port}: connection refused"}]
    # this machine carries on
    [local] = data["hosts"]
    assert (local["name"], local["state"], local["source"]) == ("local", "live", "local")
    table = nomadlab("status")
    assert table.returncode == 1
    assert table.stderr.splitlines()[-1] == (f"source lab: cannot reach "
                                             f"http://127.0.0.1:{port}: connection refused")


def test_alerts_on_prometheus_hosts(prometheus: PromServer,
                                    exporters: StandinExporters) -> None:
    """gpu_idle with the cost from [hosts_cost] or the source's default, host_down,
    temperature and XID, through the same alert engine as SSH hosts."""
    hot = exporters.add(Node("node01", gpus=[Gpu(util=90.0, temp=91.0), Gpu(util=0.0)]))
    exporters.add(Node("node02", gpus=[Gpu(util=0.0), Gpu(util=0.0)]))
    prometheus.set_targets(exporters.targets())
    scraped(prometheus, 2)
    config = load_config_text(source_block(prometheus.url, hourly_cost="2.0")
                              + "[hosts_cost]\nnode01 = 8.0\n")
    clock = ManualClock(start=1_700_000_000.0)
    rules = [AlertRule(name="idle", when="gpu_idle", duration=600, cooldown=3600),
             AlertRule(name="down", when="host_down", duration=60, cooldown=3600),
             AlertRule(name="hot", when="temperature", limit=85, duration=60, cooldown=3600),
             AlertRule(name="xid", when="xid", severity="error")]
    engine = AlertEngine(rules, clock, config.hosts_cost,
                         {s.name: s.hourly_cost for s in config.sources})
    fired: list[Alert] = []

    def on_status(status: HostStatus) -> None:
        fired.extend(engine.on_status(status))

    def on_sample(sample: HostSample) -> None:
        fired.extend(engine.on_sample(sample))

    source_config: SourceConfig = config.sources[0]
    source = PrometheusSource(source_config, on_status=on_status, on_sample=on_sample)
    asyncio.run(source.refresh())
    assert fired == []
    clock.advance(60)
    fired.extend(engine.tick())
    assert [(a.rule, a.host) for a in fired] == [("hot", "node01")]
    assert fired[0].message == "GPU 0 on node01 above 85°C for 1m: GPU 0 91°C."
    fired.clear()
    clock.advance(600)
    fired.extend(engine.tick())
    by_host = {a.host: a for a in fired if a.rule == "idle"}
    assert by_host["node01"].message == (
        "1 of 2 GPUs on node01 idle for 11m, about 0.73 spent on idle GPUs so far "
        "(8.00/h for the host).")
    assert by_host["node02"].extra["hourly_cost"] == 2.0  # the source's default
    fired.clear()
    with exporters.lock:
        hot.gpus[1].xid = 79.0
        hot.up = False
    prometheus.wait_for('up{instance="node01:9400"}', lambda r: r and r[0]["value"][1] == "0")
    asyncio.run(source.refresh())
    clock.advance(61)
    fired.extend(engine.tick())
    assert [(a.rule, a.host) for a in fired] == [("down", "node01")]
    assert fired[0].message == ("node01 has not been reachable for 1m "
                                "(down: target node01:9400 is down (up == 0)).")
    fired.clear()
    with exporters.lock:
        hot.up = True
    prometheus.wait_for('DCGM_FI_DEV_XID_ERRORS{Hostname="node01",gpu="1"}',
                        lambda r: bool(r) and r[0]["value"][1] == "79")
    asyncio.run(source.refresh())
    xid = [a for a in fired if a.rule == "xid"]
    assert [(a.host, a.message) for a in xid] == [
        ("node01", "node01 reported an XID error: GPU 1 XID 79.")]
