"""Job state changes between two polls, as events a human cares about.

``JobTracker.update(jobs)`` takes one poll's jobs (already filtered to the ones we
follow) and returns what happened since the previous poll. A job that vanished from
the queue between two polls is returned by ``vanished()``: the caller looks up its
final state (``sacct`` or ``scontrol``) and hands it to ``ended()``, so a job that
ends between polls is still reported, with its final state.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from nomadlab.core.jobs.model import Job

# final state -> event kind
FINAL_KINDS = {
    "COMPLETED": "completed",
    "FAILED": "failed",
    "TIMEOUT": "timeout",
    "OUT_OF_MEMORY": "out_of_memory",
    "NODE_FAIL": "node_fail",
    "PREEMPTED": "preempted",
    "CANCELLED": "cancelled",
    "BOOT_FAIL": "failed",
    "DEADLINE": "timeout",
    "SPECIAL_EXIT": "failed",
    "REVOKED": "cancelled",
}
EVENT_KINDS = ("started", "completed", "failed", "timeout", "out_of_memory", "node_fail",
               "preempted", "cancelled", "vanished")
SEVERITY = {"started": "info", "completed": "info", "failed": "error", "timeout": "error",
            "out_of_memory": "error", "node_fail": "error", "preempted": "warning",
            "cancelled": "warning", "vanished": "warning"}
WORDS = {"started": "started", "completed": "completed", "failed": "failed",
         "timeout": "timed out", "out_of_memory": "ran out of memory",
         "node_fail": "lost its node", "preempted": "was preempted",
         "cancelled": "was cancelled", "vanished": "left the queue"}


@dataclass(slots=True)
class JobEvent:
    kind: str  # one of EVENT_KINDS
    job: Job

    @property
    def severity(self) -> str:
        return SEVERITY[self.kind]

    @property
    def title(self) -> str:
        return f"job {WORDS[self.kind]}: {self.job.name} ({self.job.key})"

    @property
    def message(self) -> str:
        job = self.job
        text = f"Slurm job {job.id} {job.name!r} on {job.cluster} {WORDS[self.kind]}"
        if self.kind == "started" and job.nodes:
            text += f" on {job.nodes}"
        if self.kind == "failed" and job.exit_code is not None:
            text += f" with exit code {job.exit_code}"
        if job.signal:
            text += f" (signal {job.signal})"
        if self.kind == "vanished":
            text += "; its final state is unknown (no accounting, and the controller forgot it)"
        return text + "."


def final_event(job: Job) -> JobEvent | None:
    kind = FINAL_KINDS.get(job.state)
    return JobEvent(kind, job) if kind else None


class JobTracker:
    """Remembers the jobs of one cluster between polls."""

    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.primed = False  # the first poll only learns; it reports nothing
        self._gone: dict[str, Job] = {}

    def update(self, jobs: Iterable[Job]) -> list[JobEvent]:
        now = {job.id: job for job in jobs}
        events: list[JobEvent] = []
        if self.primed:
            for ident, job in now.items():
                before = self.jobs.get(ident)
                if before is not None and before.final:
                    continue
                was_pending = before is None or before.pending
                if not job.pending and not job.final and was_pending:
                    events.append(JobEvent("started", job))
                if job.final:
                    # seen pending, then already over: it did start in between
                    if before is not None and before.pending and job.start_time is not None:
                        events.append(JobEvent("started", job))
                    # a job first seen already over ended between two polls: still news
                    event = final_event(job)
                    if event is not None:
                        events.append(event)
            self._gone = {ident: job for ident, job in self.jobs.items()
                          if ident not in now and not job.final}
        self.jobs = now
        self.primed = True
        return events

    def vanished(self) -> list[Job]:
        """Jobs that were live at the previous poll and are not in the queue now."""
        return list(self._gone.values())

    def ended(self, ident: str, final: Job | None) -> list[JobEvent]:
        """The final state of a vanished job (None: nobody knows it any more)."""
        before = self._gone.pop(ident, None)
        if before is None:
            return []
        if final is None or not final.final:
            return [JobEvent("vanished", before)]
        event = final_event(final)
        return [event] if event is not None else []
