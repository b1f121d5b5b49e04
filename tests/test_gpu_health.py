"""GPU health end to end: the stand-in NVML, the real agent behind a real sshd, the
decoded model, ``status --json`` and the verdict a user reads (ok / warn / fail)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import DATA, Recorder, config_for, host_for, nvml_env, wait_for
from sshd import SshServer
from standins.nvml import write_gpu_file
from standins.smi import fake_smi_env
from test_cli import host_block, nomadlab, trusted, write_config

from nomadlab.core.health import assess
from nomadlab.hostside import agent
from nomadlab.remote.fleet import Fleet

pytestmark = pytest.mark.sshd
ROOT = Path(agent.__file__).parents[3]  # the checkout: ``-m nomadlab.hostside.agent`` under -S

H100 = {"name": "NVIDIA H100 80GB HBM3", "mem_total_mib": 81559, "limit_mw": 700000}


def sick_gpus() -> list[dict[str, Any]]:
    """GPU 0 healthy and busy, GPU 1 hot and on a degraded link, GPU 2 with memory trouble."""
    return [
        {**H100, "uuid": "GPU-0", "util": 100, "power_mw": 650000, "energy_mj": 3600000000},
        {**H100, "uuid": "GPU-1", "util": 97, "throttle": 0x40, "pcie_gen": 3, "pcie_width": 8,
         "max_pcie_gen": 5, "max_pcie_width": 16, "clock_sm_mhz": 990},
        {**H100, "uuid": "GPU-2", "util": 0, "ecc_volatile_uncorrected": 2,
         "ecc_aggregate_uncorrected": 2, "remap_pending": 1, "nvlinks": 18, "nvlink_down": 3},
    ]


@pytest.fixture
def sick_conf(tmp_path: Path) -> Path:
    conf = tmp_path / "sick.conf"
    write_gpu_file(conf, sick_gpus())
    return conf


@pytest.fixture
def sick_host(make_sshd: Callable[..., SshServer], fake_nvml_dir: Path,
              sick_conf: Path) -> SshServer:
    return trusted(make_sshd(nvml_env(fake_nvml_dir, sick_conf)))


def status_json(server: SshServer, home: Path) -> dict[str, Any]:
    write_config(home, host_block(server, "gpu1"))
    result = nomadlab("status", "--json")
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_status_json_health_fields(sick_host: SshServer, isolated_home: Path) -> None:
    [host] = status_json(sick_host, isolated_home)["hosts"]
    ok, hot, broken = host["gpus"]
    assert ok["health"] == {"state": "ok", "reasons": []}
    assert ok["throttle_reasons"] == []
    assert ok["clocks"] == {"sm_mhz": 1980, "sm_max_mhz": 1980, "mem_mhz": 2619,
                            "mem_max_mhz": 2619}
    assert ok["pcie"] == {"gen": 5, "width": 16, "max_gen": 5, "max_width": 16}
    assert ok["ecc"] == {"enabled": True, "volatile_corrected": 0, "volatile_uncorrected": 0,
                         "aggregate_uncorrected": 0, "remap_pending": False,
                         "remap_failure": False}
    assert ok["xid"] == []
    assert ok["energy_j"] == 3600000.0
    assert ok["mig"] is None

    assert hot["health"]["state"] == "warn"
    assert hot["health"]["reasons"][0].startswith("HW thermal slowdown")
    assert hot["health"]["reasons"][1] == "PCIe Gen3 x8 of Gen5 x16 under load"
    assert hot["throttle_reasons"] == ["HW thermal slowdown"]
    assert hot["clocks"]["sm_mhz"] == 990
    assert hot["pcie"] == {"gen": 3, "width": 8, "max_gen": 5, "max_width": 16}

    assert broken["health"] == {"state": "fail", "reasons": [
        "2 uncorrectable ECC errors", "row remap pending: reset needed", "2 of 18 NVLinks down"]}
    assert broken["ecc"]["volatile_uncorrected"] == 2
    assert broken["ecc"]["remap_pending"] is True
    # Idle: the link trained down to save power is not a problem.
    assert broken["pcie"]["gen"] == 5


def test_what_the_driver_lacks_is_null(make_sshd: Callable[..., SshServer], fake_nvml_dir: Path,
                                       tmp_path: Path, isolated_home: Path) -> None:
    conf = tmp_path / "old.conf"
    write_gpu_file(conf, [{**H100, "ecc_mode": "na", "remap": "na", "energy_mj": "na",
                           "mig": "na"}])
    server = trusted(make_sshd(nvml_env(fake_nvml_dir, conf)))
    [host] = status_json(server, isolated_home)["hosts"]
    [gpu] = host["gpus"]
    assert gpu["ecc"] == {"enabled": None, "volatile_corrected": None,
                          "volatile_uncorrected": None, "aggregate_uncorrected": None,
                          "remap_pending": None, "remap_failure": None}
    assert gpu["energy_j"] is None
    assert gpu["mig"] is None
    assert gpu["health"] == {"state": "ok", "reasons": []}


def test_mig_instances_match_the_capture(make_sshd: Callable[..., SshServer],
                                         fake_nvml_dir: Path, tmp_path: Path,
                                         isolated_home: Path) -> None:
    """Values from the real H100 MIG capture (tests/data/nvml/h100_mig.conf says where)."""
    conf = tmp_path / "mig.conf"
    conf.write_text((DATA / "nvml" / "h100_mig.conf").read_text())
    server = trusted(make_sshd(nvml_env(fake_nvml_dir, conf)))
    [host] = status_json(server, isolated_home)["hosts"]
    [gpu] = host["gpus"]
    assert gpu["mig"] == [
        {"profile": "3g.40gb", "memory_used_mib": 11091.0, "memory_total_mib": 40448.0,
         "processes": [21180, 21181, 21198]},
        {"profile": "2g.20gb", "memory_used_mib": 17.0, "memory_total_mib": 20096.0,
         "processes": []},
        {"profile": "1g.10gb", "memory_used_mib": 9.0, "memory_total_mib": 9984.0,
         "processes": []},
        {"profile": "1g.10gb", "memory_used_mib": 9.0, "memory_total_mib": 9984.0,
         "processes": []},
    ]
    assert gpu["clocks"]["sm_max_mhz"] == 1980 and gpu["clocks"]["mem_max_mhz"] == 2619
    assert gpu["pcie"] == {"gen": 5, "width": 16, "max_gen": 5, "max_width": 16}


async def test_xid_and_throttle_raised_mid_run_reach_the_fleet(
        sick_host: SshServer, sick_conf: Path, tmp_path: Path) -> None:
    """The agent waits on an NVML event set: an XID raised while it runs arrives."""
    rec = Recorder()
    fleet = Fleet(config_for(host_for(sick_host), tmp=tmp_path, interval=0.3))
    fleet.listeners.append(rec)
    await fleet.start()
    try:
        await wait_for(lambda: len(rec.samples) >= 2, what="two samples")
        first = rec.samples[-1].gpus[0]
        verdict = assess(first)
        assert verdict is not None and verdict.state == "ok"
        gpus = sick_gpus()
        gpus[0]["throttle"] = 0x80  # HW power brake
        write_gpu_file(sick_conf, gpus, xids=[{"gpu": 0, "code": 79}])

        def xid_seen() -> bool:
            h = rec.samples[-1].gpus[0].health
            return h is not None and bool(h.xid) and bool(h.throttle_mask)

        await wait_for(xid_seen, what="XID 79 in a sample")
    finally:
        await fleet.stop()
    gpu0 = rec.samples[-1].gpus[0]
    assert gpu0.health is not None and gpu0.health.xid is not None
    assert [x.code for x in gpu0.health.xid] == [79]
    verdict = assess(gpu0)
    assert verdict is not None
    assert verdict.state == "fail"
    assert verdict.reasons[0] == "XID 79: fell off the bus"
    assert verdict.reasons[1].startswith("HW power brake")


def test_agent_health_off_sends_no_health(fake_nvml_dir: Path, sick_conf: Path) -> None:
    """The benchmark's baseline: NvmlGpus(health=False) is today's agent."""
    code = ("import pynvml, json; from nomadlab.hostside import agent\n"
            "g = agent.NvmlGpus(pynvml, health=False); print(json.dumps(g.sample()))\n"
            "h = agent.NvmlGpus(pynvml); print(json.dumps(h.sample())); h.close()\n")
    out = subprocess.run([sys.executable, "-c", code], env={
        **nvml_env(fake_nvml_dir, sick_conf), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=60, check=True).stdout.splitlines()
    without, with_health = (json.loads(line) for line in out)
    assert all("h" not in g for g in without)
    assert with_health[1]["h"]["thr"] == 0x40


def test_nvidia_smi_fallback_gives_what_its_query_fields_allow(fake_smi_bin: Path) -> None:
    """No NVML binding usable: the agent asks nvidia-smi (the stand-in replays the real
    H100 capture) for the health fields it has; XID, energy and MIG instances are null."""
    env = fake_smi_env(fake_smi_bin, "h100", state="load", gpus=2,
                       base={"PATH": "/usr/bin:/bin", "HOME": str(fake_smi_bin)})
    out = subprocess.run([sys.executable, "-S", "-m", "nomadlab.hostside.agent", "--once"],
                         env=env, cwd=ROOT, capture_output=True, text=True, timeout=60,
                         check=True)
    hello, sample = (json.loads(line) for line in out.stdout.splitlines())
    assert hello["source"] == "nvidia-smi"
    h = sample["gpus"][0]["h"]
    assert h["thr"] == 0 and h["thr_s"] == {}
    assert h["clk"] == [1980, 1980, 2619, 2619]
    assert h["pcie"] == [5, 16, 5, 16]
    assert h["ecc"] == [1, 0, 0, 0, 0]
    assert h["rows"] == [0, 0, 0, 0]
    assert h["pages"] is None
    assert (h["pm"], h["cm"]) == (1, 0)
    assert (h["xid"], h["e"], h["mig"], h["nvl"]) == (None, None, None, None)
