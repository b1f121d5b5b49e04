"""Alerts: rules over log lines, host statuses and GPU samples, said for a human.

This module holds what every part of the feature shares: :class:`Alert`, the
severities, the default rules, and alert text made plain (cheap to import:
``nomadlab focus status --short`` needs Alert, not the engine). The engine
(:mod:`nomadlab.core.alert_engine`, with the ``log`` rules and the cooldown in
:mod:`nomadlab.core.alert_lines`) is pure: no I/O, no network, no Textual, time from an
injected :class:`~nomadlab.core.clock.Clock`. It is fed what the fleet and the log
tails produce and answers with :class:`Alert` objects; storing them
(:mod:`nomadlab.core.alert_store`) and delivering them (``nomadlab.notify``) are
someone else's job.

Rule kinds (``[[alerts]] when = ...``):

- ``log``: a log line matches ``pattern`` (a Python regular expression, searched, not
  anchored). User patterns are compiled as written: case-sensitive unless they say
  ``(?i)``. The default rules use scoped flags: ``Traceback``, ``CUDA out of memory``
  and ``Killed`` (what the shell prints after the OOM killer) are matched as Python,
  PyTorch and the shell print them; "loss is nan", "nan loss", "training complete(d)"
  and "finished training" in any case (``Loss is NaN`` too). They are written
  ``[Ll](?i:oss is nan)``, not ``(?i:loss is nan)``: the same matches, but a pattern
  whose alternatives each start with a plain character lets ``re`` skip ahead to
  candidate positions, which makes the search several times faster. Each batch of
  lines is searched joined, once per rule; a hit is confirmed on its own line, so no
  match spans two lines and ``^``/``$`` anchor at line ends.
- ``process_exit``: a GPU process whose command matches ``pattern`` disappears; the
  alert says how long it ran and on which GPUs.
- ``gpu_idle``: GPUs at or below ``utilization`` % with no process for ``duration``
  (a GPU whose utilization is unknown is never called idle);
  the alert says how many, for how long and, when the host has an ``hourly_cost``,
  what the idle time cost: hourly_cost x idle_gpus / total_gpus x idle hours (per
  GPU, each with its own idle time).
- ``host_down``: a host not live (connecting, reconnecting, stale, waiting for the
  user) for ``duration``. A host that was stopped on purpose is not down.
- ``temperature``: a GPU above ``limit`` degrees C for ``duration``.
- ``gpu_health``: a GPU logs an XID, uncorrectable ECC errors, a row remap pending
  or failed, or holds a HW slowdown or a PCIe link below its maximum under load for
  ``duration`` (``for``); said once per problem and GPU (see ``health_alerts``).
- ``xid``: a GPU reports a new XID error (sources that export it: DCGM through
  Prometheus). Said once per new XID value per GPU.

Cooldown is per (rule, subject), the subject being the log name (``log``) or the host
(every other kind): within ``cooldown`` of an alert the same rule says nothing more
about the same subject. For a log, the subject is the file behind its path
(``LogLine.run``): a new file there (rotated, replaced, recreated) or a truncation is a
new run, whose first failure or finish is said even within the cooldown of the last
run's; repeats within one file keep the cooldown. A duration condition that clears and
comes back starts a new duration. One that keeps holding is repeated once per
``cooldown`` as a reminder (with the time and cost so far); with ``cooldown = 0`` it is
said once per episode.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from nomadlab.core.config import AlertRule, Config

SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}
DELIVERY_FAILED = "delivery failed"  # the rule name of alerts about alerts not delivered
PATTERN_TOO_SLOW = "pattern too slow"  # the rule name of alerts about a rule turned off
LINE_LIMIT = 500  # characters of the matching log line kept in an alert
EXCERPT_LIMIT = 200  # characters of it quoted in the message


def severity_at_least(severity: str, minimum: str) -> bool:
    return SEVERITY_RANK.get(severity, 1) >= SEVERITY_RANK.get(minimum, 0)


@dataclass(slots=True, kw_only=True)
class Alert:
    """An alert as raised, stored and delivered: rule, severity, title and message, what it is
    about."""
    id: int | None = None  # set when stored
    time: float  # wall clock
    rule: str
    severity: str  # "info" | "warning" | "error"
    title: str  # short: "run failed: train-a"
    message: str  # one or two sentences a human reads on a phone
    host: str | None = None
    log: str | None = None
    outcome: str | None = None  # "finished" | "failed" | None
    line: str | None = None  # the matching log line, cleaned, at most LINE_LIMIT characters
    acknowledged: float | None = None  # wall clock, when the user saw it
    extra: dict[str, Any] = field(default_factory=dict)  # e.g. idle_cost, gpus


# --------------------------------------------------------------------------- default rules

DEFAULT_RULES: tuple[AlertRule, ...] = (
    AlertRule(
        name="run failed", when="log", severity="error", cooldown=600.0, outcome="failed",
        pattern=r"Traceback|CUDA out of memory|Killed\b|[Ll](?i:oss is nan)|[Nn](?i:an loss)",
    ),
    AlertRule(
        name="run finished", when="log", severity="info", cooldown=600.0, outcome="finished",
        pattern=r"[Tt](?i:raining completed?)\b|[Ff](?i:inished training)\b",
    ),
    AlertRule(
        name="GPUs idle", when="gpu_idle", severity="warning", cooldown=3600.0,
        utilization=5.0, duration=900.0, paid_only=True,
    ),
    AlertRule(name="host down", when="host_down", severity="warning", cooldown=3600.0,
              duration=300.0),
    AlertRule(name="GPU health", when="gpu_health", severity="error", cooldown=3600.0,
              duration=60.0),
)


def default_rules() -> list[AlertRule]:
    """Fresh copies of DEFAULT_RULES (rules are mutable dataclasses)."""
    return [dataclasses.replace(r, logs=list(r.logs), hosts=list(r.hosts)) for r in DEFAULT_RULES]


def rules_for(config: Config) -> list[AlertRule]:
    """The default rules (unless ``notify.default_rules = false``) and the user's.

    A user rule named like a default rule takes its place; the others follow in file
    order.
    """
    user = list(config.alerts)
    if not config.notify.default_rules:
        return user
    out: list[AlertRule] = []
    for rule in default_rules():
        mine = next((r for r in user if r.name == rule.name), None)
        out.append(mine if mine is not None else rule)
    out.extend(r for r in user if not any(r is o for o in out))
    return out


# --------------------------------------------------------------------------- text

_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI (colours, cursor)
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC (titles, hyperlinks)
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"  # DCS, SOS, PM, APC
    r"|\x1b[@-Z\\-_]?"  # other two-byte escapes, a lone ESC
)
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def clean_text(text: str, limit: int | None = None) -> str:
    """Plain text: escape sequences dropped, control characters made spaces, trimmed."""
    text = _CONTROLS.sub(" ", _ESCAPES.sub("", text)).strip()
    if limit is not None and len(text) > limit:
        text = text[: max(0, limit - 1)].rstrip() + "…"
    return text
