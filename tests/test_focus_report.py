"""The week report and yesterday's summary on a seeded store, against figures worked
out by hand (tests/focus_seed.py says where each one comes from)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import focus_seed
import pytest
import ui_data
from focus_seed import FakeBoard, FakePapers, H, M

from nomadlab.core.clock import ManualClock
from nomadlab.core.config import load_config_text
from nomadlab.core.focus import FocusService
from nomadlab.core.focus.report import day_summary, week_report, yesterday
from nomadlab.core.store import Store


@pytest.fixture
def seeded(tmp_path: Path) -> FocusService:
    cfg = ui_data.config(tmp_path)
    store = Store(cfg.database)
    focus_seed.seed(cfg, store)
    focus = FocusService(cfg, store, ManualClock(focus_seed.NOW))
    focus.link(board=FakeBoard(), papers=FakePapers())
    return focus


def test_the_week_report_matches_the_hand_computed_figures(seeded: FocusService) -> None:
    report = week_report(seeded, "2026-W47")
    week = focus_seed.WEEK
    assert [d.day.isoformat() for d in report.days] == [
        "2026-11-16", "2026-11-17", "2026-11-18", "2026-11-19", "2026-11-20", "2026-11-21",
        "2026-11-22"]
    assert {d.day.isoformat(): d.focus for d in report.days if d.focus} == week["focus"]
    assert {d.day.isoformat(): d.plan for d in report.days} == week["plan"]
    assert report.focus == 13 * H + 51 * M + 40
    assert report.plan == 30.5 * H
    assert [d.sessions for d in report.days] == [2, 2, 2, 0, 0, 0, 0]  # S4: abandoned
    assert [d.interruptions for d in report.days] == [2, 1, 1, 0, 0, 0, 0]
    assert (report.sessions, report.completed, report.finished_early, report.abandoned,
            report.interruptions) == (6, 3, 2, 1, 4)
    assert report.by_kind == {"deep": 12 * H, "sprint": H + 6 * M + 40, "light": 45 * M}
    assert (report.longest, report.longest_day, report.longest_purpose) == (
        4 * H, date(2026, 11, 18), "#42 Tune the LR schedule")
    assert (report.runs_finished, report.runs_failed) == week["runs"]
    assert report.board == {
        "moves": 4, "auto": 1, "finished": 2,
        "into": {"Training": 2, "Evaluation": 1, "Deployment": 1},
        "out_of": {"Hypothesis": 1, "Training": 1, "Data Prep": 1, "Evaluation": 1}}
    assert report.papers == {"started": 1, "read": 1, "cap": 2,
                             "read_titles": ["Attention Is All You Need"]}
    assert report.gpu == [
        {"host": "home-4090", "used_hours": 0.5, "idle_hours": 0.0, "idle_cost": 0.0,
         "cost": 0.0},
        {"host": "lambda-h100", "used_hours": 2.0, "idle_hours": 1.0,
         "idle_cost": pytest.approx(3.0), "cost": pytest.approx(9.0)},
    ]
    assert report.retro is None
    assert report.previous_retro is not None
    assert report.previous_retro.change == "no meetings before 11"


def test_the_week_report_as_markdown_and_text(seeded: FocusService) -> None:
    seeded.set_retro("2026-W47", "long mornings", "Slack | email", "mute *everything*")
    report = week_report(seeded, "2026-W47")
    markdown = report.markdown()
    assert markdown.startswith("# Week 2026-W47 (16-22 Nov 2026)\n")
    lines = markdown.splitlines()
    assert "| Mon 16 Nov | 5h00m | 4h00m | 2 | 2 |" in lines
    assert "| Wed 18 Nov | 4h06m | 6h30m | 2 | 1 |" in lines
    assert "| Tue 17 Nov | 4h45m | 4h00m | 2 | 1 |" in lines  # S4 was abandoned
    assert "| **Total** | **13h51m** | **30h30m** | **6** | **4** |" in lines
    assert "- **Longest block:** 4h00m on Wed, #42 Tune the LR schedule" in lines
    assert "- **Runs:** 2 finished, 2 failed" in lines
    assert "- **Papers:** 1 started of 2 allowed, 1 read" in lines
    assert "| Training | 2 | 1 |" in lines
    assert "| lambda-h100 | 2.0 | 1.0 | 3.00 | 9.00 |" in lines
    assert "| home-4090 | 0.5 | 0.0 | - | - |" in lines
    assert "- What did not? Slack \\| email" in lines  # user text cannot break the table
    assert "- What will you change? mute \\*everything\\*" in lines
    assert "- Last week you meant to change: no meetings before 11" in lines
    text = report.text()
    assert "  Wed 18  " in text and "4h06m / 6h30m" in text
    assert "  Focus:         13h51m of 30h30m planned (45%)" in text
    assert "read: Attention Is All You Need" in text
    assert ("  Sessions:      6 (3 completed, 2 finished early; 1 abandoned, not counted),"
            " 4 interruptions") in text
    data = report.to_dict()
    assert data["runs"] == {"finished": 2, "failed": 2}
    assert data["longest_unbroken_day"] == "2026-11-18"


def test_yesterday_in_a_few_lines(seeded: FocusService) -> None:
    summary = yesterday(seeded)
    assert summary.day == date(2026, 11, 17)
    assert (summary.focus, summary.plan, summary.sessions, summary.interruptions) == (
        4 * H + 45 * M, 4 * H, 2, 1)  # the abandoned one does not count
    assert (summary.runs_finished, summary.runs_failed) == (2, 1)
    assert (summary.cards_moved, summary.cards_finished, summary.papers_read) == (2, 1, 1)
    assert summary.lines() == [
        "Tue 17 Nov: 4h45m focus of 4h00m planned, 2 sessions, 1 interruption",
        "2 cards moved, 1 finished · runs: 2 finished, 1 failed · 1 paper read: "
        "Attention Is All You Need",
    ]


def test_without_the_board_and_papers_those_lines_are_left_out(tmp_path: Path) -> None:
    cfg = ui_data.config(tmp_path)
    store = Store(cfg.database)
    focus_seed.seed(cfg, store)
    focus = FocusService(cfg, store, ManualClock(focus_seed.NOW))
    report = week_report(focus, "2026-W47")
    assert report.board is None and report.papers is None
    assert "Cards" not in report.text() and "Papers" not in report.markdown()
    summary = day_summary(focus, date(2026, 11, 17))
    assert summary.cards_moved is None and summary.papers_read is None
    assert summary.lines()[1] == "runs: 2 finished, 1 failed"


def test_a_week_with_a_daylight_saving_change(tmp_path: Path) -> None:
    """Berlin, week 2026-W13: Sunday the 29th has 23 hours; a session at 01:30 that
    night belongs to Saturday."""
    cfg = load_config_text(f'data_dir = "{tmp_path / "data"}"\n')
    berlin = ZoneInfo("Europe/Berlin")
    store = Store(cfg.database)
    clock = focus_seed.SetClock(0)
    focus = FocusService(cfg, store, clock, tz=berlin)
    from datetime import datetime

    clock.set(datetime(2026, 3, 29, 1, 30, tzinfo=berlin).timestamp())
    focus.start_session("sprint")
    clock.set(datetime(2026, 3, 29, 3, 30, tzinfo=berlin).timestamp())  # 60 min later
    focus.finish()
    clock.set(datetime(2026, 3, 29, 9, tzinfo=berlin).timestamp())
    focus.start_session("pomodoro")
    clock.advance(H)
    report = week_report(focus, "2026-W13")
    assert report.end - report.start == 7 * 24 * H - H
    assert {d.day.isoformat(): d.focus for d in report.days if d.focus} == {
        "2026-03-28": 60 * M, "2026-03-29": 25 * M}
