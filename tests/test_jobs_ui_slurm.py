"""The Jobs screen against the real one-node Slurm: `c` asks, then cancels the job."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import wait_for
from slurm import SlurmCluster
from sshd import SshServer
from test_jobs_slurm import cluster_config, login, slurm  # noqa: F401  (fixtures)

from nomadlab.cli.tui import build_app
from nomadlab.ui.confirm import ConfirmScreen
from nomadlab.ui.jobs.screen import JobsScreen
from nomadlab.ui.jobs.table import JobsTable

pytestmark = [pytest.mark.sshd, pytest.mark.slurm]


async def test_cancel_from_the_jobs_screen(slurm: SlurmCluster, login: SshServer,  # noqa: F811
                                           tmp_path: Path) -> None:
    job = slurm.sbatch("sleep 120", "-J", "cancel-me")
    slurm.wait_state(job, ("RUNNING",))
    config = cluster_config(login, tmp_path)
    app = build_app(config, start_fleet=True)
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            await pilot.press("6")
            screen = app.screen
            assert isinstance(screen, JobsScreen)
            table = screen.query_one(JobsTable)
            key = f"j\x00tiny\x00{job}"
            await wait_for(lambda: key in table.jobs_by_key and key in table.rows, 30,
                           "the job on the Jobs screen")
            table.move_cursor(row=table.get_row_index(key))
            await pilot.press("c")
            await wait_for(lambda: isinstance(app.screen, ConfirmScreen), 5, "the question")
            assert f"tiny:{job} (cancel-me)" in app.screen.body.plain  # type: ignore[attr-defined]
            await pilot.press("y")
            await wait_for(lambda: any("cancel: tiny:" in n.message
                                       for n in app._notifications), 20, "the cancel")
            assert slurm.wait_state(job, ("CANCELLED",)) == "CANCELLED"
    finally:
        slurm.run("scancel", job, check=False)
