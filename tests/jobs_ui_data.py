"""Fixed Slurm data for the jobs UI tests: the recorded 23.11 queue, moved to the UI
clock, plus a second cluster that cannot be reached."""

from __future__ import annotations

from pathlib import Path

import ui_data

from nomadlab.core.config import ClusterConfig, HostConfig
from nomadlab.core.jobs.model import ClusterSnapshot, ClusterState, PartitionGpus
from nomadlab.core.jobs.parse import parse_squeue_json

DATA = Path(__file__).resolve().parent / "data" / "slurm"
RECORDED_NOW = 1765000000.0 + 3600  # an hour after the recorded jobs started


def snapshots(now: float) -> list[ClusterSnapshot]:
    jobs = parse_squeue_json((DATA / "squeue-23.11.json").read_text(), "della").jobs
    shift = now - RECORDED_NOW
    for job in jobs:
        for attr in ("submit_time", "start_time", "end_time"):
            value = getattr(job, attr)
            if value is not None:
                setattr(job, attr, value + shift)
    della = ClusterSnapshot("della", ClusterState.LIVE, None, jobs,
                            [PartitionGpus("gpu", 2, 6, 8), PartitionGpus("mig", 7, 0, 7)],
                            polled_at=now, user="alice")
    tiger = ClusterSnapshot("tiger", ClusterState.DOWN,
                            "cannot reach tiger-login: connection refused", [], [],
                            user=None)
    return [della, tiger]


def build(tmp: Path, panes: list[str] | None = None):  # type: ignore[no-untyped-def]
    """(app, clock): the fixed fleet app with two clusters whose state is handed in."""
    from nomadlab.cli.tui import build_app
    from nomadlab.core.clock import ManualClock
    from nomadlab.core.store import Store
    from nomadlab.remote.fleet import Fleet

    clock = ManualClock(ui_data.START)
    cfg = ui_data.config(tmp)
    cfg.hosts.append(HostConfig("della-login", "198.51.100.4", enabled=False))
    cfg.clusters = [ClusterConfig("della", "della-login"), ClusterConfig("tiger", "tiger-login")]
    if panes is not None:
        cfg.workspace.panes = panes
    store = Store(cfg.database)
    fleet = Fleet(cfg, store=store, clock=clock)
    ui_data.feed(fleet, clock)
    app = build_app(cfg, clock=clock, start_fleet=False, store=store, fleet=fleet)
    for snap in snapshots(clock.time()):
        app.services.jobs.apply(snap)
    return app, clock
