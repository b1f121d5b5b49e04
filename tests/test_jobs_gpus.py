"""`g`: the fleet agent inside a real job's allocation (srun --jobid --overlap) over
the login node's SSH connection; the stand-in NVML reaches the job's environment."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import config_for, host_for, nvml_env, wait_for
from slurm import SlurmCluster
from sshd import SshServer
from test_jobs_slurm import slurm  # noqa: F401  (fixture)

from nomadlab.core.model import AgentInfo, HostSample
from nomadlab.remote.slurm_gpus import JobAgentSession
from nomadlab.remote.ssh import Connector

pytestmark = [pytest.mark.sshd, pytest.mark.slurm]


class Sink:
    def __init__(self) -> None:
        self.info: list[AgentInfo] = []
        self.samples: list[HostSample] = []

    def on_info(self, info: AgentInfo) -> None:
        self.info.append(info)

    def on_sample(self, sample: HostSample) -> None:
        self.samples.append(sample)

    def on_garbage(self, total: int) -> None:
        pass


async def test_agent_runs_inside_the_job(slurm: SlurmCluster,  # noqa: F811
                                         make_sshd: Callable[..., SshServer],
                                         fake_nvml_dir: Path, nvml_conf: Path,
                                         tmp_path: Path) -> None:
    server = make_sshd({**slurm.env, **nvml_env(fake_nvml_dir, nvml_conf)})
    server.write_known_hosts(server.base / "known_hosts")
    config = config_for(host_for(server, "login"), tmp=tmp_path)
    job = slurm.sbatch("sleep 120", "-J", "gpu-job", "--gres=gpu:1")
    slurm.wait_state(job, ("RUNNING",))
    connector = Connector(config.ssh, config.hosts)
    conn = await connector.connect(config.hosts[0])
    sink = Sink()
    session = JobAgentSession(conn, int(job), f"tiny:{job}", sink, interval=0.5)
    task = asyncio.create_task(session.run())
    try:
        await wait_for(lambda: len(sink.samples) >= 2, 60, "samples from inside the job")
        assert sink.info[0].gpu_count == 8  # the stand-in's 8 x H100
        sample = sink.samples[-1]
        assert sample.host == f"tiny:{job}"
        assert len(sample.gpus) == 8 and "H100" in sample.gpus[0].name
        steps = slurm.run("squeue", "--steps", "-h", "-j", job, "-o", "%i").stdout.split()
        assert any(s.startswith(f"{job}.") and not s.endswith("batch") for s in steps)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        conn.close()
        await connector.close()
        slurm.run("scancel", job, check=False)
