"""A known week of focus data (UTC, day starts 04:00) for the focus tests and snapshots.

Week 2026-W47: Monday 16 November .. Sunday 22 November; "now" is ui_data.START,
Wednesday 18 November 11:06:40. Hand-computed figures are in WEEK below.

Monday     S1 deep 07:00 4h, interrupted 08:00 and 09:30, completed 11:00
           S2 sprint 14:00 90m, paused 14:30-14:40, finished early 15:10 (60m focus)
Tuesday    S3 deep 07:30 4h, paused 09:30-10:00, interrupted 11:00, completed 12:00
           S4 pomodoro 16:00 25m, abandoned 16:10 (does not count)
           S5 light Wednesday 03:00 60m (before 04:00: still Tuesday), finished 03:45
Wednesday  blocks 07:00-11:00 deep (card 42), 11:00-12:30 sprint, 19:00-20:00 light
           S6 the first block 07:00, completed 11:00
           S7 the second block 11:00, running, interrupted 11:05 "slack ping"
Alerts     runs finished Tue 10:00 and 20:00; failed Tue 13:00 and Wed 09:00; one
           more failed Mon 03:00 (Sunday's, last week's)
GPU        lambda-h100 ($24/h, 8 GPUs): 120 busy GPU-minutes, 60 idle; home-4090: 30 busy
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import ui_data

from nomadlab.core.alert_store import AlertLog
from nomadlab.core.alerts import Alert
from nomadlab.core.clock import ManualClock
from nomadlab.core.config import Config
from nomadlab.core.focus import FocusService, Purpose
from nomadlab.core.store import Store

H = 3600.0
M = 60.0
MONDAY = 1_794_787_200.0  # 2026-11-16 00:00 UTC
TUESDAY = MONDAY + 24 * H
WEDNESDAY = TUESDAY + 24 * H
WEDNESDAY_DATE = date(2026, 11, 18)
NOW = ui_data.START  # Wednesday 11:06:40
assert NOW == WEDNESDAY + 11 * H + 6 * M + 40

WEEK = {
    "focus": {"2026-11-16": 5 * H, "2026-11-17": 4 * H + 45 * M,
              "2026-11-18": 4 * H + 6 * M + 40},
    "plan": {"2026-11-16": 4 * H, "2026-11-17": 4 * H, "2026-11-18": 6.5 * H,
             "2026-11-19": 4 * H, "2026-11-20": 4 * H, "2026-11-21": 4 * H,
             "2026-11-22": 4 * H},
    "sessions": 6, "completed": 3, "finished_early": 2, "abandoned": 1, "interruptions": 4,
    "longest": 4 * H,  # Wednesday 07:00-11:00 (S6: no pause, no interruption)
    "runs": (2, 2),
}


class SetClock(ManualClock):
    def set(self, t: float) -> None:
        self._wall = t
        self._mono = t


class FakeBoard:
    """The board's cross-feature contract, with fixed data."""

    def __init__(self) -> None:
        self.moves = [
            {"card": 42, "title": "Tune the LR schedule", "from": "Hypothesis",
             "to": "Training", "time": MONDAY + 10 * H, "auto": False},
            {"card": 42, "title": "Tune the LR schedule", "from": "Training",
             "to": "Evaluation", "time": TUESDAY + 20 * H, "auto": True},
            {"card": 7, "title": "Clean the eval set", "from": "Data Prep",
             "to": "Training", "time": TUESDAY + 9 * H, "auto": False},
            {"card": 9, "title": "Distill", "from": "Evaluation", "to": "Deployment",
             "time": WEDNESDAY + 8 * H, "auto": False},
            {"card": 3, "title": "Old", "from": "Hypothesis", "to": "Data Prep",
             "time": MONDAY - 2 * H, "auto": False},  # last week
        ]
        self.finished = [TUESDAY + 20 * H, WEDNESDAY + 8 * H]

    def card_title(self, card_id: int) -> str | None:
        titles = {42: "Tune the LR schedule", 7: "Clean the eval set", 9: "Distill"}
        return titles.get(card_id)

    def moves_between(self, start: float, end: float) -> list[dict[str, Any]]:
        return [m for m in self.moves if start <= m["time"] < end]

    def cards_finished_between(self, start: float, end: float) -> int:
        return sum(1 for t in self.finished if start <= t < end)


class FakePapers:
    def __init__(self) -> None:
        self.started = [MONDAY + 9 * H]
        self.read = [(TUESDAY + 21 * H, "Attention Is All You Need")]

    def paper_title(self, paper_id: int) -> str | None:
        return {7: "Attention Is All You Need"}.get(paper_id)

    def activity_between(self, start: float, end: float) -> dict[str, Any]:
        read = [title for t, title in self.read if start <= t < end]
        return {"started": sum(1 for t in self.started if start <= t < end),
                "read": len(read), "read_titles": read}

    def week_count(self, now: float) -> tuple[int, int]:
        return 1, 2


