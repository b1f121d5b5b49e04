"""Jobs as plain data: the ``nomadlab jobs --json`` contract and table rows."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from nomadlab.core.jobs.model import ClusterSnapshot, Job
from nomadlab.core.jobs.reasons import reason_words


def iso(when: float | None) -> str | None:
    if when is None:
        return None
    return datetime.fromtimestamp(when, UTC).isoformat().replace("+00:00", "Z")


def job_json(job: Job, now: float) -> dict[str, Any]:
    elapsed = job.elapsed_s(now)
    return {
        "id": job.id, "name": job.name, "user": job.user, "state": job.state,
        "reason": job.reason, "partition": job.partition, "nodes": job.nodes,
        "gpus": job.gpus, "submit_time": iso(job.submit_time),
        "start_time": iso(job.start_time),
        "elapsed_s": round(elapsed) if elapsed is not None else None,
        "time_limit_s": round(job.time_limit_s) if job.time_limit_s is not None else None,
        "stdout": job.stdout, "stderr": job.stderr, "exit_code": job.exit_code,
    }


def cluster_json(snap: ClusterSnapshot, now: float) -> dict[str, Any]:
    return {
        "name": snap.name, "state": str(snap.state), "error": snap.error,
        "partitions": [{"name": p.name, "gpus_idle": p.gpus_idle, "gpus_alloc": p.gpus_alloc,
                        "gpus_total": p.gpus_total} for p in snap.partitions],
        "jobs": [job_json(j, now) for j in snap.jobs],
    }


def state_words(job: Job) -> str:
    """``PENDING Resources (waiting for free resources)``, ``FAILED exit 1``..."""
    if job.pending:
        words = reason_words(job.reason)
        return f"{job.state} {words}".strip()
    if job.state == "FAILED" and job.exit_code is not None:
        return f"FAILED exit {job.exit_code}"
    return job.state
