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
    SEEN_EVERY = 300.0  # a running job's "last seen" is written at most this often

    def __init__(self, store: Store) -> None:
        self.store = store
        # what was last written per job, and when: a poll of an unchanged queue writes
        # nothing (the UI thread does not wait on the disk every refresh)
        self._written: dict[tuple[str, str], tuple[object, ...]] = {}
        self._seen: dict[tuple[str, str], float] = {}

    def record(self, jobs: Iterable[Job], user: str | None, now: float) -> None:
        """Remember started jobs (``user`` given: only that user's)."""
        rows = []
        for j in jobs:
            if j.start_time is None or (user is not None and j.user != user):
                continue
            key = (j.cluster, j.id)
            value = (j.name, j.state, j.gpus, j.start_time, j.end_time if j.final else None)
            if self._written.get(key) == value and now - self._seen.get(key, 0.0) < (
                    self.SEEN_EVERY):
                continue
            self._written[key] = value
            self._seen[key] = now
            rows.append(j)
        if not rows:
            return
        with self.store.transaction("jobs") as db:
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
