"""What the focus sessions add up to: yesterday in a few lines, and the week report.

Figures come from the focus tables, the alerts history (runs finished and failed:
alerts whose ``outcome`` says so), the per-minute GPU aggregates (GPU hours used and
idle, with cost where hosts have ``hourly_cost``) and, when those features exist, the
board (cards moved and finished) and the paper queue (papers started and read against
the weekly cap), reached through the focus service's ``board``/``papers``: typed calls
of core/features.py's ``BoardActivity`` and ``PaperActivity``.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any, TypeVar

from nomadlab.core.aggregate import gpu_hours
from nomadlab.core.alerts import clean_text
from nomadlab.core.durations import total
from nomadlab.core.energy import HostEnergy, energy_by_host
from nomadlab.core.focus import (
    RETRO_PROMPTS,
    Days,
    FocusService,
    Retro,
    Session,
)

log = logging.getLogger(__name__)

T = TypeVar("T")


def _ask(call: Callable[[], T], what: str) -> T | None:
    """Another feature's answer; None when it fails (its failure is not the report's)."""
    try:
        return call()
    except (LookupError, ValueError, TypeError, sqlite3.Error) as exc:
        log.warning("%s failed: %s", what, exc)
        return None


def _moves(service: FocusService, start: float,
           end: float) -> Sequence[Mapping[str, object]] | None:
    board = service.board
    if board is None:
        return None
    return _ask(lambda: board.moves_between(start, end), "the board's moves")


def _finished(service: FocusService, start: float, end: float) -> int | None:
    board = service.board
    if board is None:
        return None
    return _of_type(_ask(lambda: board.cards_finished_between(start, end),
                         "the board's finished cards"), int)


def _activity(service: FocusService, start: float,
              end: float) -> Mapping[str, object] | None:
    papers = service.papers
    if papers is None:
        return None
    return _ask(lambda: papers.activity_between(start, end), "the paper queue's activity")


def _titles(value: object, limit: int) -> list[str]:
    return [clean_text(str(t), limit) for t in value] if isinstance(value, list | tuple) else []


def runs_between(service: FocusService, start: float, end: float) -> tuple[int, int]:
    """(finished, failed) runs, from the alerts history."""
    rows = service.store.query(
        "SELECT outcome, COUNT(*) AS n FROM alerts WHERE time >= ? AND time < ?"
        " AND outcome IN ('finished', 'failed') GROUP BY outcome", (start, end))
    counts = {r["outcome"]: int(r["n"]) for r in rows}
    return counts.get("finished", 0), counts.get("failed", 0)


def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else (plural or word + 's')}"


def _of_type(value: object, kind: type[T]) -> T | None:
    return value if isinstance(value, kind) and not isinstance(value, bool) else None


# --------------------------------------------------------------------------- a day


@dataclass(slots=True)
class DaySummary:
    day: date
    focus: float  # seconds
    plan: float  # seconds
    sessions: int
    interruptions: int
    runs_finished: int
    runs_failed: int
    cards_moved: int | None = None  # None: no board
    cards_finished: int | None = None
    papers_read: int | None = None  # None: no paper queue
    read_titles: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        head = (f"{self.day:%a %d %b}: {total(self.focus)} focus of "
                f"{total(self.plan)} planned, {_plural(self.sessions, 'session')}, "
                f"{_plural(self.interruptions, 'interruption')}")
        parts = []
        if self.cards_moved is not None:
            text = f"{_plural(self.cards_moved, 'card')} moved"
            if self.cards_finished:
                text += f", {self.cards_finished} finished"
            parts.append(text)
        parts.append(f"runs: {self.runs_finished} finished, {self.runs_failed} failed")
        if self.papers_read is not None:
            text = f"{_plural(self.papers_read, 'paper')} read"
            if self.read_titles:
                text += ": " + "; ".join(self.read_titles[:2])
            parts.append(text)
        return [head, " · ".join(parts)]


def day_summary(service: FocusService, day: date, now: float | None = None) -> DaySummary:
    now = service.clock.time() if now is None else now
    start, end = service.days.day_range(day)
    sessions = service.sessions_between(start, end)
    finished, failed = runs_between(service, start, end)
    summary = DaySummary(
        day=day, focus=service.focus_seconds(sessions, now), plan=service.plan_seconds(day),
        sessions=len(service.counted(sessions)),
        interruptions=sum(len(s.interruptions) for s in sessions),
        runs_finished=finished, runs_failed=failed)
    moves = _moves(service, start, end)
    if moves is not None:
        summary.cards_moved = len(moves)
        summary.cards_finished = _finished(service, start, end)
    activity = _activity(service, start, end)
    if activity is not None:
        summary.papers_read = _of_type(activity.get("read"), int) or 0
        summary.read_titles = _titles(activity.get("read_titles"), 80)
    return summary


# --------------------------------------------------------------------------- the week


@dataclass(slots=True)
class DayRow:
    day: date
    focus: float
    plan: float
    sessions: int
    interruptions: int


@dataclass(slots=True)
class WeekReport:
    week: str
    start: float
    end: float
    days: list[DayRow]
    sessions: int = 0
    completed: int = 0
    finished_early: int = 0
    abandoned: int = 0
    interruptions: int = 0
    by_kind: dict[str, float] = field(default_factory=dict)
    longest: float = 0.0
    longest_day: date | None = None
    longest_purpose: str = ""
    runs_finished: int = 0
    runs_failed: int = 0
    board: dict[str, Any] | None = None
    papers: dict[str, Any] | None = None
    gpu: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[dict[str, Any]] = field(default_factory=list)  # GPU hours of my Slurm jobs
    retro: Retro | None = None
    previous_retro: Retro | None = None

    @property
    def focus(self) -> float:
        return sum(d.focus for d in self.days)

    @property
    def plan(self) -> float:
        return sum(d.plan for d in self.days)

    @property
    def title(self) -> str:
        first, last = self.days[0].day, self.days[-1].day
        span = (f"{first:%d}-{last:%d %b %Y}" if first.month == last.month
                else f"{first:%d %b}-{last:%d %b %Y}")
        return f"Week {self.week} ({span})"

    def gpu_totals(self) -> dict[str, float]:
        return {key: sum(float(h[key]) for h in self.gpu)
                for key in ("used_hours", "idle_hours", "idle_cost", "cost")}

    # ------------------------------------------------------------------ data

    def to_dict(self) -> dict[str, Any]:
        return {
            "week": self.week,
            "start": self.start,
            "end": self.end,
            "focus_seconds": self.focus,
            "plan_seconds": self.plan,
            "days": [{"day": d.day.isoformat(), "focus_seconds": d.focus,
                      "plan_seconds": d.plan, "sessions": d.sessions,
                      "interruptions": d.interruptions} for d in self.days],
            "sessions": self.sessions,
            "completed": self.completed,
            "finished_early": self.finished_early,
            "abandoned": self.abandoned,
            "interruptions": self.interruptions,
            "focus_by_kind": self.by_kind,
            "longest_unbroken_seconds": self.longest,
            "longest_unbroken_day": self.longest_day.isoformat() if self.longest_day else None,
            "longest_unbroken_for": self.longest_purpose,
            "runs": {"finished": self.runs_finished, "failed": self.runs_failed},
            "board": self.board,
            "papers": self.papers,
            "gpu": self.gpu,
            "jobs": self.jobs,
            "retro": _retro_dict(self.retro),
            "previous_retro": _retro_dict(self.previous_retro),
        }

    # ------------------------------------------------------------------ text

    def stat_lines(self) -> list[tuple[str, str]]:
        rows: list[tuple[str, str]] = []
        rows.append(("Focus", f"{total(self.focus)} of {total(self.plan)} planned"
                              + (f" ({100 * self.focus / self.plan:.0f}%)" if self.plan else "")))
        kinds = ", ".join(f"{kind} {total(s)}" for kind, s in self.by_kind.items() if s)
        if kinds:
            rows.append(("By kind", kinds))
        ended = [f"{self.completed} completed"]
        if self.finished_early:
            ended.append(f"{self.finished_early} finished early")
        dropped = f"; {self.abandoned} abandoned, not counted" if self.abandoned else ""
        rows.append(("Sessions", f"{self.sessions} ({', '.join(ended)}{dropped}), "
                                 f"{_plural(self.interruptions, 'interruption')}"))
        if self.longest_day is not None:
            text = f"{total(self.longest)} on {self.longest_day:%a}"
            if self.longest_purpose:
                text += f", {self.longest_purpose}"
            rows.append(("Longest block", text))
        else:
            rows.append(("Longest block", "none"))
        if self.board is not None:
            text = f"{_plural(int(self.board['moves']), 'move')}"
            into = self.board.get("into") or {}
            if into:
                text += " (" + ", ".join(f"{c} +{n}" for c, n in into.items()) + ")"
            if self.board.get("finished") is not None:
                text += f", {self.board['finished']} finished"
            rows.append(("Cards", text))
        rows.append(("Runs", f"{self.runs_finished} finished, {self.runs_failed} failed"))
        if self.papers is not None:
            text = (f"{self.papers['started']} started of {self.papers['cap']} allowed, "
                    f"{self.papers['read']} read")
            rows.append(("Papers", text))
        if self.gpu:
            totals = self.gpu_totals()
            text = (f"{totals['used_hours']:.1f} h used, {totals['idle_hours']:.1f} h idle")
            if totals["cost"]:
                text += f" (cost {totals['cost']:.2f}, idle {totals['idle_cost']:.2f})"
            rows.append(("GPU", text))
            energy = energy_line(self.gpu)
            if energy:
                rows.append(("Energy", energy))
        if self.jobs:
            hours = sum(float(c["gpu_hours"]) for c in self.jobs)
            count = sum(int(c["jobs"]) for c in self.jobs)
            rows.append(("Slurm jobs", f"{hours:.1f} GPU h in {_plural(count, 'job')} on "
                                       + ", ".join(f"{c['cluster']} {float(c['gpu_hours']):.1f} h"
                                                   for c in self.jobs)))
        return rows

    def text(self) -> str:
        """Plain text for the terminal."""
        out = [self.title, ""]
        width = max((d.plan for d in self.days), default=0)
        width = max(width, max((d.focus for d in self.days), default=0), 1)
        for d in self.days:
            filled = round(20 * d.focus / width)
            bar = "█" * filled + "·" * (20 - filled)
            out.append(f"  {d.day:%a %d}  {bar}  {total(d.focus):>6} / "
                       f"{total(d.plan):<6} {_plural(d.sessions, 'session')}, "
                       f"{_plural(d.interruptions, 'interruption')}")
        out.append("")
        for label, value in self.stat_lines():
            out.append(f"  {label + ':':<15}{value}")
        if self.board is not None and self.board.get("out_of"):
            out.append("  " + " " * 15 + "left: " + ", ".join(
                f"{c} -{n}" for c, n in self.board["out_of"].items()))
        if self.papers is not None and self.papers.get("read_titles"):
            for title in self.papers["read_titles"]:
                out.append("  " + " " * 15 + f"read: {title}")
        for host in self.gpu:
            line = (f"  {'':15}{host['host']}: {float(host['used_hours']):.1f} h used, "
                    f"{float(host['idle_hours']):.1f} h idle")
            if host["cost"]:
                line += f", idle cost {float(host['idle_cost']):.2f} of {float(host['cost']):.2f}"
            if host.get("kwh") is not None:
                line += f", {float(host['kwh']):.1f} kWh"
                if host.get("energy_cost") is not None:
                    line += f" ({float(host['energy_cost']):.2f})"
            out.append(line)
        out.extend(["", *_retro_text(self.retro, self.previous_retro)])
        return "\n".join(out).rstrip() + "\n"

    def markdown(self) -> str:
        out = [f"# {self.title}", "", "| Day | Focus | Plan | Sessions | Interruptions |",
               "|---|---:|---:|---:|---:|"]
        for d in self.days:
            out.append(f"| {d.day:%a %d %b} | {total(d.focus)} | {total(d.plan)} |"
                       f" {d.sessions} | {d.interruptions} |")
        out.append(f"| **Total** | **{total(self.focus)}** | **{total(self.plan)}**"
                   f" | **{self.sessions}** | **{self.interruptions}** |")
        out.append("")
        for label, value in self.stat_lines():
            out.append(f"- **{label}:** {_md(value)}")
        if self.board is not None and (self.board.get("into") or self.board.get("out_of")):
            out += ["", "| Column | Moved in | Moved out |", "|---|---:|---:|"]
            columns = list(dict.fromkeys([*self.board.get("into", {}),
                                          *self.board.get("out_of", {})]))
            for column in columns:
                out.append(f"| {_md(column)} | {self.board.get('into', {}).get(column, 0)} |"
                           f" {self.board.get('out_of', {}).get(column, 0)} |")
        if self.papers is not None and self.papers.get("read_titles"):
            out += ["", "Papers read:", *[f"- {_md(t)}" for t in self.papers["read_titles"]]]
        if self.gpu:
            out += ["", "| Host | GPU hours used | GPU hours idle | Idle cost | Cost |",
                    "|---|---:|---:|---:|---:|"]
            for host in self.gpu:
                paid = bool(host["cost"])
                idle_cost = f"{float(host['idle_cost']):.2f}" if paid else "-"
                cost = f"{float(host['cost']):.2f}" if paid else "-"
                out.append(f"| {_md(str(host['host']))} | {float(host['used_hours']):.1f} |"
                           f" {float(host['idle_hours']):.1f} | {idle_cost} | {cost} |")
        out += ["", "## Retro", ""]
        if self.retro is None or self.retro.empty:
            out.append("Not written yet.")
        else:
            for key, prompt in RETRO_PROMPTS:
                out.append(f"- {prompt} {_md(getattr(self.retro, key)) or '-'}")
        if self.previous_retro is not None and self.previous_retro.change:
            out.append(f"- Last week you meant to change: {_md(self.previous_retro.change)}")
        return "\n".join(out).rstrip() + "\n"


def _md(text: str) -> str:
    """User text in Markdown: no table breaks, no HTML, no accidental emphasis."""
    for char in ("\\", "|", "*", "_", "`", "<", ">", "[", "]"):
        text = text.replace(char, "\\" + char)
    return text


def _retro_dict(retro: Retro | None) -> dict[str, str] | None:
    if retro is None:
        return None
    return {"worked": retro.worked, "didnt": retro.didnt, "change": retro.change}


def _retro_text(retro: Retro | None, previous: Retro | None) -> list[str]:
    out = ["Retro:"]
    if retro is None or retro.empty:
        out.append("  not written yet")
    else:
        for key, prompt in RETRO_PROMPTS:
            out.append(f"  {prompt} {getattr(retro, key) or '-'}")
    if previous is not None and previous.change:
        out.append(f"  Last week you meant to change: {previous.change}")
    return out


def week_report(service: FocusService, week: str, now: float | None = None) -> WeekReport:
    now = service.clock.time() if now is None else now
    service.current(now)  # a session whose time ran out is completed first
    days = service.days
    day_list = days.week_days(week)
    start, end = days.week_range(week)
    report = WeekReport(week=week, start=start, end=end, days=[])
    longest: tuple[float, Session | None] = (0.0, None)
    for day in day_list:
        sessions = service.sessions_between(*days.day_range(day))
        report.days.append(DayRow(day, service.focus_seconds(sessions, now),
                                  service.plan_seconds(day), len(service.counted(sessions)),
                                  sum(len(s.interruptions) for s in sessions)))
        for s in sessions:
            report.sessions += s.state != "abandoned"  # like their time, not counted
            report.interruptions += len(s.interruptions)
            report.completed += s.state == "completed"
            report.finished_early += s.state == "finished"
            report.abandoned += s.state == "abandoned"
            if s.state != "abandoned":
                report.by_kind[s.kind] = report.by_kind.get(s.kind, 0.0) + s.focus_seconds(now)
                unbroken = s.longest_unbroken(now)
                if unbroken > longest[0]:
                    longest = (unbroken, s)
    if longest[1] is not None:
        report.longest = longest[0]
        report.longest_day = days.day_of(longest[1].started)
        report.longest_purpose = longest[1].purpose
    report.runs_finished, report.runs_failed = runs_between(service, start, end)
    report.board = _board(service, start, end)
    report.papers = _papers(service, start, end, now)
    report.gpu = [dict(h) for h in gpu_hours(service.store, int(start // 60), int(end // 60))]
    add_energy(report.gpu, energy_by_host(service.store, int(start // 60), int(end // 60)))
    report.jobs = _jobs(service, start, end)
    report.retro = service.retro(week)
    report.previous_retro = service.retro(Days.shift_week(week, -1))
    return report


def _jobs(service: FocusService, start: float, end: float) -> list[dict[str, Any]]:
    """GPU hours of the user's Slurm jobs per cluster (what the jobs service saw)."""
    from nomadlab.core.jobs.history import JobHistory

    try:
        rows = JobHistory(service.store).gpu_hours(start, end)
    except Exception:  # an older database without the jobs table: nothing to say
        return []
    return [{"cluster": r.cluster, "gpu_hours": r.gpu_hours, "jobs": r.jobs} for r in rows]