def seed(config: Config, store: Store) -> None:
    """Write the week above into ``store`` (through the service, as a user would)."""
    clock = SetClock(MONDAY)
    focus = FocusService(config, store, clock)
    at = clock.set
    # Monday
    at(MONDAY + 7 * H)
    focus.start_session("deep", Purpose("text", None, "baseline sweep"))
    at(MONDAY + 8 * H)
    focus.interrupt("slack")
    at(MONDAY + 9.5 * H)
    focus.interrupt("door")
    at(MONDAY + 14 * H)
    focus.start_session("sprint", Purpose("text", None, "read the logs"))
    at(MONDAY + 14.5 * H)
    focus.pause()
    at(MONDAY + 14 * H + 40 * M)
    focus.resume()
    at(MONDAY + 15 * H + 10 * M)
    focus.finish()
    # Tuesday
    at(TUESDAY + 7.5 * H)
    focus.start_session("deep", Purpose("card", "42", "#42 Tune the LR schedule"))
    at(TUESDAY + 9.5 * H)
    focus.pause()
    at(TUESDAY + 10 * H)
    focus.resume()
    at(TUESDAY + 11 * H)
    focus.interrupt("")
    at(TUESDAY + 16 * H)
    focus.start_session("pomodoro")
    at(TUESDAY + 16 * H + 10 * M)
    focus.abandon()
    at(WEDNESDAY + 3 * H)
    focus.start_session(60, Purpose("text", None, "check runs"), kind="light")
    at(WEDNESDAY + 3 * H + 45 * M)
    focus.finish()
    # Wednesday
    first = focus.add_block(WEDNESDAY_DATE, 7 * 60, 240, "deep",
                            Purpose("card", "42", "#42 Tune the LR schedule"))
    second = focus.add_block(WEDNESDAY_DATE, 11 * 60, 90, "sprint",
                             Purpose("text", None, "write the eval section"))
    focus.add_block(WEDNESDAY_DATE, 19 * 60, 60, "light",
                    Purpose("text", None, "check runs"))
    at(WEDNESDAY + 7 * H)
    focus.start_block(first.id)
    at(WEDNESDAY + 11 * H)
    focus.start_block(second.id)
    at(WEDNESDAY + 11 * H + 5 * M)
    focus.interrupt("slack ping")
    focus.set_note(WEDNESDAY_DATE, "ship the eval section before the 14:00 sync")
    focus.set_retro("2026-W46", "mornings", "meetings", "no meetings before 11")
    # Alerts: runs finished and failed
    log = AlertLog(store, clock)
    for t, outcome in ((TUESDAY + 10 * H, "finished"), (TUESDAY + 20 * H, "finished"),
                       (TUESDAY + 13 * H, "failed"), (WEDNESDAY + 9 * H, "failed"),
                       (MONDAY + 3 * H, "failed")):
        log.insert(Alert(time=t, rule=f"run {outcome}", severity="info", title=f"run {outcome}",
                         message="...", log="train", outcome=outcome))
    # GPU minutes
    rows = []
    base = int((MONDAY + 12 * H) // 60)
    for i in range(180):
        rows.append(("lambda-h100", "GPU-a", 0, "H100", base + i, 30,
                     90.0 if i < 120 else 0.0, 1000.0, 81559.0, 500.0, int(i < 120), 24.0, 8))
    for i in range(30):
        rows.append(("home-4090", "GPU-b", 0, "4090", base + i, 30, 80.0, 1000.0, 24564.0,
                     300.0, 1, None, 1))
    with store.transaction() as db:
        db.executemany("INSERT INTO gpu_minutes (host, gpu_uuid, gpu_index, gpu_name, minute,"
                       " samples, util_avg, memory_avg_mib, memory_total_mib, power_avg_w, busy,"
                       " hourly_cost, gpus_on_host) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)


def build(tmp: Path, *, fakes: bool = True, seeded: bool = True,  # type: ignore[no-untyped-def]
          mode: str = "focus", now: float = NOW):
    """(app, clock): the TUI on the focus screen over the seeded week."""
    from nomadlab.cli.tui import build_app
    from nomadlab.remote.fleet import Fleet

    clock = ManualClock(now)
    cfg = ui_data.config(tmp)
    store = Store(cfg.database)
    if seeded:
        seed(cfg, store)
    fleet = Fleet(cfg, store=store, clock=clock)
    ui_data.feed(fleet, clock)
    app = build_app(cfg, clock=clock, start_fleet=False, store=store, fleet=fleet,
                    initial_mode=mode)
    if fakes:
        app.services.focus.link(board=FakeBoard(), papers=FakePapers())
    return app, clock


def dump(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, default=str)
