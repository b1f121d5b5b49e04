"""The alert engine: log lines, host statuses and GPU samples in, alerts out.

Pure: no I/O, no network, no Textual, time from an injected clock. The rule kinds
and the cooldown are described in :mod:`nomadlab.core.alerts`; the ``log`` rules and
the cooldown live in :mod:`nomadlab.core.alert_lines`, the host, GPU and process
rules here.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nomadlab.core.alert_lines import LineAlerts, globs_match
from nomadlab.core.alerts import (
    LINE_LIMIT,
    Alert,
    clean_text,
    severity_at_least,
)
from nomadlab.core.clock import SYSTEM_CLOCK, Clock
from nomadlab.core.config import AlertRule
from nomadlab.core.durations import compact as human_duration

if TYPE_CHECKING:
    # The engine's parts (the regex module, the GPU model, health) are imported where
    # the engine uses them.
    from nomadlab.core.model import HostSample, HostState, HostStatus


def _gpu_list(indices: Iterable[int]) -> str:
    ordered = sorted(set(indices))
    if not ordered:
        return "?"
    return ", ".join(str(i) for i in ordered)


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


class AlertEngine(LineAlerts):
    """Turns log lines, statuses and samples into alerts. Feed it; it answers.

    ``costs`` maps host names to their hourly cost (None: unknown or free).
    """

    def __init__(self, rules: Iterable[AlertRule], clock: Clock = SYSTEM_CLOCK,
                 costs: Mapping[str, float | None] | None = None,
                 source_costs: Mapping[str, float | None] | None = None) -> None:
        super().__init__(list(rules), clock)
        self.costs: dict[str, float | None] = dict(costs or {})
        # hosts of a [[sources]] entry not in ``costs``: that source's default
        self.source_costs: dict[str, float | None] = dict(source_costs or {})
        # (host, GPU key) -> the newest XID event said (code, time)
        self._xids: dict[tuple[str, str], tuple[int, float]] = {}
        from nomadlab.core.health_alerts import HealthWatch

        self._hosts: dict[str, _HostTrack] = {}
        # (rule, host) -> GPU key -> since: GPUs idle (gpu_idle) or hot (temperature)
        self._gpu_since: dict[tuple[str, str], dict[str, float]] = {}
        self._health = HealthWatch()

    def rule(self, name: str) -> AlertRule | None:
        for rule in self.rules:
            if rule.name == name:
                return rule
        return None

    # ------------------------------------------------------------------ hosts

    def _track(self, host: str) -> _HostTrack:
        track = self._hosts.get(host)
        if track is None:
            track = self._hosts[host] = _HostTrack()
        return track

    def _rules(self, kind: str, host: str) -> list[AlertRule]:
        return [r for r in self.rules if r.when == kind and globs_match(r.hosts, host)]

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
            # The newest XID event of the GPU's health (NVML's event thread over SSH,
            # DCGM's last-XID counter through Prometheus): said once per new event.
            events = gpu.health.xid if gpu.health is not None else None
            if not events:
                continue
            newest = max(events, key=lambda e: e.time)
            key = (host, _gpu_key(gpu.uuid, gpu.index))
            if newest.code and self._xids.get(key) != (newest.code, newest.time):
                fresh.append((gpu.index, newest.code))
            self._xids[key] = (newest.code, newest.time)
        out: list[Alert] = []
        if not fresh:
            return out
        shown = ", ".join(f"GPU {index} XID {code}" for index, code in fresh)
        for rule in rules:
            out.append(Alert(
                time=now, rule=rule.name, severity=rule.severity, title=f"{rule.name}: {host}",
                message=f"{host} reported an XID error: {shown}.", host=host,
                outcome=rule.outcome,
                extra={"gpus": [index for index, _ in fresh],
                       "xids": [code for _, code in fresh]},
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
            if not globs_match(er.rule.hosts, host):
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
