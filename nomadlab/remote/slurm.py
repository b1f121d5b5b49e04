"""Slurm commands on a cluster's login node, over its one SSH connection.

One ``squeue --json`` per refresh (falling back to ``squeue --format`` where the JSON
plugins are missing), ``sinfo --json`` every ``SINFO_EVERY`` refreshes, ``sacct``
or ``scontrol`` only for jobs that left the queue, ``scancel``/``scontrol hold``
for the user's actions. Every command runs under the remote ``timeout`` and a local
one: a hanging controller makes the cluster stale, nothing else waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import shlex
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

import asyncssh

from nomadlab.core.clock import SYSTEM_CLOCK, Clock
from nomadlab.core.config import ClusterConfig, Config, HostConfig
from nomadlab.core.jobs.events import JobEvent, JobTracker
from nomadlab.core.jobs.model import ClusterSnapshot, ClusterState, Job
from nomadlab.core.jobs.parse import (
    FALLBACK_FORMAT,
    SlurmParseError,
    clean,
    mine,
    parse_scontrol_job,
    parse_sinfo_json,
    parse_squeue_json,
    parse_squeue_text,
)
from nomadlab.core.tasks import BackgroundTask
from nomadlab.remote.ssh import Connector
from nomadlab.remote.ssh_errors import ConnectFailure

log = logging.getLogger(__name__)

SINFO_EVERY = 4  # refreshes between two sinfo calls
OUTPUT_LIMIT = 64 * 1024 * 1024  # bytes of one command's output we accept
ENV = "env TZ=UTC SLURM_TIME_FORMAT=%s"
ACTIONS = {"cancel": "scancel", "hold": "scontrol hold", "release": "scontrol release"}


class SlurmError(Exception):
    """A Slurm command failed; the message is one line for the user."""


@dataclass(slots=True)
class Result:
    status: int
    stdout: str
    stderr: str


class Runner(Protocol):
    async def run(self, command: str, timeout: float) -> Result: ...

    async def close(self) -> None: ...


class SshRunner:
    """Runs commands on one SSH connection: the fleet's for a [[hosts]] login node
    (``connection`` given), or one of its own opened on first use and kept."""

    def __init__(self, host: HostConfig, connector: Connector,
                 connection: Callable[[], asyncssh.SSHClientConnection | None] | None = None
                 ) -> None:
        self.host = host
        self.connector = connector
        self.shared = connection
        self._own: asyncssh.SSHClientConnection | None = None
        self._lock = asyncio.Lock()
        self.commands = 0  # how many commands ran (benchmarks, tests)

    async def connection(self) -> asyncssh.SSHClientConnection:
        """The login node's connection (for long-running channels: a job's GPUs)."""
        try:
            return await self._conn()
        except ConnectFailure as exc:
            raise SlurmError(f"cannot reach {self.host.name}: {exc}") from None

    async def _conn(self) -> asyncssh.SSHClientConnection:
        if self.shared is not None:
            conn = self.shared()
            if conn is not None:
                return conn
        async with self._lock:
            if self._own is None or self._own.is_closed():
                self._own = await self.connector.connect(self.host, label=self.host.name)
            return self._own

    async def run(self, command: str, timeout: float) -> Result:
        try:
            async with asyncio.timeout(timeout + 30):  # wait_for can drop a cancel: gh-86296
                conn = await self._conn()
        except ConnectFailure as exc:
            raise SlurmError(f"cannot reach {self.host.name}: {exc}") from None
        except TimeoutError:
            raise SlurmError(f"cannot reach {self.host.name}: connecting timed out") from None
        self.commands += 1
        remote = f"timeout {int(timeout) + 1} sh -c {shlex.quote(command)}"
        try:
            proc = await asyncio.wait_for(
                conn.run(remote, check=False, errors="replace"), timeout + 2)
        except TimeoutError:
            raise SlurmError(f"no answer within {timeout:.0f}s") from None
        except (OSError, asyncssh.Error) as exc:
            if self._own is not None:
                self._own.close()
            raise SlurmError(f"{self.host.name}: {exc}") from None
        out = proc.stdout if isinstance(proc.stdout, str) else ""
        err = proc.stderr if isinstance(proc.stderr, str) else ""
        if proc.exit_status == 124:
            raise SlurmError(f"no answer within {timeout:.0f}s")
        return Result(proc.exit_status if proc.exit_status is not None else -1,
                      out[:OUTPUT_LIMIT], err[-2000:])

    async def close(self) -> None:
        if self._own is not None:
            self._own.close()
            with contextlib.suppress(Exception):
                await self._own.wait_closed()
            self._own = None


def login_host(config: Config, cluster: ClusterConfig) -> HostConfig:
    """The [[hosts]] entry named by ``host``, or an ssh alias of that name."""
    return config.host(cluster.host) or HostConfig(name=cluster.host, hostname=cluster.host)


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return clean(line.strip(), 300)
    return ""


class ClusterClient:
    """Polls one cluster; keeps its latest snapshot; acts on the user's jobs."""

    def __init__(self, cluster: ClusterConfig, runner: Runner, *,
                 clock: Clock = SYSTEM_CLOCK, all_users: bool | None = None) -> None:
        self.cluster = cluster
        self.runner = runner
        self.clock = clock
        self.all_users = cluster.all_users if all_users is None else all_users
        self.snapshot = ClusterSnapshot(cluster.name)
        self.tracker = JobTracker()
        self.json = True  # False once squeue --json turned out to be unavailable
        self.accounting: bool | None = None  # sacct works? None: not tried yet
        self.polls = 0
        self.all_jobs: list[Job] = []  # every user's jobs of the last poll

    @property
    def user(self) -> str | None:
        return self.snapshot.user

    async def _run(self, command: str) -> Result:
        return await self.runner.run(command, self.cluster.timeout)

    def _fail(self, message: str) -> ClusterSnapshot:
        snap = self.snapshot
        snap.error = message
        snap.state = ClusterState.STALE if snap.polled_at is not None else ClusterState.DOWN
        return snap

    async def _squeue(self) -> list[Job]:
        prefix = "id -un; " if self.user is None else ""
        if self.json:
            result = await self._run(f"{prefix}{ENV} squeue --all --json")
            text = result.stdout
            if self.user is None:
                user, _, text = text.partition("\n")
                self.snapshot.user = clean(user.strip(), 64) or None
            if result.status == 0:
                return parse_squeue_json(text, self.cluster.name).jobs
            err = result.stderr.lower()
            if "json" not in err and "unrecognized option" not in err:
                raise SlurmError("squeue failed: " + (_first_line(result.stderr)
                                                      or f"exit status {result.status}"))
            self.json = False
            prefix = ""
        result = await self._run(
            f"{prefix}{ENV} squeue --all --noheader --format={shlex.quote(FALLBACK_FORMAT)}")
        text = result.stdout
        if self.user is None:
            user, _, text = text.partition("\n")
            self.snapshot.user = clean(user.strip(), 64) or None
        if result.status != 0:
            raise SlurmError("squeue failed: " + (_first_line(result.stderr)
                                                  or f"exit status {result.status}"))
        return parse_squeue_text(text, self.cluster.name).jobs

    def _followed(self, jobs: list[Job]) -> list[Job]:
        return mine(jobs, None if self.all_users else self.user, self.cluster.partitions)

    async def poll(self) -> tuple[ClusterSnapshot, list[JobEvent]]:
        """One refresh: squeue (and sinfo every SINFO_EVERY polls), events since the last."""
        snap = self.snapshot
        try:
            all_jobs = await self._squeue()
        except (SlurmError, SlurmParseError) as exc:
            return self._fail(str(exc)), []
        self.all_jobs = all_jobs
        jobs = self._followed(all_jobs)
        if self.polls % SINFO_EVERY == 0:
            with contextlib.suppress(SlurmError, SlurmParseError):
                result = await self._run("sinfo --json")
                if result.status == 0:
                    snap.partitions = [p for p in parse_sinfo_json(result.stdout)
                                       if not self.cluster.partitions
                                       or p.name in self.cluster.partitions]
        self.polls += 1
        events = self.tracker.update(mine(all_jobs, self.user, self.cluster.partitions))
        gone = self.tracker.vanished()
        if gone:
            finals = await self.final_states([j.job_id for j in gone])
            for job in gone:
                events.extend(self.tracker.ended(job.id, finals.get(job.id)))
        snap.jobs = jobs
        snap.state = ClusterState.LIVE
        snap.error = None
        snap.polled_at = self.clock.time()
        return snap, events

    async def final_states(self, ids: list[int]) -> dict[str, Job]:
        """Final states of jobs that left the queue: sacct when accounting is on,
        scontrol otherwise (the controller keeps ended jobs for MinJobAge)."""
        listing = ",".join(str(i) for i in ids)
        found: dict[str, Job] = {}
        if self.accounting is not False:
            try:
                result = await self._run(f"{ENV} sacct --json -j {shlex.quote(listing)}")
            except SlurmError:
                result = Result(1, "", "")
            if result.status == 0:
                self.accounting = True
                with contextlib.suppress(SlurmParseError):
                    for job in parse_squeue_json(result.stdout, self.cluster.name).jobs:
                        found[job.id] = job
                    return found
            else:
                self.accounting = False
        command = "; ".join(f"scontrol -o show job {int(i)}" for i in ids)
        try:
            result = await self._run(f"{ENV} sh -c {shlex.quote(command)}")
        except SlurmError:
            return found
        for job in parse_scontrol_job(result.stdout, self.cluster.name):
            found[job.id] = job
        return found

    # ------------------------------------------------------------------ actions

    def find(self, ident: str) -> Job | None:
        for job in self.all_jobs:
            if job.id == ident or str(job.job_id) == ident:
                return job
        return None

    def check_mine(self, ident: str) -> Job:
        """The job ``ident`` if the user may act on it; SlurmError (one line) otherwise."""
        job = self.find(ident)
        if job is None:
            raise SlurmError(f"no job {ident} on cluster {self.cluster.name}")
        if self.user is None or job.user != self.user:
            raise SlurmError(f"job {ident} on {self.cluster.name} belongs to {job.user}, "
                             "not to you")
        return job

    async def act(self, action: str, ident: str) -> Job:
        """``cancel`` / ``hold`` / ``release`` one of the user's jobs."""
        job = self.check_mine(ident)
        target = job.id if "[" not in job.id else str(job.array_job_id or job.job_id)
        result = await self._run(f"{ACTIONS[action]} {shlex.quote(target)}")
        if result.status != 0:
            raise SlurmError(f"{ACTIONS[action]} {target} failed: "
                             + (_first_line(result.stderr) or f"exit status {result.status}"))
        return job

    async def detail(self, ident: str) -> str:
        """``scontrol show job`` of one job, as Slurm prints it (untrusted text)."""
        job = self.find(ident)
        target = job.id if job is not None and "[" not in job.id else ident
        result = await self._run(f"{ENV} scontrol show job {shlex.quote(target)}")
        if result.status != 0:
            raise SlurmError(_first_line(result.stderr) or f"scontrol exit {result.status}")
        return result.stdout

    async def output_path(self, ident: str, stream: str = "stdout") -> str | None:
        """The job's real StdOut/StdErr path (22.05's JSON leaves them empty)."""
        job = self.find(ident)
        if job is None:
            return None
        result = await self._run(f"{ENV} scontrol -o show job {int(job.job_id)}")
        for found in parse_scontrol_job(result.stdout, self.cluster.name):
            return found.stdout if stream == "stdout" else found.stderr
        return job.stdout if stream == "stdout" else job.stderr


