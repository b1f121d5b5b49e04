"""Jobs against a real one-node Slurm (tests/slurm.py), through the real sshd.

The login node is the test sshd on 127.0.0.1 (SLURM_CONF set by its SetEnv); every
Slurm command of nomadlab runs over that one SSH connection.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import config_for, host_for
from slurm import SlurmCluster
from sshd import SshServer

from nomadlab.cli import main
from nomadlab.core.config import ClusterConfig, Config
from nomadlab.core.jobs.events import JobEvent
from nomadlab.core.jobs.model import ClusterState
from nomadlab.remote.slurm import ClusterClient, make_clients
from nomadlab.remote.ssh import Connector

pytestmark = [pytest.mark.sshd, pytest.mark.slurm]


@pytest.fixture(scope="module")
def slurm() -> Iterator[SlurmCluster]:
    # Not under pytest's tmp dir (mode 0700): jobs of another user must reach it.
    base = Path(tempfile.mkdtemp(prefix="nomadlab-slurm-"))
    try:
        cluster = SlurmCluster(base).start()
        yield cluster
        cluster.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def login(make_sshd: Callable[..., SshServer], slurm: SlurmCluster) -> SshServer:
    server = make_sshd(slurm.env)
    server.write_known_hosts(server.base / "known_hosts")
    return server


def cluster_config(login: SshServer, tmp_path: Path, **cluster: object) -> Config:
    config = config_for(host_for(login, "login"), tmp=tmp_path)
    config.clusters = [ClusterConfig(name="tiny", host="login", refresh=5.0, timeout=10.0,
                                     **cluster)]  # type: ignore[arg-type]
    return config


def config_file(config: Config, login: SshServer, tmp_path: Path) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(f'''data_dir = "{tmp_path / 'data'}"
show_local = false

[ssh]
connect_timeout = "3s"

[[hosts]]
name = "login"
hostname = "127.0.0.1"
port = {login.port}
user = "{login.user}"
identity_file = "{login.client_key}"
known_hosts = "{login.base / 'known_hosts'}"

[[clusters]]
name = "tiny"
host = "login"
refresh = "5s"
''')
    return path


async def polled(client: ClusterClient) -> list[JobEvent]:
    snap, events = await client.poll()
    assert snap.state is ClusterState.LIVE, snap.error
    return events


def kinds(events: list[JobEvent]) -> list[tuple[str, str]]:
    return [(e.kind, e.job.id) for e in events]


async def test_jobs_lifecycle_events(slurm: SlurmCluster, login: SshServer,
                                     tmp_path: Path) -> None:
    config = cluster_config(login, tmp_path)
    connector = Connector(config.ssh, config.hosts)
    (client,) = make_clients(config, connector)
    try:
        await polled(client)
        assert client.user == login.user
        ok = slurm.sbatch("echo hello; exit 0", "-J", "ok-job", "--gres=gpu:1")
        bad = slurm.sbatch("echo boom; exit 97", "-J", "bad-job")
        slurm.wait_state(ok, ("COMPLETED",))
        slurm.wait_state(bad, ("FAILED",))
        events = await polled(client)
        seen = {(e.kind, e.job.id): e for e in events}
        assert ("completed", ok) in seen
        assert ("failed", bad) in seen
        assert seen[("failed", bad)].job.exit_code == 97  # not 24832, the raw wait status
        assert "exit code 97" in seen[("failed", bad)].message
        job = {j.id: j for j in client.snapshot.jobs}[ok]
        assert job.gpus == 1 and job.name == "ok-job" and job.partition == "gpu"
        assert job.stdout is not None and Path(job.stdout).read_text().strip() == "hello"

        # pending on resources (both GPUs busy), then started, then cancelled
        hog = slurm.sbatch("sleep 60", "-J", "hog", "--gres=gpu:2")
        slurm.wait_state(hog, ("RUNNING",))
        waiting = slurm.sbatch("sleep 60", "-J", "waiter", "--gres=gpu:1")
        slurm.wait_state(waiting, ("Resources",), key="Reason")
        await polled(client)
        jobs = {j.id: j for j in client.snapshot.jobs}
        assert jobs[hog].state == "RUNNING" and jobs[hog].gpus == 2
        assert jobs[waiting].state == "PENDING" and jobs[waiting].reason == "Resources"
        await client.act("cancel", hog)
        slurm.wait_state(waiting, ("RUNNING",))
        events = await polled(client)
        assert ("cancelled", hog) in kinds(events)
        assert ("started", waiting) in kinds(events)
    finally:
        slurm.run("scancel", "--user", "root", check=False)
        await client.runner.close()
        await connector.close()


async def test_hold_release_array_and_vanished_job(slurm: SlurmCluster, login: SshServer,
                                                   tmp_path: Path) -> None:
    config = cluster_config(login, tmp_path)
    connector = Connector(config.ssh, config.hosts)
    (client,) = make_clients(config, connector)
    try:
        await polled(client)
        held = slurm.sbatch("echo held-out", "-J", "held", "-H")
        array = slurm.sbatch("echo task $SLURM_ARRAY_TASK_ID", "-J", "arr", "--array=0-2")
        await polled(client)
        jobs = {j.id: j for j in client.snapshot.jobs}
        assert jobs[held].held and jobs[held].reason == "JobHeldUser"
        await client.act("release", held)
        slurm.wait_state(held, ("COMPLETED",))
        for task in range(3):
            slurm.wait_state(f"{array}_{task}", ("COMPLETED",))
        events = await polled(client)
        assert ("completed", held) in kinds(events)
        for task in range(3):
            assert ("completed", f"{array}_{task}") in kinds(events)
        # A job that leaves the queue between two polls: its final state from scontrol.
        gone = slurm.sbatch("sleep 30", "-J", "gone")
        slurm.wait_state(gone, ("RUNNING",))
        await polled(client)
        slurm.run("scancel", gone)
        slurm.wait_state(gone, ("CANCELLED",))
        # The queue of the next poll without it (as after MinJobAge): the tracker asks
        # for its final state, which scontrol still knows.
        rest = [j for j in client.tracker.jobs.values() if j.id != gone]
        assert client.tracker.update(rest) == []
        assert [j.id for j in client.tracker.vanished()] == [gone]
        finals = await client.final_states([int(gone)])
        assert client.accounting is False  # no slurmdbd here: scontrol answered
        events = client.tracker.ended(gone, finals.get(gone))
        assert kinds(events) == [("cancelled", gone)]
    finally:
        await client.runner.close()
        await connector.close()


def test_cli_jobs_json_and_actions(slurm: SlurmCluster, login: SshServer, tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    config = cluster_config(login, tmp_path)
    path = config_file(config, login, tmp_path)
    mine = slurm.sbatch("sleep 60", "-J", "cli-job")
    other = slurm.sbatch("sleep 60", "-J", "not-mine", user="nobody")
    try:
        assert main(["jobs", "--json", "--config", str(path)]) == 0
        data = json.loads(capsys.readouterr().out)
        (cluster,) = data["clusters"]
        assert cluster["name"] == "tiny" and cluster["state"] == "live"
        assert cluster["error"] is None
        assert cluster["partitions"] == [{"name": "gpu", "gpus_idle": 2, "gpus_alloc": 0,
                                          "gpus_total": 2}] or cluster["partitions"][0][
            "gpus_total"] == 2
        ids = {j["id"]: j for j in cluster["jobs"]}
        assert mine in ids and other not in ids  # my jobs only by default
        job = ids[mine]
        assert set(job) == {"id", "name", "user", "state", "reason", "partition", "nodes",
                            "gpus", "submit_time", "start_time", "elapsed_s", "time_limit_s",
                            "stdout", "stderr", "exit_code"}
        assert job["name"] == "cli-job" and job["submit_time"].endswith("Z")

        assert main(["jobs", "--config", str(path)]) == 0  # the table for humans
        table = capsys.readouterr().out
        assert "tiny: live" in table and "cli-job" in table and "not-mine" not in table

        assert main(["jobs", "--json", "--all-users", "--config", str(path)]) == 0
        ids = {j["id"] for j in json.loads(capsys.readouterr().out)["clusters"][0]["jobs"]}
        assert other in ids

        assert main(["jobs", "cancel", f"tiny:{other}", "--config", str(path)]) == 2
        err = capsys.readouterr().err
        assert "belongs to nobody" in err and err.count("\n") == 1
        assert main(["jobs", "cancel", f"nowhere:{mine}", "--config", str(path)]) == 2
        assert "unknown cluster" in capsys.readouterr().err
        assert main(["jobs", "hold", "tiny:999999", "--config", str(path)]) == 2
        assert "no job 999999" in capsys.readouterr().err
        assert main(["jobs", "cancel", f"tiny:{mine}", "--config", str(path)]) == 0
        assert "cancel: tiny:" in capsys.readouterr().out
        assert slurm.wait_state(mine, ("CANCELLED",)) == "CANCELLED"
        assert slurm.wait_state(other, ("RUNNING", "PENDING")) in ("RUNNING", "PENDING")
    finally:
        slurm.run("scancel", other, check=False)
        slurm.run("scancel", mine, check=False)


def test_cli_jobs_controller_down_exit_1(slurm: SlurmCluster, make_sshd: Callable[..., SshServer],
                                         tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                         ) -> None:
    # A login node whose SLURM_CONF points at a controller nobody runs.
    broken = tmp_path / "broken.conf"
    text = slurm.conf.read_text()
    port = next(line for line in text.splitlines() if line.startswith("SlurmctldPort="))
    broken.write_text(text.replace(port, "SlurmctldPort=1"))
    os.chmod(broken, 0o644)
    server = make_sshd({"SLURM_CONF": str(broken)})
    server.write_known_hosts(server.base / "known_hosts")
    config = cluster_config(server, tmp_path)
    path = config_file(config, server, tmp_path)
    assert main(["jobs", "--json", "--config", str(path)]) == 1
    (cluster,) = json.loads(capsys.readouterr().out)["clusters"]
    assert cluster["state"] == "down" and cluster["error"].startswith("squeue failed")
    assert cluster["jobs"] == []
