"""Slurm's pending reason codes, said in words."""

from __future__ import annotations

REASONS: dict[str, str] = {
    "Priority": "waiting behind higher-priority jobs",
    "Resources": "waiting for free resources",
    "Dependency": "waiting for a job it depends on",
    "DependencyNeverSatisfied": "its dependency can never be met",
    "BeginTime": "its start time has not come",
    "JobHeldUser": "held by you",
    "JobHeldAdmin": "held by an administrator",
    "ReqNodeNotAvail": "a requested node is unavailable",
    "PartitionDown": "the partition is down",
    "PartitionInactive": "the partition is inactive",
    "PartitionNodeLimit": "asks for more nodes than the partition allows",
    "PartitionTimeLimit": "asks for more time than the partition allows",
    "QOSMaxGRESPerUser": "your QOS GPU limit is reached",
    "QOSMaxCpuPerUserLimit": "your QOS CPU limit is reached",
    "QOSMaxJobsPerUserLimit": "your QOS job limit is reached",
    "QOSMaxSubmitJobPerUserLimit": "your QOS submit limit is reached",
    "QOSMaxWallDurationPerJobLimit": "asks for more time than the QOS allows",
    "QOSGrpGRES": "the QOS group GPU limit is reached",
    "QOSGrpCpuLimit": "the QOS group CPU limit is reached",
    "QOSJobLimit": "the QOS job limit is reached",
    "AssocMaxJobsLimit": "your account's job limit is reached",
    "AssocGrpGRES": "your account's GPU limit is reached",
    "AssocGrpCpuLimit": "your account's CPU limit is reached",
    "AssocGrpBillingMinutes": "your account's billing minutes are used up",
    "Reservation": "waiting for its reservation",
    "Licenses": "waiting for licenses",
    "NodeDown": "a node it needs is down",
    "BadConstraints": "its constraints cannot be met",
    "InvalidAccount": "invalid account",
    "InvalidQOS": "invalid QOS",
    "launch failed requeued held": "launch failed; requeued and held",
    "NonZeroExitCode": "exited with a non-zero code",
    "TimeLimit": "reached its time limit",
    "OutOfMemory": "ran out of memory",
    "Prolog": "running the prolog",
    "Cleaning": "being cleaned up",
}


def reason_words(code: str | None) -> str:
    """``Priority (waiting behind higher-priority jobs)``; the code alone when unknown."""
    if not code or code == "None":
        return ""
    words = REASONS.get(code)
    return f"{code} ({words})" if words else code