def _board(service: FocusService, start: float, end: float) -> dict[str, Any] | None:
    moves = _moves(service, start, end)
    if moves is None:
        return None
    into: dict[str, int] = {}
    out_of: dict[str, int] = {}
    auto = 0
    for move in moves:
        if move.get("to"):
            column = clean_text(str(move["to"]), 40)
            into[column] = into.get(column, 0) + 1
        if move.get("from"):
            column = clean_text(str(move["from"]), 40)
            out_of[column] = out_of.get(column, 0) + 1
        auto += bool(move.get("auto"))
    finished = _finished(service, start, end)
    return {"moves": len(moves), "auto": auto, "into": into, "out_of": out_of,
            "finished": finished}


def _papers(service: FocusService, start: float, end: float,
            now: float) -> dict[str, Any] | None:
    papers = service.papers
    activity = _activity(service, start, end)
    if papers is None or activity is None:
        return None
    count = _ask(lambda: papers.week_count(now), "the paper queue's week")
    cap = count[1] if count is not None else service.config.papers.weekly_cap
    return {"started": _of_type(activity.get("started"), int) or 0,
            "read": _of_type(activity.get("read"), int) or 0, "cap": cap,
            "read_titles": _titles(activity.get("read_titles"), 120)}


def yesterday(service: FocusService, now: float | None = None) -> DaySummary:
    now = service.clock.time() if now is None else now
    return day_summary(service, service.today(now) - timedelta(days=1), now)