class ClusterWatch:
    """Polls every cluster at its refresh pace; tells listeners snapshots and events."""

    def __init__(self, clients: list[ClusterClient],
                 on_snapshot: Callable[[ClusterSnapshot], None] | None = None,
                 on_events: Callable[[list[JobEvent]], None] | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.clients = clients
        self.on_snapshot = on_snapshot
        self.on_events = on_events
        self.sleep = sleep
        self._loops = [BackgroundTask(f"slurm {c.cluster.name}") for c in clients]

    async def _loop(self, client: ClusterClient) -> None:
        while True:
            try:
                snap, events = await client.poll()
            except Exception as exc:  # never let one cluster's surprise end its polling
                log.exception("polling cluster %s failed", client.cluster.name)
                snap, events = client._fail(f"poll failed: {clean(str(exc), 200)}"), []
            if self.on_snapshot is not None:
                self.on_snapshot(snap)
            if events and self.on_events is not None:
                self.on_events(events)
            await self.sleep(client.cluster.refresh)

    def start(self) -> None:
        for client, loop in zip(self.clients, self._loops, strict=True):
            loop.start(functools.partial(self._loop, client))

    async def stop(self) -> None:
        await asyncio.gather(*(loop.stop() for loop in self._loops))
        for client in self.clients:
            with contextlib.suppress(Exception):
                await client.runner.close()


def make_clients(config: Config, connector: Connector, *, names: list[str] | None = None,
                 all_users: bool | None = None,
                 shared: Callable[[str], asyncssh.SSHClientConnection | None] | None = None,
                 clock: Clock = SYSTEM_CLOCK) -> list[ClusterClient]:
    """One client per configured cluster (or the ``names`` given)."""
    out = []
    for cluster in config.clusters:
        if names and cluster.name not in names:
            continue
        host = login_host(config, cluster)
        getter = (lambda h=host.name: shared(h)) if shared is not None else None
        out.append(ClusterClient(cluster, SshRunner(host, connector, getter), clock=clock,
                                 all_users=all_users))
    return out
