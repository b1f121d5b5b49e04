"""A real one-node Slurm (Debian's slurm-wlm + munge) in a temp dir, for tests.

munged, ``slurmctld -D -f CONF`` and ``slurmd -D -f CONF`` run as subprocesses of
the test session; nothing is installed system-wide and no systemd is needed (the
test machine runs as root, which Slurm's daemons need to switch users).

The node has 2 CPUs and 2 GPUs (GRES backed by plain files in the temp dir: Slurm
drops GRES GPUs whose device files do not exist). Commands find the cluster through
``SLURM_CONF``; over SSH the login node is the real sshd of tests/sshd.py with
``SLURM_CONF`` set by its SetEnv.

Where Slurm is missing the tests that need it are skipped, except when
NOMADLAB_REQUIRE_SLURM=1 (set by .ci/run): then they fail.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

DAEMONS = ("munged", "slurmctld", "slurmd")


def _find(name: str) -> str | None:
    for base in ("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"):
        path = os.path.join(base, name)
        if os.path.exists(path):
            return path
    return shutil.which(name)


def require_slurm() -> dict[str, str]:
    found = {name: _find(name) for name in (*DAEMONS, "sbatch", "squeue", "sinfo", "scontrol",
                                             "scancel")}
    missing = [name for name, path in found.items() if path is None]
    problem = ""
    if missing:
        problem = (f"Slurm/munge not installed ({', '.join(missing)}; "
                   "apt-get install slurm-wlm munge)")
    elif os.geteuid() != 0:
        problem = "the Slurm fixture needs root (slurmd switches users)"
    if problem:
        if os.environ.get("NOMADLAB_REQUIRE_SLURM") == "1":
            pytest.fail(problem + " but NOMADLAB_REQUIRE_SLURM=1", pytrace=False)
        pytest.skip(problem)
    return {name: path for name, path in found.items() if path is not None}


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in sockets]
    finally:
        for s in sockets:
            s.close()


class SlurmCluster:
    """One controller + one node named after this machine."""

    def __init__(self, base: Path) -> None:
        self.bins = require_slurm()
        self.base = base
        self.node = socket.gethostname().split(".")[0]
        self.conf = base / "slurm.conf"
        self.munge_socket = base / "munge" / "munge.socket"
        self.shared = base / "shared"  # job scripts and outputs, writable by every user
        self.procs: list[subprocess.Popen[bytes]] = []

    @property
    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.conf)}

    def command_env(self) -> dict[str, str]:
        return {**os.environ, **self.env}

    def _write(self) -> None:
        base = self.base
        for sub in ("munge", "state", "spool", "log", "dev", "shared"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.shared, 0o1777)
        os.chmod(base, 0o755)
        for i in range(2):
            (base / "dev" / f"nvidia{i}").write_text("")
        key = base / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        os.chmod(key, 0o400)
        ctld_port, d_port = _free_ports(2)
        self.conf.write_text("\n".join([
            "ClusterName=nomadtest",
            f"SlurmctldHost={self.node}(127.0.0.1)",
            f"SlurmctldPort={ctld_port}",
            f"SlurmdPort={d_port}",
            "AuthType=auth/munge",
            f"AuthInfo=socket={self.munge_socket}",
            "CredType=cred/munge",
            "SlurmUser=root",
            "SlurmdUser=root",
            f"StateSaveLocation={base / 'state'}",
            f"SlurmdSpoolDir={base / 'spool'}",
            f"SlurmctldPidFile={base / 'slurmctld.pid'}",
            f"SlurmdPidFile={base / 'slurmd.pid'}",
            f"SlurmctldLogFile={base / 'log' / 'slurmctld.log'}",
            f"SlurmdLogFile={base / 'log' / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core",
            "GresTypes=gpu",
            "MpiDefault=none",
            "ReturnToService=2",
            "SchedulerType=sched/builtin",
            "JobCompType=jobcomp/none",
            "AccountingStorageType=accounting_storage/none",
            "JobAcctGatherType=jobacct_gather/none",
            "SlurmctldTimeout=30",
            "SlurmdTimeout=30",
            "InactiveLimit=0",
            "MinJobAge=300",
            "KillWait=2",
            "Waittime=0",
            "MaxArraySize=100",
            f"NodeName={self.node} NodeAddr=127.0.0.1 CPUs=2 RealMemory=1000 Gres=gpu:2 "
            "State=UNKNOWN",
            f"PartitionName=gpu Nodes={self.node} Default=YES MaxTime=INFINITE State=UP",
            "",
        ]))
        (base / "gres.conf").write_text(
            f"NodeName={self.node} Name=gpu File={base / 'dev'}/nvidia[0-1]\n")

    def start(self) -> SlurmCluster:
        self._write()
        base = self.base
        log = (base / "log" / "daemons.log").open("ab")
        munged = subprocess.run(
            [self.bins["munged"], "--force", f"--socket={self.munge_socket}",
             f"--key-file={base / 'munge' / 'munge.key'}",
             f"--pid-file={base / 'munge' / 'munged.pid'}",
             f"--log-file={base / 'log' / 'munged.log'}",
             f"--seed-file={base / 'munge' / 'munge.seed'}"],
            stdout=log, stderr=log, check=False)
        if munged.returncode != 0:
            raise RuntimeError(f"munged failed: {(base / 'log' / 'daemons.log').read_text()}")
        env = self.command_env()
        for daemon in ("slurmctld", "slurmd"):
            self.procs.append(subprocess.Popen(
                [self.bins[daemon], "-D", "-f", str(self.conf)], env=env,
                stdout=log, stderr=log, stdin=subprocess.DEVNULL))
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for proc in self.procs:
                if proc.poll() is not None:
                    self.stop()
                    raise RuntimeError("a Slurm daemon exited: " + self.logs())
            out = subprocess.run([self.bins["sinfo"], "-h", "-o", "%T"], env=env,
                                 capture_output=True, text=True, check=False)
            if out.returncode == 0 and out.stdout.strip() in ("idle", "mixed", "allocated"):
                return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("Slurm did not become ready within 30 s: " + self.logs())

    def _end_jobs(self, limit: float = 15.0) -> None:
        """Cancel every job and wait (bounded) until none is left, while the daemons
        still run: a job's slurmstepd outlives a slurmd stopped under it (it was left
        running, idle, after every test run)."""
        if not self.procs or any(proc.poll() is not None for proc in self.procs):
            return
        env = self.command_env()
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            out = subprocess.run([self.bins["squeue"], "-h", "-o", "%i"], env=env,
                                 capture_output=True, text=True, check=False)
            jobs = out.stdout.split()
            if out.returncode != 0 or not jobs:
                return
            subprocess.run([self.bins["scancel"], "--full", *jobs], env=env,
                           capture_output=True, check=False)
            time.sleep(0.2)

    def logs(self) -> str:
        parts = []
        for name in ("daemons.log", "slurmctld.log", "slurmd.log", "munged.log"):
            path = self.base / "log" / name
            if path.exists():
                parts.append(f"--- {name}\n{path.read_text()[-3000:]}")
        return "\n".join(parts)

    def run(self, *args: str, user: str | None = None, check: bool = True
            ) -> subprocess.CompletedProcess[str]:
        argv = list(args)
        if user is not None:
            argv = ["runuser", "-u", user, "--", *argv]
        return subprocess.run(argv, env=self.command_env(), capture_output=True, text=True,
                              check=check, cwd=self.shared)

    def sbatch(self, script: str, *options: str, user: str | None = None) -> str:
        """Submit ``script`` (a shell body); returns the job id."""
        path = self.shared / f"job{time.monotonic_ns()}.sh"
        path.write_text("#!/bin/sh\n" + script + "\n")
        os.chmod(path, 0o755)
        out = self.run("sbatch", "--parsable", f"--chdir={self.shared}", *options, str(path),
                       user=user)
        return out.stdout.strip().split(";")[0]

    def wait_state(self, job: str, states: tuple[str, ...], limit: float = 60.0,
                   key: str = "JobState") -> str:
        """Poll ``scontrol show job`` (bounded) until the job's ``key`` (its state, or
        e.g. ``Reason``) is one of ``states``."""
        deadline = time.monotonic() + limit
        state = ""
        while time.monotonic() < deadline:
            out = self.run("scontrol", "-o", "show", "job", job, check=False)
            for word in out.stdout.split():
                if word.startswith(key + "="):
                    state = word.split("=", 1)[1]
            if state in states:
                return state
            time.sleep(0.2)
        raise AssertionError(f"job {job} stayed {state or 'unknown'}, wanted {states}")

    def stop(self) -> None:
        self._end_jobs()
        for proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.procs.clear()
        pid_file = self.base / "munge" / "munged.pid"
        if pid_file.exists():
            try:
                os.kill(int(pid_file.read_text().strip()), 15)
            except (ValueError, ProcessLookupError):
                pass
