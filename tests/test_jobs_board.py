"""Cards linked to Slurm jobs (job=CLUSTER:ID): they follow the real job, move when it
completes, are marked failed when it fails, and both are undoable."""

from __future__ import annotations

from pathlib import Path

import pytest
from slurm import SlurmCluster
from sshd import SshServer
from test_jobs_slurm import cluster_config, login, slurm  # noqa: F401  (fixtures)

from nomadlab.core.board import BoardService, make_service
from nomadlab.core.board.model import BoardError
from nomadlab.core.clock import SYSTEM_CLOCK
from nomadlab.core.store import Store
from nomadlab.notify.hub import AlertHub
from nomadlab.remote.fleet import Fleet
from nomadlab.remote.jobs_service import JobsService

pytestmark = [pytest.mark.sshd, pytest.mark.slurm]


def test_job_link_must_be_cluster_and_id(tmp_path: Path) -> None:
    from nomadlab.core.config import load_config_text

    config = load_config_text(f'data_dir = "{tmp_path}"\n')
    store = Store(config.database)
    board = make_service(config=config, store=store, clock=SYSTEM_CLOCK)
    with pytest.raises(BoardError, match="CLUSTER:ID"):
        board.add_card("x", links={"job": "4242"}, origin="tui")
    card = board.add_card("x", links={"job": "della:4242_3"}, origin="tui")
    assert board.card(card).links["job"] == "della:4242_3"  # type: ignore[union-attr]
    store.close()


async def test_cards_follow_real_jobs(slurm: SlurmCluster, login: SshServer,  # noqa: F811
                                      tmp_path: Path) -> None:
    config = cluster_config(login, tmp_path)
    store = Store(config.database)
    fleet = Fleet(config, store=store)
    hub = AlertHub(config, store)
    board = make_service(config=config, store=store, clock=SYSTEM_CLOCK, fleet=fleet,
                         alerts=hub)
    assert isinstance(board, BoardService)
    jobs = JobsService(config, fleet, store=store, alerts=hub)
    board.jobs = jobs
    (client,) = jobs.clients.values()
    try:
        snap, events = await client.poll()
        jobs.apply(snap)
        running = slurm.sbatch("echo step 1; sleep 30", "-J", "exp-run", "--gres=gpu:1")
        good = slurm.sbatch("echo done", "-J", "exp-good")
        bad = slurm.sbatch("echo oops; exit 5", "-J", "exp-bad")
        slurm.wait_state(running, ("RUNNING",))
        slurm.wait_state(good, ("COMPLETED",))
        slurm.wait_state(bad, ("FAILED",))
        a = board.add_card("run", column="Training", origin="tui",
                           links={"job": f"tiny:{running}"})
        b = board.add_card("good", column="Training", origin="tui",
                           links={"job": f"tiny:{good}"})
        c = board.add_card("bad", column="Training", origin="tui", links={"job": f"tiny:{bad}"})
        snap, events = await client.poll()
        jobs.apply(snap)
        jobs.on_events(events)
        card_a = board.card(a)
        assert card_a is not None
        live = board.live(card_a)
        assert live.job_state == "RUNNING" and live.running_for is not None
        assert board.log_name(card_a) == f"login:{slurm.shared}/slurm-{running}.out"
        assert board.card(b).column == "Evaluation"  # type: ignore[union-attr]
        failed = board.card(c)
        assert failed is not None and failed.column == "Training"
        assert failed.failed is not None and f"tiny:{bad}" in failed.failed
        # both undoable, newest first
        assert board.undo() is not None
        assert board.card(c).failed is None  # type: ignore[union-attr]
        assert board.undo() is not None
        assert board.card(b).column == "Training"  # type: ignore[union-attr]
    finally:
        slurm.run("scancel", running, check=False)
        await jobs.stop()
        store.close()
