"""Alerts: rules over log lines, host statuses and GPU samples, said for a human.

``AlertEngine`` is pure: no I/O, no network, no Textual, time from an injected
:class:`~nomadlab.core.clock.Clock`. It is fed what the fleet and the log tails
produce and answers with :class:`Alert` objects; storing them (``AlertLog``, below)
and delivering them (``nomadlab.notify``) are someone else's job.

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

import bisect
import dataclasses
import fnmatch
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nomadlab.core.clock import SYSTEM_CLOCK, Clock
from nomadlab.core.config import AlertRule, Config
from nomadlab.core.durations import compact as human_duration
from nomadlab.core.store import Store

if TYPE_CHECKING:
    # The engine's parts (the regex module, the GPU model, health) are imported where
    # the engine uses them: `nomadlab focus status --short` needs Alert, not them.
    from nomadlab.core.logs import LogLine
    from nomadlab.core.model import HostSample, HostState, HostStatus
    from nomadlab.core.patterns import Pattern, PatternTimeout

SEVERITY_RANK = {"info": 0, "warning": 1, "error": 2}
DELIVERY_FAILED = "delivery failed"  # the rule name of alerts about alerts not delivered
PATTERN_TOO_SLOW = "pattern too slow"  # the rule name of alerts about a rule turned off
LINE_LIMIT = 500  # characters of the matching log line kept in an alert
EXCERPT_LIMIT = 200  # characters of it quoted in the message


def severity_at_least(severity: str, minimum: str) -> bool:
    return SEVERITY_RANK.get(severity, 1) >= SEVERITY_RANK.get(minimum, 0)


@dataclass(slots=True, kw_only=True)
class Alert:
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


def _gpu_list(indices: Iterable[int]) -> str:
    ordered = sorted(set(indices))
    if not ordered:
        return "?"
    return ", ".join(str(i) for i in ordered)


def _globs_match(globs: Sequence[str], name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, g) for g in globs)


# --------------------------------------------------------------------------- the engine


@dataclass(slots=True)
class _LogRule:
    rule: AlertRule
    regex: Pattern


@dataclass(slots=True)
class _Proc:
    pid: int
    command: str
    user: str
    gpus: set[int]
    first_seen: float
    last_seen: float
    at_start: bool  # already running in the first sample nomadlab saw of the host


@dataclass(slots=True)
class _HostTrack:
    state: HostState | None = None
    error: str | None = None
    down_since: float | None = None
    sample: HostSample | None = None
    seen_sample: bool = False
    gap: bool = False  # the host was not live since the last sample
    procs: dict[int, _Proc] = field(default_factory=dict)


_EXCEPTION_LINE = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Interrupt|Exit|Warning)\b")


def _explanation(texts: Sequence[str], index: int, look: int = 60) -> str | None:
    """For a 'Traceback' line: the exception line that ends it, when it arrived in the
    same batch ("torch.OutOfMemoryError: CUDA out of memory ..."), which says far
    more on a phone than "Traceback (most recent call last):"."""
    if not texts[index].lstrip().startswith("Traceback"):
        return None
    for text in texts[index + 1:index + 1 + look]:
        if _EXCEPTION_LINE.match(text):
            return text
    return None


TRACEBACK_KEEP = 8  # lines of a traceback's end kept with an alert (the last frames + error)


def traceback_tail(texts: Sequence[str], index: int, look: int = 60,
                   keep: int = TRACEBACK_KEEP) -> list[str]:
    """For a 'Traceback' line at ``index``: the traceback's last lines after it, up to
    and including the exception line ("RuntimeError: CUDA out of memory"), at most
    ``keep`` of them, cleaned. Only what is in ``texts``: when the exception line is not
    there (yet), the last ``keep`` lines that are. Empty for any other line."""
    if not texts[index].lstrip().startswith("Traceback"):
        return []
    after: list[str] = []
    for text in texts[index + 1:index + 1 + look]:
        after.append(text)
        if _EXCEPTION_LINE.match(text):
            break
    return [clean_text(t, EXCERPT_LIMIT) for t in after[-keep:]]


def ends_traceback(lines: Sequence[str]) -> bool:
    """Does the last of these lines end a traceback (the exception line)?"""
    return bool(lines) and _EXCEPTION_LINE.match(lines[-1]) is not None


class AlertEngine:
    """Turns log lines, statuses and samples into alerts. Feed it; it answers.

    ``costs`` maps host names to their hourly cost (None: unknown or free).
    """

    def __init__(self, rules: Iterable[AlertRule], clock: Clock = SYSTEM_CLOCK,
                 costs: Mapping[str, float | None] | None = None,
                 source_costs: Mapping[str, float | None] | None = None) -> None:
        self.rules = list(rules)
        self.clock = clock
        self.costs: dict[str, float | None] = dict(costs or {})
        # hosts of a [[sources]] entry not in ``costs``: that source's default
        self.source_costs: dict[str, float | None] = dict(source_costs or {})
        self._xids: dict[tuple[str, str], int] = {}  # (host, GPU key) -> last XID said
        from nomadlab.core.health_alerts import HealthWatch
        from nomadlab.core.patterns import compile_user

        # User patterns run with a time limit (core/patterns.py): one that hits it is
        # turned off, with an alert that names it, rather than freezing the loop.
        self._log_rules = [
            _LogRule(r, compile_user(r.pattern, multiline=True))
            for r in self.rules if r.when == "log" and r.pattern
        ]
        self._exit_rules = [
            _LogRule(r, compile_user(r.pattern))
            for r in self.rules if r.when == "process_exit" and r.pattern
        ]
        self.disabled: list[str] = []  # rules turned off for a pattern that took too long
        self._log_cache: dict[tuple[str, str], list[_LogRule]] = {}
        self._hosts: dict[str, _HostTrack] = {}
        self._last_fired: dict[tuple[str, str], float] = {}
        self._fired: set[tuple[str, str]] = set()  # fired in the episode that still holds
        self._log_runs: dict[str, int] = {}  # log -> LogLine.run of its latest lines
        # (rule, host) -> GPU key -> since: GPUs idle (gpu_idle) or hot (temperature)
        self._gpu_since: dict[tuple[str, str], dict[str, float]] = {}
        self._health = HealthWatch()

    def rule(self, name: str) -> AlertRule | None:
        for rule in self.rules:
            if rule.name == name:
                return rule
        return None

    # ------------------------------------------------------------------ cooldown

    def _cooling(self, rule: AlertRule, subject: str, now: float) -> bool:
        last = self._last_fired.get((rule.name, subject))
        return last is not None and now - last < rule.cooldown

    def _may_fire(self, rule: AlertRule, subject: str, now: float, holds: bool) -> bool:
        """For duration rules: the condition ``holds`` long enough; may it be said now?"""
        key = (rule.name, subject)
        if not holds:
            self._fired.discard(key)
            return False
        if self._cooling(rule, subject, now):
            return False
        return not (key in self._fired and rule.cooldown <= 0)

    def _fire(self, rule: AlertRule, subject: str, now: float) -> None:
        self._last_fired[(rule.name, subject)] = now
        self._fired.add((rule.name, subject))

    # ------------------------------------------------------------------ logs

    def _rules_for_log(self, log: str, host: str) -> list[_LogRule]:
        key = (log, host)
        rules = self._log_cache.get(key)
        if rules is None:
            rules = [
                lr for lr in self._log_rules
                if _globs_match(lr.rule.logs, log) and _globs_match(lr.rule.hosts, host)
            ]
            self._log_cache[key] = rules
        return rules

    def _new_run(self, log: str, run: int) -> None:
        """Lines from another file behind the log's path: a new run, cooldown over."""
        known = self._log_runs.get(log)
        self._log_runs[log] = run
        if known is None or known == run:
            return
        for lr in self._log_rules:
            self._last_fired.pop((lr.rule.name, log), None)
            self._fired.discard((lr.rule.name, log))

    def on_log_lines(self, log: str, host: str, lines: Sequence[LogLine]) -> list[Alert]:
        """New lines of one log. One search per rule over the joined batch; only a
        candidate line is looked at on its own (so a match never spans two lines)."""
        if not lines:
            return []
        if lines[0].run != lines[-1].run:  # a batch that spans two files: one run at a time
            out: list[Alert] = []
            begin = 0
            for i in range(1, len(lines) + 1):
                if i == len(lines) or lines[i].run != lines[begin].run:
                    out.extend(self.on_log_lines(log, host, lines[begin:i]))
                    begin = i
            return out
        self._new_run(log, lines[0].run)
        now = self.clock.time()
        active = [lr for lr in self._rules_for_log(log, host)
                  if not self._cooling(lr.rule, log, now)]
        if not active:
            return []
        texts = [line.text for line in lines]
        joined = "\n".join(texts)
        out = []
        from nomadlab.core.patterns import PatternTimeout

        for lr in active:
            try:
                self._search_rule(lr, log, host, lines, texts=texts, joined=joined,
                                  now=now, out=out)
            except PatternTimeout as exc:
                out.append(self._too_slow(lr, exc, now, log=log, host=host))
        out.sort(key=lambda a: a.extra.get("seq", 0))
        return out

    def _search_rule(self, lr: _LogRule, log: str, host: str, lines: Sequence[LogLine], *,
                     texts: list[str], joined: str, now: float, out: list[Alert]) -> None:
        from nomadlab.core.patterns import search

        starts: list[int] | None = None
        pos = 0
        while pos <= len(joined):
            match = search(lr.regex, joined, pos)
            if match is None:
                break
            if starts is None:
                starts = _line_starts(texts)
            index = bisect.bisect_right(starts, match.start()) - 1
            text = texts[index]
            if search(lr.regex, text) is not None and not self._cooling(lr.rule, log, now):
                alert = self._log_alert(lr.rule, log, host, lines[index], now,
                                        explanation=_explanation(texts, index))
                context = traceback_tail(texts, index)
                if context:
                    alert.extra["context"] = context
                out.append(alert)
                self._fire(lr.rule, log, now)
                if lr.rule.cooldown > 0:
                    break
            pos = starts[index] + len(text) + 1

    def _too_slow(self, lr: _LogRule, exc: PatternTimeout, now: float, *,
                  log: str | None = None, host: str = "") -> Alert:
        """Turn the rule off (until the config is loaded again) and say so."""
        self._log_rules = [r for r in self._log_rules if r is not lr]
        self._exit_rules = [r for r in self._exit_rules if r is not lr]
        self._log_cache.clear()
        self.disabled.append(lr.rule.name)
        what = f"a line of {log}" if log else f"a process command on {host}"
        return Alert(
            time=now, rule=PATTERN_TOO_SLOW, severity="error",
            title=f"rule turned off: {lr.rule.name}",
            message=(f"The pattern of rule \u201c{lr.rule.name}\u201d took over "
                     f"{exc.limit:g}s on {what} and is turned off until nomadlab restarts: "
                     f"{clean_text(lr.rule.pattern or '', EXCERPT_LIMIT)}"),
            host=host or None, log=log,
            extra={"alert_rule": lr.rule.name, "pattern": lr.rule.pattern},
        )

    def _log_alert(self, rule: AlertRule, log: str, host: str, line: LogLine,
                   now: float, *, explanation: str | None = None) -> Alert:
        excerpt = clean_text(explanation or line.text, EXCERPT_LIMIT)
        where = f"{log} on {host}" if host else log
        if rule.outcome == "failed":
            message = f"The run logging to {where} failed: {excerpt}"
        elif rule.outcome == "finished":
            message = f"The run logging to {where} finished: {excerpt}"
        else:
            message = f"{where} matched \u201c{rule.name}\u201d: {excerpt}"
        return Alert(
            time=now, rule=rule.name, severity=rule.severity, title=f"{rule.name}: {log}",
            message=message, host=host or None, log=log, outcome=rule.outcome,
            line=clean_text(line.text, LINE_LIMIT), extra={"seq": line.seq},
        )

    # ------------------------------------------------------------------ hosts

    def _track(self, host: str) -> _HostTrack:
        track = self._hosts.get(host)
        if track is None:
            track = self._hosts[host] = _HostTrack()
        return track

    def _rules(self, kind: str, host: str) -> list[AlertRule]:
        return [r for r in self.rules if r.when == kind and _globs_match(r.hosts, host)]

    def on_status(self, status: HostStatus) -> list[Alert]:
        now = self.clock.time()
        track = self._track(status.name)
        track.state = status.state
        track.error = status.error
        from nomadlab.core.model import HostState

        if status.state is HostState.LIVE:
            track.down_since = None
        else:
            if status.state is HostState.STOPPED:
                track.down_since = None
            elif track.down_since is None:
                track.down_since = now
            # Not live: what the GPUs do is unknown. Idle and heat start over.
            for (_rule, host), since in self._gpu_since.items():
                if host == status.name:
                    since.clear()
            track.sample = None
            self._health.forget_host(status.name)
            if track.seen_sample:
                track.gap = True
        return self._check_host(status.name, now)

    def on_sample(self, sample: HostSample) -> list[Alert]:
        now = self.clock.time()
        host = sample.host
        track = self._track(host)
        track.sample = sample
        out = self._process_exits(host, track, sample, now)
        track.seen_sample = True
        track.gap = False
        present = {_gpu_key(g.uuid, g.index) for g in sample.gpus}
        if host not in self.costs and sample.source is not None:
            self.costs[host] = self.source_costs.get(sample.source)
        cost = self.costs.get(host)
        for rule in self._rules("gpu_idle", host):
            since = self._gpu_since.setdefault((rule.name, host), {})
            if rule.paid_only and not cost:
                since.clear()
                continue
            for gpu in sample.gpus:
                key = _gpu_key(gpu.uuid, gpu.index)
                idle = (gpu.utilization is not None and gpu.utilization <= rule.utilization
                        and not gpu.processes)
                if idle:
                    since.setdefault(key, now)
                else:
                    since.pop(key, None)
            for key in [k for k in since if k not in present]:
                del since[key]
        for rule in self._rules("temperature", host):
            since = self._gpu_since.setdefault((rule.name, host), {})
            for gpu in sample.gpus:
                key = _gpu_key(gpu.uuid, gpu.index)
                if gpu.temperature_c is not None and gpu.temperature_c > rule.limit:
                    since.setdefault(key, now)
                else:
                    since.pop(key, None)
            for key in [k for k in since if k not in present]:
                del since[key]
        out.extend(self._xid_alerts(host, sample, now))
        out.extend(self._check_host(host, now))
        out.extend(self._health_alerts(sample, now))
        return out

    def _health_alerts(self, sample: HostSample, now: float) -> list[Alert]:
        out: list[Alert] = []
        for rule in self._rules("gpu_health", sample.host):
            for found in self._health.check(rule.name, rule.duration, sample, now):
                severity = rule.severity if found.level == "fail" else "warning"
                if not severity_at_least(rule.severity, severity):
                    severity = rule.severity
                message = f"GPU {found.gpu} on {sample.host}: {found.text}."
                if found.advice:
                    message += f" {found.advice}"
                out.append(Alert(
                    time=now, rule=rule.name, severity=severity,
                    title=f"{rule.name}: {sample.host} GPU {found.gpu}", message=message,
                    host=sample.host, outcome=rule.outcome,
                    extra={"gpu": found.gpu, "problem": found.problem, "level": found.level},
                ))
        return out

    def _xid_alerts(self, host: str, sample: HostSample, now: float) -> list[Alert]:
        rules = self._rules("xid", host)
        fresh = []
        for gpu in sample.gpus:
            key = (host, _gpu_key(gpu.uuid, gpu.index))
            if gpu.xid is None:
                continue
            if gpu.xid and self._xids.get(key) != gpu.xid:
                fresh.append(gpu)
            self._xids[key] = gpu.xid
        out: list[Alert] = []
        if not fresh:
            return out
        shown = ", ".join(f"GPU {g.index} XID {g.xid}" for g in fresh)
        for rule in rules:
            out.append(Alert(
                time=now, rule=rule.name, severity=rule.severity, title=f"{rule.name}: {host}",
                message=f"{host} reported an XID error: {shown}.", host=host,
                outcome=rule.outcome,
                extra={"gpus": [g.index for g in fresh], "xids": [g.xid for g in fresh]},
            ))
            self._fire(rule, host, now)
        return out

    def tick(self) -> list[Alert]:
        """Duration rules (host_down, gpu_idle, temperature) for every known host."""
        now = self.clock.time()
        out: list[Alert] = []
        for host in list(self._hosts):
            out.extend(self._check_host(host, now))
        return out

    def _check_host(self, host: str, now: float) -> list[Alert]:
        out: list[Alert] = []
        track = self._track(host)
        for rule in self._rules("host_down", host):
            down = track.down_since
            holds = down is not None and now - down >= rule.duration
            if self._may_fire(rule, host, now, holds) and down is not None:
                out.append(self._down_alert(rule, host, track, now - down, now))
                self._fire(rule, host, now)
        for rule in self._rules("gpu_idle", host):
            since = self._gpu_since.get((rule.name, host), {})
            ripe = {k: now - s for k, s in since.items() if now - s >= rule.duration}
            if self._may_fire(rule, host, now, bool(ripe)) and track.sample is not None:
                out.append(self._idle_alert(rule, host, track.sample, ripe, now))
                self._fire(rule, host, now)
        for rule in self._rules("temperature", host):
            since = self._gpu_since.get((rule.name, host), {})
            ripe = {k: now - s for k, s in since.items() if now - s >= rule.duration}
            if self._may_fire(rule, host, now, bool(ripe)) and track.sample is not None:
                out.append(self._heat_alert(rule, host, track.sample, ripe, now))
                self._fire(rule, host, now)
        return out

    def _down_alert(self, rule: AlertRule, host: str, track: _HostTrack, held: float,
                    now: float) -> Alert:
        state = str(track.state) if track.state is not None else "unknown"
        why = f"{state}: {clean_text(track.error, 160)}" if track.error else state
        return Alert(
            time=now, rule=rule.name, severity=rule.severity, title=f"{rule.name}: {host}",
            message=f"{host} has not been reachable for {human_duration(held)} ({why}).",
            host=host, outcome=rule.outcome,
            extra={"down_seconds": round(held, 1), "state": state, "error": track.error},
        )

    def _idle_alert(self, rule: AlertRule, host: str, sample: HostSample,
                    ripe: dict[str, float], now: float) -> Alert:
        gpus = [g for g in sample.gpus if _gpu_key(g.uuid, g.index) in ripe]
        total = len(sample.gpus)
        shortest, longest = min(ripe.values()), max(ripe.values())
        span = human_duration(shortest)
        if human_duration(longest) != span:
            span = f"{span} to {human_duration(longest)}"
        count = len(ripe)
        noun = "GPU" if total == 1 else "GPUs"
        message = f"{count} of {total} {noun} on {host} idle for {span}"
        extra: dict[str, Any] = {
            "gpus": sorted(g.index for g in gpus), "total_gpus": total,
            "idle_seconds": round(shortest, 1),
        }
        hourly = self.costs.get(host)
        if hourly and total:
            cost = hourly / total * sum(ripe.values()) / 3600.0
            extra["idle_cost"] = round(cost, 4)
            extra["hourly_cost"] = hourly
            message += (f", about {cost:.2f} spent on idle GPUs so far"
                        f" ({hourly:.2f}/h for the host).")
        else:
            message += "."
        return Alert(
            time=now, rule=rule.name, severity=rule.severity, title=f"{rule.name}: {host}",
            message=message, host=host, outcome=rule.outcome, extra=extra,
        )

    def _heat_alert(self, rule: AlertRule, host: str, sample: HostSample,
                    ripe: dict[str, float], now: float) -> Alert:
        gpus = [g for g in sample.gpus if _gpu_key(g.uuid, g.index) in ripe]
        shown = ", ".join(f"GPU {g.index} {g.temperature_c:.0f}\u00b0C" for g in gpus)
        span = human_duration(min(ripe.values()))
        lead = (f"GPU {gpus[0].index} on {host}" if len(gpus) == 1
                else f"{len(gpus)} GPUs on {host}")
        return Alert(
            time=now, rule=rule.name, severity=rule.severity, title=f"{rule.name}: {host}",
            message=f"{lead} above {rule.limit:g}\u00b0C for {span}: {shown}.",
            host=host, outcome=rule.outcome,
            extra={"gpus": sorted(g.index for g in gpus), "limit": rule.limit,
                   "temperatures": {str(g.index): g.temperature_c for g in gpus}},
        )

    # ------------------------------------------------------------------ processes

    def _process_exits(self, host: str, track: _HostTrack, sample: HostSample,
                       now: float) -> list[Alert]:
        if not sample.gpus:  # no GPU view this time (a driver hiccup): conclude nothing
            return []
        current: dict[int, tuple[str, str, set[int]]] = {}
        for gpu in sample.gpus:
            for proc in gpu.processes:
                entry = current.setdefault(proc.pid, (proc.command, proc.user, set()))
                entry[2].add(gpu.index)
        ended: list[_Proc] = []
        for pid, known in list(track.procs.items()):
            now_there = current.get(pid)
            if now_there is None or now_there[0] != known.command:
                ended.append(known)
                del track.procs[pid]
        first = not track.seen_sample
        for pid, (command, user, gpus) in current.items():
            known_proc = track.procs.get(pid)
            if known_proc is None:
                track.procs[pid] = _Proc(pid, command, user, set(gpus), now, now, first)
            else:
                known_proc.gpus |= gpus
                known_proc.last_seen = now
        if not ended or not self._exit_rules:
            return []
        from nomadlab.core.patterns import PatternTimeout, search

        out: list[Alert] = []
        for er in list(self._exit_rules):
            if not _globs_match(er.rule.hosts, host):
                continue
            try:
                matched = [p for p in ended if search(er.regex, p.command)]
            except PatternTimeout as exc:
                out.append(self._too_slow(er, exc, now, host=host))
                continue
            if not matched or self._cooling(er.rule, host, now):
                continue
            out.append(self._exit_alert(er.rule, host, matched, now, track.gap))
            self._fire(er.rule, host, now)
        return out

    def _exit_alert(self, rule: AlertRule, host: str, procs: list[_Proc], now: float,
                    gap: bool) -> Alert:
        parts = []
        for p in procs:
            ran = (p.last_seen if gap else now) - p.first_seen
            prefix = "at least " if p.at_start or gap else ""
            parts.append(f"{clean_text(p.command, 80)} (pid {p.pid}, GPU {_gpu_list(p.gpus)})"
                         f" ran {prefix}{human_duration(ran)}")
        when = " while the host was unreachable" if gap else ""
        if len(procs) == 1:
            message = f"On {host}: {parts[0]} and ended{when}."
        else:
            message = f"{len(procs)} processes ended on {host}{when}: " + "; ".join(parts) + "."
        return Alert(
            time=now, rule=rule.name, severity=rule.severity, title=f"{rule.name}: {host}",
            message=message, host=host, outcome=rule.outcome,
            extra={
                "processes": [
                    {"pid": p.pid, "command": clean_text(p.command, LINE_LIMIT), "user": p.user,
                     "gpus": sorted(p.gpus),
                     "seconds": round((p.last_seen if gap else now) - p.first_seen, 1)}
                    for p in procs
                ],
                "gpus": sorted({i for p in procs for i in p.gpus}),
            },
        )