__all__ = ["DayRow", "DaySummary", "WeekReport", "day_summary", "runs_between", "week_report",
           "yesterday"]


# --------------------------------------------------------------------------- energy


def add_energy(gpu: list[dict[str, Any]], energy: dict[str, HostEnergy]) -> None:
    """Put each host's kWh (and its cost, with a kwh_price) next to its GPU hours."""
    for host in gpu:
        found = energy.get(str(host["host"]))
        if found is not None:  # hosts without an energy counter keep their keys as they were
            host["kwh"] = found.kwh
            host["energy_cost"] = found.cost


def energy_line(gpu: list[dict[str, Any]]) -> str:
    """'12.3 kWh (cost 3.69, idle cost 1.20)'; empty when no host reported energy."""
    hosts = [h for h in gpu if h.get("kwh") is not None]
    if not hosts:
        return ""
    kwh = sum(float(h["kwh"]) for h in hosts)
    text = f"{kwh:.1f} kWh"
    costs = [h["energy_cost"] for h in hosts if h.get("energy_cost") is not None]
    if costs:
        text += f" (cost {sum(float(c) for c in costs):.2f}"
        idle = sum(float(h["idle_cost"]) for h in hosts if h.get("energy_cost") is not None)
        text += f", next to idle cost {idle:.2f})" if idle else ")"
    return text
