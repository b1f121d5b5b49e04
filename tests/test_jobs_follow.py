"""`o`: a real job's stdout, followed by the tail agent over the login node's fleet
connection (the path comes from scontrol: 22.05's JSON leaves it empty)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import config_for, host_for, wait_for
from slurm import SlurmCluster
from sshd import SshServer
from test_jobs_slurm import slurm  # noqa: F401  (fixture)

from nomadlab.core.config import ClusterConfig, TailSettings
from nomadlab.core.logs import LogLine, LogStatus
from nomadlab.core.store import Store
from nomadlab.remote.fleet import Fleet
from nomadlab.remote.jobs_service import JobsService
from nomadlab.remote.tail import Logs

pytestmark = [pytest.mark.sshd, pytest.mark.slurm]


class Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def log_lines(self, name: str, lines: list[LogLine]) -> None:
        self.lines.extend(line.text for line in lines)

    def log_status(self, status: LogStatus) -> None:
        pass


async def test_follow_a_jobs_stdout(slurm: SlurmCluster,  # noqa: F811
                                    make_sshd: Callable[..., SshServer],
                                    tmp_path: Path) -> None:
    server = make_sshd(slurm.env)
    server.write_known_hosts(server.base / "known_hosts")
    config = config_for(host_for(server, "login"), tmp=tmp_path)
    config.clusters = [ClusterConfig("tiny", "login")]
    config.tail = TailSettings(lines=500, max_lines=10_000, poll=0.05, glob_every=0.2)
    store = Store(config.database)
    fleet = Fleet(config, store=store)
    logs = Logs(config, fleet, retry=0.3)
    heard = Lines()
    logs.listeners.append(heard)
    jobs = JobsService(config, fleet, store=store)
    job_id = slurm.sbatch("for i in 1 2 3 4 5 6 7 8 9 10; do echo step $i; sleep 0.5; done",
                          "-J", "chatty", "-o", f"{slurm.shared}/chatty-%j.log")
    slurm.wait_state(job_id, ("RUNNING", "COMPLETED"))
    await fleet.start()
    await logs.start()
    try:
        (client,) = jobs.clients.values()
        snap, _ = await client.poll()
        jobs.apply(snap)
        job = jobs.find("tiny", job_id)
        assert job is not None
        path = await jobs.output_path(job)
        assert path == f"{slurm.shared}/chatty-{job_id}.log"
        host = jobs.login_host("tiny")
        assert host == "login"
        name = logs.open_adhoc(host, path)
        assert name in logs.tails
        await wait_for(lambda: "step 10" in heard.lines, 30, "the job's last line")
        assert heard.lines[heard.lines.index("step 1"):][:3] == ["step 1", "step 2", "step 3"]
    finally:
        await logs.stop()
        await jobs.stop()
        await fleet.stop()
        store.close()
