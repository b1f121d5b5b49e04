"""A login node whose squeue hangs or prints garbage: the cluster goes stale with the
reason, keeps its last answer, and nothing waits longer than the cluster's timeout.
The stand-in squeue on the login node's PATH runs the real one unless told not to."""

from __future__ import annotations

import os
import stat
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import config_for, host_for, wait_for
from slurm import SlurmCluster
from sshd import SshServer
from test_jobs_slurm import slurm  # noqa: F401  (fixture)

from nomadlab.core.config import ClusterConfig
from nomadlab.core.jobs.model import ClusterState
from nomadlab.remote.slurm import make_clients
from nomadlab.remote.ssh import Connector

pytestmark = [pytest.mark.sshd, pytest.mark.slurm]


def standin(directory: Path, mode: Path, real: str) -> None:
    directory.mkdir()
    script = directory / "squeue"
    script.write_text(f"""#!/bin/sh
case "$(cat {mode} 2>/dev/null)" in
  hang) exec sleep 300 ;;
  garbage) echo '{{"jobs": [ {{"job_id": '; exit 0 ;;
esac
exec {real} "$@"
""")
    script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


async def test_hanging_and_garbage_squeue(slurm: SlurmCluster,  # noqa: F811
                                          make_sshd: Callable[..., SshServer],
                                          tmp_path: Path) -> None:
    mode = tmp_path / "mode"
    bin_dir = tmp_path / "bin"
    standin(bin_dir, mode, slurm.bins["squeue"])
    env = {**slurm.env, "PATH": f"{bin_dir}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    server = make_sshd(env)
    server.write_known_hosts(server.base / "known_hosts")
    config = config_for(host_for(server, "login"), tmp=tmp_path)
    config.clusters = [ClusterConfig("tiny", "login", timeout=2.0)]
    connector = Connector(config.ssh, config.hosts)
    (client,) = make_clients(config, connector)
    job = slurm.sbatch("sleep 60", "-J", "kept")
    try:
        snap, _ = await client.poll()
        assert snap.state is ClusterState.LIVE and any(j.id == job for j in snap.jobs)

        mode.write_text("hang")
        started = time.monotonic()
        snap, events = await client.poll()
        assert time.monotonic() - started < 2.0 + 5  # the cluster's timeout, not longer
        assert snap.state is ClusterState.STALE and events == []
        assert snap.error == "no answer within 2s"
        assert any(j.id == job for j in snap.jobs)  # the last answer is still shown

        # the remote `timeout` ended the hanging squeue: nothing of ours keeps running
        def sleeping() -> list[int]:
            found = []
            for pid in server.session_pids():
                try:
                    if b"sleep\x00300" in Path(f"/proc/{pid}/cmdline").read_bytes():
                        found.append(pid)
                except OSError:  # ended meanwhile
                    pass
            return found
        await wait_for(lambda: not sleeping(), 10, "the hanging squeue to end")

        mode.write_text("garbage")
        snap, _ = await client.poll()
        assert snap.state is ClusterState.STALE
        assert snap.error is not None and "not JSON" in snap.error

        mode.write_text("")
        snap, _ = await client.poll()
        assert snap.state is ClusterState.LIVE and snap.error is None
    finally:
        slurm.run("scancel", job, check=False)
        await client.runner.close()
        await connector.close()
