"""The week report gains GPU hours of my Slurm jobs per cluster (from the jobs the
jobs service recorded in the store)."""

from __future__ import annotations

from pathlib import Path

import ui_data

from nomadlab.core.clock import ManualClock
from nomadlab.core.focus import FocusService
from nomadlab.core.focus.report import week_report
from nomadlab.core.jobs.history import JobHistory
from nomadlab.core.jobs.model import Job
from nomadlab.core.store import Store

NOW = ui_data.START  # Wednesday 2026-11-18 11:06:40 UTC, in week 2026-W47
H = 3600.0


def job(cluster: str, ident: str, user: str, state: str, gpus: int | None, start: float,
        end: float | None = None) -> Job:
    return Job(cluster=cluster, id=ident, job_id=int(ident.split("_", maxsplit=1)[0]),
               name="train", user=user, state=state, gpus=gpus, start_time=start,
               end_time=end)


def test_gpu_hours_per_cluster_in_the_week(tmp_path: Path) -> None:
    cfg = ui_data.config(tmp_path)
    store = Store(cfg.database)
    history = JobHistory(store)
    week_start = NOW - 2 * 24 * H - 7 * H - 6 * 60 - 40  # Monday 04:00 (focus.day_starts)
    # della: 4 GPUs x 3 h done, 2 GPUs running since 1 h (seen now); bob's job ignored
    history.record([job("della", "1", "alice", "COMPLETED", 4, NOW - 10 * H, NOW - 7 * H),
                    job("della", "2", "alice", "RUNNING", 2, NOW - H),
                    job("della", "3", "bob", "RUNNING", 8, NOW - 5 * H)], "alice", NOW)
    # tiger: an array task of 1 GPU, half of it before the week began; a pending job
    history.record([job("tiger", "9_1", "alice", "TIMEOUT", 1, week_start - 2 * H,
                        week_start + 2 * H),
                    Job(cluster="tiger", id="10", job_id=10, name="p", user="alice",
                        state="PENDING", gpus=1)], "alice", NOW)
    # a later poll of the same running job updates it, never counts it twice
    history.record([job("della", "2", "alice", "RUNNING", 2, NOW - H)], "alice", NOW)

    focus = FocusService(cfg, store, ManualClock(NOW))
    report = week_report(focus, "2026-W47")
    assert report.jobs == [{"cluster": "della", "gpu_hours": 14.0, "jobs": 2},
                           {"cluster": "tiger", "gpu_hours": 2.0, "jobs": 1}]
    rows = dict(report.stat_lines())
    assert rows["Slurm jobs"] == "16.0 GPU h in 3 jobs on della 14.0 h, tiger 2.0 h"
    assert "Slurm jobs:" in report.text()
    assert report.to_dict()["jobs"][0]["cluster"] == "della"
    assert "**Slurm jobs:**" in report.markdown()
    store.close()


def test_no_jobs_no_line(tmp_path: Path) -> None:
    cfg = ui_data.config(tmp_path)
    store = Store(cfg.database)
    report = week_report(FocusService(cfg, store, ManualClock(NOW)), "2026-W47")
    assert report.jobs == [] and "Slurm jobs" not in dict(report.stat_lines())
    store.close()
