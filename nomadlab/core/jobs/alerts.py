"""Job events as alerts, through the existing rules and channels.

``[[alerts]] when = "job"`` rules pick which clusters (``hosts`` globs match cluster
names) and which job names (``pattern``, searched) they speak for. Without any, one
default rule, ``job``, reports every event of the user's jobs (unless
``notify.default_rules = false``). The severity follows the event: a failure,
timeout, out of memory or node failure is an error, a preemption or cancellation a
warning, a start or completion info (so deep focus holds it like other info alerts).
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable

from nomadlab.core.alerts import Alert
from nomadlab.core.config import AlertRule, Config
from nomadlab.core.jobs.events import JobEvent

DEFAULT_JOB_RULE = AlertRule(name="job", when="job", severity="info", cooldown=0.0)
OUTCOMES = {"completed": "finished", "failed": "failed", "timeout": "failed",
            "out_of_memory": "failed", "node_fail": "failed"}


def job_rules(config: Config) -> list[AlertRule]:
    mine = [r for r in config.alerts if r.when == "job"]
    if mine or not config.notify.default_rules:
        return mine
    return [DEFAULT_JOB_RULE]


def _applies(rule: AlertRule, event: JobEvent) -> bool:
    if not any(fnmatch.fnmatchcase(event.job.cluster, g) for g in rule.hosts):
        return False
    return rule.pattern is None or re.search(rule.pattern, event.job.name) is not None


def job_alerts(events: Iterable[JobEvent], rules: Iterable[AlertRule], now: float
               ) -> list[Alert]:
    """One alert per event, from the first rule that speaks for it."""
    rules = list(rules)
    out = []
    for event in events:
        rule = next((r for r in rules if _applies(r, event)), None)
        if rule is None:
            continue
        job = event.job
        out.append(Alert(
            time=now, rule=rule.name, severity=event.severity, title=event.title,
            message=event.message, host=job.cluster, outcome=OUTCOMES.get(event.kind),
            extra={"cluster": job.cluster, "job": job.id, "kind": event.kind,
                   "state": job.state, "exit_code": job.exit_code, "name": job.name},
        ))
    return out