def _gpu_key(uuid: str, index: int) -> str:
    return uuid or f"#{index}"


def _line_starts(texts: Sequence[str]) -> list[int]:
    starts = []
    pos = 0
    for text in texts:
        starts.append(pos)
        pos += len(text) + 1
    return starts


# --------------------------------------------------------------------------- the alert log


class AlertLog:
    """Alerts kept in the Store (component "alerts"): the alerts screen and its counts.

    Store access only; nothing here crosses the network.
    """

    def __init__(self, store: Store, clock: Clock = SYSTEM_CLOCK) -> None:
        self.store = store
        self.clock = clock

    def insert(self, alert: Alert) -> int:
        with self.store.transaction() as db:
            cursor = db.execute(
                "INSERT INTO alerts(time, rule, severity, title, message, host, log, outcome,"
                " line, acknowledged, extra) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (alert.time, alert.rule, alert.severity, alert.title, alert.message,
                 alert.host, alert.log, alert.outcome, alert.line, alert.acknowledged,
                 json.dumps(alert.extra, default=str)),
            )
            new_id = cursor.lastrowid
        assert new_id is not None
        alert.id = int(new_id)
        return alert.id

    def get(self, alert_id: int) -> Alert | None:
        rows = self.store.query("SELECT * FROM alerts WHERE id = ?", (alert_id,))
        return _from_row(rows[0]) if rows else None

    def recent(self, limit: int = 200, *, unacknowledged: bool = False,
               severity: str | None = None, min_severity: str | None = None,
               since: float | None = None) -> list[Alert]:
        """Newest first. ``severity``: exactly this one; ``min_severity``: this or worse."""
        where, params = _filters(unacknowledged, severity, min_severity, since)
        rows = self.store.query(
            f"SELECT * FROM alerts{where} ORDER BY time DESC, id DESC LIMIT ?",
            [*params, int(limit)],
        )
        return [_from_row(row) for row in rows]

    def count_unacknowledged(self, min_severity: str | None = None) -> int:
        where, params = _filters(True, None, min_severity, None)
        rows = self.store.query(f"SELECT COUNT(*) AS n FROM alerts{where}", params)
        return int(rows[0]["n"])

    def acknowledge(self, alert_id: int) -> bool:
        """True when the alert existed and was not yet acknowledged."""
        with self.store.transaction() as db:
            cursor = db.execute(
                "UPDATE alerts SET acknowledged = ? WHERE id = ? AND acknowledged IS NULL",
                (self.clock.time(), alert_id),
            )
        return cursor.rowcount > 0

    def acknowledge_all(self) -> int:
        with self.store.transaction() as db:
            cursor = db.execute(
                "UPDATE alerts SET acknowledged = ? WHERE acknowledged IS NULL",
                (self.clock.time(),),
            )
        return int(cursor.rowcount)

    def prune(self, older_than: float) -> int:
        """Forget alerts from before ``older_than`` (wall clock)."""
        with self.store.transaction() as db:
            cursor = db.execute("DELETE FROM alerts WHERE time < ?", (older_than,))
        return int(cursor.rowcount)


def _filters(unacknowledged: bool, severity: str | None, min_severity: str | None,
             since: float | None) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if unacknowledged:
        clauses.append("acknowledged IS NULL")
    if severity is not None:
        clauses.append("severity = ?")
        params.append(severity)
    if min_severity is not None:
        allowed = [s for s in SEVERITY_RANK if severity_at_least(s, min_severity)]
        clauses.append(f"severity IN ({', '.join('?' for _ in allowed)})")
        params.extend(allowed)
    if since is not None:
        clauses.append("time >= ?")
        params.append(since)
    return (" WHERE " + " AND ".join(clauses) if clauses else ""), params


def _from_row(row: Any) -> Alert:
    try:
        extra = json.loads(row["extra"])
    except (TypeError, ValueError):
        extra = {}
    return Alert(
        id=int(row["id"]), time=float(row["time"]), rule=row["rule"], severity=row["severity"],
        title=row["title"], message=row["message"], host=row["host"], log=row["log"],
        outcome=row["outcome"], line=row["line"], acknowledged=row["acknowledged"],
        extra=extra if isinstance(extra, dict) else {},
    )
