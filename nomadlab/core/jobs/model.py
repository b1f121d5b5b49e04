"""What a job and a cluster look like to the rest of nomadlab."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass, field

# Slurm's base job states, and which of them are final.
PENDING_STATES = frozenset({"PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"})
ACTIVE_STATES = frozenset({"RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "STOPPED",
                           "SIGNALING", "STAGE_OUT", "RESIZING"})
FINAL_STATES = frozenset({"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY",
                          "NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "DEADLINE", "REVOKED",
                          "SPECIAL_EXIT"})


class ClusterState(enum.StrEnum):
    """The same words a host uses."""

    CONNECTING = "connecting"
    LIVE = "live"
    STALE = "stale"  # the last answer is shown, but the latest poll failed
    DOWN = "down"  # never answered, or the login node is unreachable


@dataclass(slots=True)
class Job:
    cluster: str
    id: str  # "123", or "123_4" for an array task, "123_[0-9]" for pending array tasks
    job_id: int  # Slurm's numeric id (the array task's own id for array tasks)
    name: str
    user: str
    state: str  # base state in capitals: RUNNING, PENDING, COMPLETED...
    reason: str | None = None  # Slurm's reason code (Priority, Resources...), None for "None"
    partition: str | None = None
    nodes: str | None = None
    gpus: int | None = None
    submit_time: float | None = None  # epoch seconds
    start_time: float | None = None
    end_time: float | None = None
    time_limit_s: float | None = None  # None: unlimited or unknown
    stdout: str | None = None
    stderr: str | None = None
    exit_code: int | None = None
    signal: int | None = None
    held: bool = False
    array_job_id: int | None = None  # set for array tasks

    @property
    def key(self) -> str:
        return f"{self.cluster}:{self.id}"

    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def pending(self) -> bool:
        return self.state in PENDING_STATES

    def elapsed_s(self, now: float | None = None) -> float | None:
        if self.start_time is None or self.pending:
            return None
        end = self.end_time if self.final and self.end_time else (
            now if now is not None else time.time())
        return max(0.0, end - self.start_time)


@dataclass(slots=True)
class PartitionGpus:
    name: str
    gpus_idle: int
    gpus_alloc: int
    gpus_total: int


@dataclass(slots=True)
class ClusterSnapshot:
    name: str
    state: ClusterState = ClusterState.CONNECTING
    error: str | None = None
    jobs: list[Job] = field(default_factory=list)
    partitions: list[PartitionGpus] = field(default_factory=list)
    polled_at: float | None = None  # wall clock of the last good squeue
    user: str | None = None  # the SSH user: whose jobs are "mine"

    @property
    def ok(self) -> bool:
        return self.state is ClusterState.LIVE
