"""The user's jobs kept in the Store (component "jobs"): GPU hours for the week report."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from nomadlab.core.jobs.model import Job
from nomadlab.core.store import Store


@dataclass(slots=True)
class ClusterHours:
    cluster: str
    gpu_hours: float
    jobs: int


class JobHistory:
    def __init__(self, store: Store) -> None:
        self.store = store

    def record(self, jobs: Iterable[Job], user: str | None, now: float) -> None:
        """Remember started jobs (``user`` given: only that user's)."""
        rows = [j for j in jobs if j.start_time is not None and (user is None or j.user == user)]
        if not rows:
            return
        with self.store.transaction() as db:
            db.executemany(
                "INSERT INTO job_runs(cluster, job, name, user, state, gpus, start_time,"
                " end_time, seen) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT(cluster, job) DO UPDATE SET name = excluded.name,"
                " state = excluded.state, gpus = COALESCE(excluded.gpus, job_runs.gpus),"
                " start_time = excluded.start_time,"
                " end_time = COALESCE(excluded.end_time, job_runs.end_time),"
                " seen = MAX(job_runs.seen, excluded.seen)",
                [(j.cluster, j.id, j.name, j.user, j.state, j.gpus, j.start_time,
                  j.end_time if j.final else None, now) for j in rows],
            )

    def gpu_hours(self, since: float, until: float) -> list[ClusterHours]:
        """GPU hours per cluster of the jobs' time inside [since, until): a job still
        running counts up to the last poll that saw it."""
        rows = self.store.query(
            "SELECT cluster, gpus, start_time, COALESCE(end_time, seen) AS stop FROM job_runs"
            " WHERE start_time < ? AND COALESCE(end_time, seen) > ?", (until, since))
        totals: dict[str, list[float]] = {}
        for row in rows:
            start = max(float(row["start_time"]), since)
            stop = min(float(row["stop"]), until)
            if stop <= start:
                continue
            acc = totals.setdefault(str(row["cluster"]), [0.0, 0.0])
            acc[0] += (row["gpus"] or 0) * (stop - start) / 3600
            acc[1] += 1
        return [ClusterHours(name, round(h, 2), int(n)) for name, (h, n) in sorted(totals.items())]
