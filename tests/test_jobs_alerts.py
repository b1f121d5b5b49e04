"""Job events become alerts: the default rule, user rules, deep-focus holding, and the
real path from a real Slurm job to a stored alert and a ``nomadlab watch`` line."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from conftest import wait_for
from slurm import SlurmCluster
from sshd import SshServer
from test_jobs_slurm import cluster_config, login, slurm  # noqa: F401  (fixtures)

from nomadlab.cli.watch import watch
from nomadlab.core.alert_store import AlertLog
from nomadlab.core.alerts import Alert
from nomadlab.core.config import load_config_text
from nomadlab.core.jobs.alerts import job_alerts, job_rules
from nomadlab.core.jobs.events import JobEvent, JobTracker
from nomadlab.core.jobs.model import Job
from nomadlab.core.store import Store
from nomadlab.notify.hub import AlertHub
from nomadlab.remote.slurm import make_clients
from nomadlab.remote.ssh import Connector


def job(ident: str, state: str, **kw: object) -> Job:
    return Job(cluster="della", id=ident, job_id=int(ident.split("_", maxsplit=1)[0]),
               name=f"n{ident}", user="alice", state=state, **kw)  # type: ignore[arg-type]


def test_tracker_reports_each_transition_once() -> None:
    tracker = JobTracker()
    assert tracker.update([job("1", "PENDING"), job("2", "RUNNING")]) == []  # first poll learns
    events = tracker.update([job("1", "RUNNING", start_time=10.0), job("2", "RUNNING")])
    assert [(e.kind, e.job.id) for e in events] == [("started", "1")]
    assert tracker.update([job("1", "RUNNING", start_time=10.0), job("2", "RUNNING")]) == []
    events = tracker.update([job("1", "TIMEOUT", start_time=10.0),
                             job("2", "FAILED", exit_code=3),
                             job("3", "OUT_OF_MEMORY", start_time=11.0)])
    assert [(e.kind, e.job.id) for e in events] == [
        ("timeout", "1"), ("failed", "2"), ("out_of_memory", "3")]
    assert "exit code 3" in events[1].message
    again = [job("1", "TIMEOUT"), job("2", "FAILED"), job("3", "OUT_OF_MEMORY")]
    assert tracker.update(again) == []


def test_job_that_vanished_between_polls() -> None:
    tracker = JobTracker()
    tracker.update([job("7", "RUNNING"), job("8", "RUNNING")])
    assert tracker.update([]) == []
    assert sorted(j.id for j in tracker.vanished()) == ["7", "8"]
    assert [e.kind for e in tracker.ended("7", job("7", "NODE_FAIL"))] == ["node_fail"]
    events = tracker.ended("8", None)  # nobody remembers it: still said
    assert [e.kind for e in events] == ["vanished"]
    assert "final state is unknown" in events[0].message


def test_rules_default_and_user() -> None:
    config = load_config_text("")
    assert [r.name for r in job_rules(config)] == ["job"]
    events = [JobEvent("failed", job("5", "FAILED", exit_code=1)),
              JobEvent("completed", job("6", "COMPLETED")),
              JobEvent("preempted", job("9", "PREEMPTED"))]
    alerts = job_alerts(events, job_rules(config), 100.0)
    assert [(a.severity, a.outcome) for a in alerts] == [
        ("error", "failed"), ("info", "finished"), ("warning", None)]
    assert alerts[0].extra["job"] == "5" and alerts[0].host == "della"
    assert alerts[0].title == "job failed: n5 (della:5)"
    config = load_config_text('[[alerts]]\nname = "train jobs"\nwhen = "job"\n'
                              'hosts = ["della"]\npattern = "^n[56]$"\n')
    alerts = job_alerts(events, job_rules(config), 100.0)
    assert [a.rule for a in alerts] == ["train jobs", "train jobs"]
    config = load_config_text("[notify]\ndefault_rules = false\n")
    assert job_alerts(events, job_rules(config), 1.0) == []


async def test_real_job_failure_is_stored_and_info_held_in_focus(
        slurm: SlurmCluster, login: SshServer, tmp_path: Path) -> None:  # noqa: F811
    config = cluster_config(login, tmp_path)
    store = Store(tmp_path / "state.db")
    holding = [True]
    hub = AlertHub(config, store, hold=lambda: holding[0])
    heard: list[Alert] = []
    hub.subscribe(heard.append)
    connector = Connector(config.ssh, config.hosts)
    (client,) = make_clients(config, connector)
    try:
        await client.poll()
        good = slurm.sbatch("true", "-J", "fine")
        bad = slurm.sbatch("exit 4", "-J", "broken")
        slurm.wait_state(good, ("COMPLETED",))
        slurm.wait_state(bad, ("FAILED",))
        _, events = await client.poll()
        hub.emit(job_alerts(events, job_rules(config), 1.0))
        stored = AlertLog(store).recent()
        titles = {a.title: a for a in stored}
        assert titles[f"job failed: broken (tiny:{bad})"].severity == "error"
        assert "exit code 4" in titles[f"job failed: broken (tiny:{bad})"].message
        assert f"job completed: fine (tiny:{good})" in titles
        await wait_for(lambda: len(hub.notifier.held) == 1, what="the info alert held")
        assert hub.notifier.held[0].title.startswith("job completed")
        assert len(heard) == 2
    finally:
        await client.runner.close()
        await connector.close()
        store.close()


async def test_watch_prints_job_events(slurm: SlurmCluster, login: SshServer,  # noqa: F811
                                       tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                       ) -> None:
    config = cluster_config(login, tmp_path)
    stop = asyncio.Event()
    tick = asyncio.Event()

    async def next_refresh(seconds: float) -> None:  # the refresh timer, driven by the test
        assert seconds == 5.0
        await tick.wait()
        tick.clear()

    task = asyncio.create_task(watch(config, stop=stop, jobs_sleep=next_refresh))
    lines: list[dict[str, object]] = []

    def read() -> list[dict[str, object]]:
        lines.extend(json.loads(line) for line in capsys.readouterr().out.splitlines() if line)
        return lines

    try:
        await wait_for(lambda: any(e.get("event") == "cluster" and e.get("state") == "live"
                                   for e in read()), 20, "the cluster live")
        failing = slurm.sbatch("exit 2", "-J", "watched")
        slurm.wait_state(failing, ("FAILED",))
        tick.set()  # the cluster's refresh is due
        await wait_for(lambda: any(e.get("event") == "job" and e.get("id") == failing
                                   for e in read()), 20, "the job event")
        event = next(e for e in lines if e.get("event") == "job" and e.get("id") == failing)
        assert event["kind"] == "failed" and event["exit_code"] == 2
        assert any(e.get("event") == "alert" and "watched" in str(e.get("title"))
                   for e in read())
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)

