"""The README's Jobs screenshot, from a real one-node Slurm.

Run: python screenshots/make_jobs_screenshot.py

Needs root, Debian's slurm-wlm and munge, and OpenSSH's sshd (the test fixtures
tests/slurm.py and tests/sshd.py start them in a temp dir). Jobs are submitted with
sbatch (one running on 2 GPUs, one pending on Resources, one held, an array, one that
fails); the TUI polls them over SSH like any cluster and the Jobs screen is saved as
screenshots/jobs.svg.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from slurm import SlurmCluster  # noqa: E402
from sshd import SshServer  # noqa: E402

from nomadlab.cli.tui import build_app  # noqa: E402
from nomadlab.core.config import ClusterConfig, HostConfig, load_config_text  # noqa: E402


async def shoot(slurm: SlurmCluster, server: SshServer, base: Path) -> Path:
    config = load_config_text(f'data_dir = "{base / "data"}"\nshow_local = false\n')
    server.write_known_hosts(base / "known_hosts")
    config.hosts = [HostConfig("login", "127.0.0.1", port=server.port, user=server.user,
                               identity_file=str(server.client_key),
                               known_hosts=str(base / "known_hosts"))]
    config.clusters = [ClusterConfig("tiny", "login", refresh=5.0)]
    app = build_app(config, start_fleet=True)
    async with app.run_test(size=(160, 30)) as pilot:
        await pilot.press("6")
        jobs = app.services.jobs
        for _ in range(300):  # bounded: the first poll and its partitions
            await pilot.pause(0.1)
            snap = jobs.snapshots["tiny"]
            if snap.ok and snap.jobs and snap.partitions:
                break
        await pilot.pause(0.5)
        app.save_screenshot(filename="jobs.svg", path=str(HERE))
    return HERE / "jobs.svg"


def main() -> None:
    base = Path(tempfile.mkdtemp(prefix="nomadlab-shot-"))
    slurm = SlurmCluster(base / "slurm").start()
    server = SshServer(base / "sshd", slurm.env).start()
    try:
        bad = slurm.sbatch("echo boom; exit 3", "-J", "prep-data")
        slurm.wait_state(bad, ("FAILED",))
        run = slurm.sbatch("echo epoch 1; sleep 120", "-J", "llama-ft", "--gres=gpu:2", "-t", "60")
        slurm.wait_state(run, ("RUNNING",))
        slurm.sbatch("sleep 60", "-J", "eval-after", "--gres=gpu:1")
        slurm.sbatch("sleep 60", "-J", "sweep", "--array=0-3", "-H", "-t", "30")
        print(asyncio.run(shoot(slurm, server, base)))
    finally:
        slurm.run("scancel", "--user", "root", check=False)
        server.stop()
        slurm.stop()
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
