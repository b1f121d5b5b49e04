"""A job's own GPUs: the fleet agent started inside the job's allocation with
``srun --jobid=ID --overlap``, over the login node's SSH connection, so it works
where compute nodes cannot be reached by SSH. The agent streams samples of the node
the job runs on; its stdin (and so the agent and the srun step) ends with the session.
"""

from __future__ import annotations

import shlex

import asyncssh

from nomadlab.core.clock import SYSTEM_CLOCK, Clock
from nomadlab.remote import bootstrap
from nomadlab.remote.session import AgentSession, SessionSink


class JobAgentSession(AgentSession):
    def __init__(self, conn: asyncssh.SSHClientConnection, job_id: int, label: str,
                 sink: SessionSink, clock: Clock = SYSTEM_CLOCK, *, interval: float = 1.0,
                 python: str = "python3") -> None:
        super().__init__(conn, label, sink, clock, interval=interval, python=python)
        self.job_id = int(job_id)

    def command(self) -> str:
        step = (f"srun --jobid={self.job_id} --overlap --nodes=1 --ntasks=1 --quiet "
                f"{shlex.quote(self.python)} -u -c {shlex.quote(bootstrap.BOOT)}")
        return "exec sh -c " + shlex.quote(f"exec {step}")
