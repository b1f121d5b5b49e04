"""The fleet over a real OpenSSH sshd: agent, NVML stand-in, faults, cleanup."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import Recorder, config_for, host_for, wait_for
from sshd import SshServer

from nomadlab.core.model import GpuSource, HostState
from nomadlab.remote.fleet import Fleet

pytestmark = pytest.mark.sshd


async def run_fleet(config, recorder: Recorder) -> Fleet:  # type: ignore[no-untyped-def]
    fleet = Fleet(config)
    fleet.listeners.append(recorder)
    await fleet.start()
    return fleet


def trusted(server: SshServer) -> None:
    server.write_known_hosts(server.base / "known_hosts")


async def test_nvml_agent_streams_every_gpu(gpu_server: SshServer, tmp_path: Path) -> None:
    trusted(gpu_server)
    rec = Recorder()
    fleet = await run_fleet(config_for(host_for(gpu_server), tmp=tmp_path), rec)
    try:
        await wait_for(lambda: len(rec.samples) >= 2, what="two samples")
    finally:
        await fleet.stop()
    status = fleet.statuses["gpu1"]
    assert status.info is not None and status.info.source is GpuSource.NVML
    assert status.info.driver == "590.48.01"
    sample = rec.samples[-1]
    assert len(sample.gpus) == 8
    gpu0 = sample.gpus[0]
    assert gpu0.name == "NVIDIA H100 80GB HBM3"
    assert gpu0.memory_total_mib == 81559
    assert gpu0.power_limit_w == 700
    assert sample.cpu_percent is not None and sample.memory_total_mib
    assert HostState.LIVE in rec.states("gpu1")


async def test_processes_are_mapped_through_proc(gpu_server: SshServer, nvml_conf: Path,
                                                 tmp_path: Path) -> None:
    """A real process on the host: its user and command line come from /proc."""
    trusted(gpu_server)
    job = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "--lr=3e-4"])
    try:
        extra = f"\n[proc]\ngpu=3\npid={job.pid}\nmem_mib=4096\n"
        nvml_conf.write_text(nvml_conf.read_text() + extra)
        rec = Recorder()
        fleet = await run_fleet(config_for(host_for(gpu_server), tmp=tmp_path), rec)
        try:
            await wait_for(lambda: any(p.pid == job.pid for s in rec.samples
                                       for g in s.gpus for p in g.processes), what="the job")
        finally:
            await fleet.stop()
    finally:
        job.kill()
        job.wait()
    gpu3 = rec.samples[-1].gpus[3]
    proc = next(p for p in gpu3.processes if p.pid == job.pid)
    assert proc.memory_mib == 4096
    assert "--lr=3e-4" in proc.command and "time.sleep" in proc.command
    import getpass

    assert proc.user == getpass.getuser()


async def test_agent_leaves_nothing_running(gpu_server: SshServer, tmp_path: Path) -> None:
    trusted(gpu_server)
    rec = Recorder()
    fleet = await run_fleet(config_for(host_for(gpu_server), tmp=tmp_path), rec)
    await wait_for(lambda: rec.samples, what="a sample")
    assert gpu_server.session_pids(), "the agent should be running under sshd"
    await fleet.stop()
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 10
    while gpu_server.session_pids() and loop.time() < deadline:
        await asyncio.sleep(0.05)
    assert gpu_server.session_pids() == []


async def test_host_without_gpus_says_so(make_sshd, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server = make_sshd({"NOMADLAB_FAKE_NVML": "/nonexistent"})
    trusted(server)
    rec = Recorder()
    fleet = await run_fleet(config_for(host_for(server), tmp=tmp_path), rec)
    try:
        await wait_for(lambda: rec.samples, what="a sample")
    finally:
        await fleet.stop()
    info = fleet.statuses["gpu1"].info
    assert info is not None and info.gpu_count == 0 and info.source is GpuSource.NONE
    assert "no NVIDIA driver" in (info.reason or "")
    assert fleet.statuses["gpu1"].label(0) == "live · no GPU"
    assert rec.samples[-1].memory_total_mib


async def test_nvidia_smi_fallback_without_python(make_sshd, fake_smi_bin: Path,
                                                  tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """No python3 on the host (here: the configured interpreter does not exist)."""
    from standins.smi import fake_smi_env

    env = fake_smi_env(fake_smi_bin, "h100", state="load", gpus=2)
    server = make_sshd({k: v for k, v in env.items() if k.startswith("NOMADLAB_")}
                       | {"PATH": f"{fake_smi_bin}:/usr/bin:/bin"})
    trusted(server)
    rec = Recorder()
    host = host_for(server, python="python3-is-not-installed-here")
    fleet = await run_fleet(config_for(host, tmp=tmp_path), rec)
    try:
        await wait_for(lambda: rec.samples and rec.samples[-1].memory_total_mib
                       and any(g.processes for g in rec.samples[-1].gpus), what="smi samples")
    finally:
        await fleet.stop()
    info = fleet.statuses["gpu1"].info
    assert info is not None and info.source is GpuSource.NVIDIA_SMI
    sample = rec.samples[-1]
    assert [g.index for g in sample.gpus] == [0, 1]
    assert sample.gpus[0].name == "NVIDIA H100 80GB HBM3"
    assert sample.gpus[0].utilization == 100
    assert {p.pid for p in sample.gpus[0].processes} == {11327, 11328, 11345}
    assert sample.load1 is not None
    await wait_for(lambda: server.session_pids() == [], timeout=10, what="cleanup")
