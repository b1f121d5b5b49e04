"""The focus timer over a real SQLite store, every instant from an injected clock.

No test sleeps for a timer: ManualClock moves time, and "the laptop slept" is a wall
clock jump. Days and daylight-saving changes use an injected zoneinfo time zone.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from datetime import date, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import wait_for

from nomadlab.core.alerts import Alert
from nomadlab.core.clock import ManualClock
from nomadlab.core.config import Config, FocusPreset, WebhookConfig, load_config_text
from nomadlab.core.focus import (
    AlreadyRunning,
    Days,
    FocusError,
    FocusService,
    NoSession,
    Purpose,
    make_service,
)
from nomadlab.core.store import Store
from nomadlab.notify.hub import AlertHub
from nomadlab.notify.notifier import Notifier

H = 3600.0
M = 60.0
BERLIN = ZoneInfo("Europe/Berlin")
UTC = ZoneInfo("UTC")


def config_at(tmp: Path) -> Config:
    return load_config_text(f'data_dir = "{tmp / "data"}"\nshow_local = false\n')


def at(year: int, month: int, day: int, hour: int, minute: int = 0,
       tz: ZoneInfo = UTC, fold: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=tz, fold=fold).timestamp()


@pytest.fixture
def cfg(tmp_path: Path) -> Config:
    return config_at(tmp_path)


def service(cfg: Config, clock: ManualClock, tz: ZoneInfo | None = UTC,
            **kwargs: object) -> FocusService:
    return FocusService(cfg, Store(cfg.database), clock, tz=tz, **kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- days


def test_a_session_at_one_in_the_morning_belongs_to_the_day_before() -> None:
    days = Days("04:00", BERLIN)
    assert days.day_of(at(2026, 11, 18, 1, tz=BERLIN)) == date(2026, 11, 17)
    assert days.day_of(at(2026, 11, 18, 3, 59, tz=BERLIN)) == date(2026, 11, 17)
    assert days.day_of(at(2026, 11, 18, 4, tz=BERLIN)) == date(2026, 11, 18)
    start, end = days.day_range(date(2026, 11, 17))
    assert (start, end) == (at(2026, 11, 17, 4, tz=BERLIN), at(2026, 11, 18, 4, tz=BERLIN))


def test_days_around_daylight_saving_changes() -> None:
    days = Days("04:00", BERLIN)
    # Clocks go forward on 2026-03-29 at 02:00: the focus day of the 28th is 23 hours.
    start, end = days.day_range(date(2026, 3, 28))
    assert end - start == 23 * H
    # ... and back on 2026-10-25 at 03:00: the focus day of the 24th is 25 hours.
    start, end = days.day_range(date(2026, 10, 24))
    assert end - start == 25 * H
    assert days.week_id(date(2026, 11, 23)) == "2026-W48"
    assert days.week_days("2026-W48")[0] == date(2026, 11, 23)
    assert Days.shift_week("2026-W01", -1) == "2025-W52"
    with pytest.raises(FocusError, match="no week 54"):
        Days.parse_week("2026-W54")
    with pytest.raises(FocusError, match="expected a week"):
        Days.parse_week("next week")


# --------------------------------------------------------------------------- the timer


def test_pause_resume_arithmetic_and_completion_at_the_due_time(cfg: Config) -> None:
    clock = ManualClock(at(2026, 11, 18, 9))
    focus = service(cfg, clock)
    session = focus.start_session("sprint", "write the intro")
    assert (session.preset, session.kind, session.planned) == ("sprint", "sprint", 90 * M)
    assert focus.status_text(clock.time()) == "sprint 1:30:00"
    clock.advance(10 * M)
    focus.pause()
    clock.advance(25 * M)  # paused: nothing runs down
    assert focus.status_text(clock.time()) == "sprint 1:20:00 paused"
    focus.resume()
    clock.advance(5 * M)
    current = focus.current()
    assert current is not None
    assert current.remaining(clock.time()) == 75 * M
    assert current.due() == at(2026, 11, 18, 9) + 90 * M + 25 * M
    focus.extend(15)
    clock.advance(89 * M)
    assert focus.status_text(clock.time()) == "sprint 1:00"
    clock.advance(2 * M)  # past the end: completed when it ran out, not when seen
    assert focus.current() is None
    assert focus.status_text(clock.time()) is None
    done = focus.session(session.id)
    assert done is not None and done.state == "completed"
    assert done.ended == at(2026, 11, 18, 9) + (90 + 25 + 15) * M
    assert done.focus_seconds(clock.time()) == 105 * M
    with pytest.raises(NoSession, match=r"sprint, completed at 11:10"):
        focus.pause()


def test_a_restart_in_the_middle_of_a_session_continues_it(cfg: Config) -> None:
    clock = ManualClock(at(2026, 11, 18, 7))
    first = service(cfg, clock)
    first.start_session("deep", "#42 by text")
    clock.advance(30 * M)
    first.pause()
    first.store.close()  # quit nomadlab
    clock.advance(2 * H)  # ... a long lunch; the laptop slept
    again = service(cfg, clock)  # a new app instance on the same store
    session = again.current()
    assert session is not None and session.state == "paused"
    assert session.remaining(clock.time()) == 3.5 * H
    again.resume()
    clock.jump_wall(H)  # wall time moves while monotonic does not
    assert again.status_text(clock.time()) == "deep 2:30:00"


def test_the_laptop_sleeping_through_the_end(cfg: Config) -> None:
    clock = ManualClock(at(2026, 11, 18, 9))
    focus = service(cfg, clock)
    session = focus.start_session(25)
    assert (session.preset, session.kind) == ("custom", "sprint")
    clock.jump_wall(3 * H)
    assert focus.current() is None
    done = focus.session(session.id)
    assert done is not None and done.ended == at(2026, 11, 18, 9, 25)
    assert focus.day_focus(date(2026, 11, 18)) == 25 * M


def test_pause_and_resume_across_the_day_boundary(cfg: Config) -> None:
    clock = ManualClock(at(2026, 11, 18, 3, 30))  # before 04:00: still the 17th
    focus = service(cfg, clock)
    session = focus.start_session("sprint")
    clock.advance(20 * M)  # 03:50
    focus.pause()
    clock.advance(30 * M)  # 04:20: a new day begins while paused
    focus.resume()
    clock.advance(40 * M)  # 05:00
    finished = focus.finish()
    assert finished.focus_seconds(clock.time()) == 60 * M
    assert finished.paused_seconds(clock.time()) == 30 * M
    assert focus.days.day_of(session.started) == date(2026, 11, 17)
    assert focus.day_focus(date(2026, 11, 17)) == 60 * M
    assert focus.day_focus(date(2026, 11, 18)) == 0.0


def test_pause_resume_across_the_spring_daylight_saving_change(cfg: Config) -> None:
    # 2026-03-29 in Berlin: 02:00 CET becomes 03:00 CEST.
    start = at(2026, 3, 29, 1, 30, tz=BERLIN)
    clock = ManualClock(start)
    focus = service(cfg, clock, tz=BERLIN)
    focus.start_session("sprint")
    clock.advance(20 * M)  # 01:50 CET
    focus.pause()
    clock.advance(20 * M)  # 03:10 CEST: the wall clock says 80 minutes passed, 20 did
    assert focus.days.clock_text(clock.time()) == "03:10"
    focus.resume()
    session = focus.current()
    assert session is not None
    assert session.paused_seconds(clock.time()) == 20 * M
    assert session.remaining(clock.time()) == 70 * M
    due = session.due()
    assert due is not None and focus.days.clock_text(due) == "04:20"
    clock.advance(70 * M)
    assert focus.current() is None
    assert focus.day_focus(date(2026, 3, 28)) == 90 * M  # 01:30 is the 28th's night


def test_pause_resume_across_the_autumn_daylight_saving_change(cfg: Config) -> None:
    # 2026-10-25 in Berlin: 03:00 CEST becomes 02:00 CET; 02:30 happens twice.
    start = at(2026, 10, 25, 2, 30, tz=BERLIN)  # the first 02:30 (CEST)
    clock = ManualClock(start)
    focus = service(cfg, clock, tz=BERLIN)
    focus.start_session("deep")
    clock.advance(20 * M)  # 02:50 CEST
    focus.pause()
    clock.advance(20 * M)  # 02:10 CET: the wall clock went back 40 minutes
    assert focus.days.clock_text(clock.time()) == "02:10"
    focus.resume()
    session = focus.current()
    assert session is not None
    assert session.focus_seconds(clock.time()) == 20 * M
    due = session.due()
    assert due is not None and due - start == 4 * H + 20 * M
    assert focus.days.clock_text(due) == "05:50"
    assert focus.days.day_of(start) == date(2026, 10, 24)
    clock.advance(4 * H)
    assert focus.current() is None  # completed at 05:50 CET
    assert focus.day_focus(date(2026, 10, 24)) == 4 * H


def test_finish_early_abandon_and_interruptions(cfg: Config) -> None:
    clock = ManualClock(at(2026, 11, 18, 9))
    focus = service(cfg, clock)
    focus.start_session("deep", "reading")
    clock.advance(10 * M)
    first = focus.interrupt("slack ping \x1b]0;pwned\x07")
    clock.advance(M)
    focus.interrupt()
    focus.note_interruption(first.id, "Slack")
    session = focus.current()
    assert session is not None and session.state == "running"  # the timer went on
    assert [i.note for i in session.interruptions] == ["Slack", ""]
    clock.advance(49 * M)
    finished = focus.finish()
    assert finished.state == "finished" and finished.focus_seconds(clock.time()) == H
    assert finished.longest_unbroken(clock.time()) == 49 * M
    clock.advance(M)
    focus.start_session("pomodoro")
    clock.advance(10 * M)
    focus.abandon()
    assert focus.day_focus(date(2026, 11, 18)) == H  # the abandoned one does not count
    with pytest.raises(NoSession):
        focus.interrupt()
    with pytest.raises(FocusError, match="unknown preset 'marathon'"):
        focus.start_session("marathon")
    with pytest.raises(FocusError, match="1 minute to 24 hours"):
        focus.start_session("0")


def test_custom_presets_and_durations(tmp_path: Path) -> None:
    cfg = config_at(tmp_path)
    cfg.focus.presets = [FocusPreset("writing", 120, "deep"), FocusPreset("admin", 30, "light")]
    clock = ManualClock(at(2026, 11, 18, 9))
    focus = service(cfg, clock)
    session = focus.start_session()  # the first preset
    assert (session.preset, session.kind, session.planned) == ("writing", "deep", 120 * M)
    focus.abandon()
    session = focus.start_session("1h30m", kind="deep")
    assert (session.preset, session.kind, session.planned) == ("custom", "deep", 90 * M)


# --------------------------------------------------------------------------- one at a time


def test_two_app_instances_cannot_start_two_timers(cfg: Config) -> None:
    clock = ManualClock(at(2026, 11, 18, 9))
    one = service(cfg, clock)
    two = service(cfg, clock)  # another TUI: its own connection to the same file
    one.start_session("deep", "the first")
    with pytest.raises(AlreadyRunning, match=r"#1 deep \(running, 4:00:00 left, for the first"):
        two.start_session("sprint")
    assert two.status_text(clock.time()) == "deep 4:00:00"
    clock.advance(M)
    two.pause()  # either instance controls the one timer
    assert one.status_text(clock.time()) == "deep 3:59:00 paused"
    with pytest.raises(AlreadyRunning):
        one.start_session("sprint")  # paused is still open
    one.finish()
    assert two.status_text(clock.time()) is None
    assert two.start_session("sprint").id == 2
    # The store itself refuses a second open session, whoever writes it.
    with pytest.raises(sqlite3.IntegrityError), one.store.transaction() as db:
        db.execute("INSERT INTO focus_sessions (preset, kind, started, planned, state)"
                   " VALUES ('x', 'deep', 0, 60, 'paused')")


def test_concurrent_starts_from_threads_leave_exactly_one(cfg: Config) -> None:
    clock = ManualClock(at(2026, 11, 18, 9))
    services = [service(cfg, clock) for _ in range(6)]
    barrier = threading.Barrier(len(services))
    outcomes: list[str] = []
    lock = threading.Lock()

    def start(focus: FocusService) -> None:
        barrier.wait(timeout=10)
        try:
            focus.start_session("sprint")
            result = "started"
        except AlreadyRunning:
            result = "refused"
        with lock:
            outcomes.append(result)

    threads = [threading.Thread(target=start, args=(s,)) for s in services]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(outcomes) == ["refused"] * 5 + ["started"]
    rows = services[0].store.query("SELECT COUNT(*) AS n FROM focus_sessions")
    assert rows[0]["n"] == 1


# --------------------------------------------------------------------------- the plan


def test_planned_blocks_parse_move_resize_and_start(cfg: Config) -> None:
    clock = ManualClock(at(2026, 11, 18, 6, 55))
    focus = service(cfg, clock)
    assert focus.parse_span("07:00-11:00") == (7 * 60, 240)
    assert focus.parse_span("19:00+60m") == (19 * 60, 60)
    assert focus.parse_span("19:00 1h30m") == (19 * 60, 90)
    assert focus.parse_span("23:00-01:00") == (23 * 60, 120)  # past midnight: same day
    assert focus.parse_span("01:00-02:00") == (25 * 60, 60)  # before 04:00: this night
    for bad in ("soon", "25:00-26:00", "03:00-05:00"):
        with pytest.raises(FocusError):
            focus.parse_span(bad)
    day = focus.today()
    assert day == date(2026, 11, 18)
    block = focus.add_block(day, 7 * 60, 240, "deep", "the eval section")
    assert block.label == "07:00-11:00" and block.purpose == "the eval section"
    moved = focus.move_block(block.id, -15)
    assert moved.label == "06:45-10:45"
    longer = focus.resize_block(block.id, 30)
    assert longer.label == "06:45-11:15"
    assert focus.move_block(block.id, -24 * 60).start == 4 * 60  # kept inside the day
    assert focus.resize_block(block.id, -24 * 60).minutes == 15
    focus.update_block(block.id, start=7 * 60, minutes=240)
    focus.add_block(day, 19 * 60, 60, "light", "check runs")
    assert [b.label for b in focus.blocks(day)] == ["07:00-11:00", "19:00-20:00"]
    assert focus.plan_seconds(day) == 5 * H
    assert focus.plan_seconds(date(2026, 11, 19)) == cfg.focus.daily_target_hours * H
    session = focus.start_block(block.id)
    assert (session.preset, session.kind, session.planned, session.purpose, session.block) == \
        ("deep", "deep", 4 * H, "the eval section", block.id)
    assert focus.block_sessions(day) == {block.id: [focus.current()]}
    with pytest.raises(FocusError, match="unknown kind"):
        focus.add_block(day, 12 * 60, 30, "nap")
    focus.delete_block(block.id)
    current = focus.current()
    assert current is not None and current.block is None  # ON DELETE SET NULL


def test_purposes_from_board_and_papers(cfg: Config) -> None:
    class Board:
        def card_title(self, card_id: int) -> str | None:
            return {42: "Tune the LR [bold]schedule"}.get(card_id)

    class Papers:
        def paper_title(self, paper_id: int) -> str | None:
            return {7: "Attention Is All You Need"}.get(paper_id)

    clock = ManualClock(at(2026, 11, 18, 9))
    focus = service(cfg, clock)
    assert focus.resolve_purpose("42") == Purpose("card", "42", "card #42")  # no board yet
    focus.link(board=Board(), papers=Papers())
    assert focus.resolve_purpose("42") == Purpose("card", "42", "#42 Tune the LR [bold]schedule")
    assert focus.resolve_purpose("#42").kind == "card"
    assert focus.resolve_purpose("paper:7").text == "paper 7: Attention Is All You Need"
    assert focus.resolve_purpose("read 3 papers") == Purpose("text", None, "read 3 papers")
    assert focus.resolve_purpose("  ") == Purpose()
    with pytest.raises(FocusError, match="no card 9"):
        focus.resolve_purpose("9")
    with pytest.raises(FocusError, match="no paper 8"):
        focus.resolve_purpose("paper:8")


def test_notes_and_retros(cfg: Config) -> None:
    clock = ManualClock(at(2026, 11, 20, 17))  # a Friday
    focus = service(cfg, clock)
    day = focus.today()
    focus.set_note(day, "ship it")
    assert focus.note(day) == "ship it"
    assert focus.week_of() == "2026-W47"
    assert focus.retro_due()
    focus.set_retro("2026-W47", "mornings", "meetings", "no meetings before 11")
    assert not focus.retro_due()
    retro = focus.retro("2026-W47")
    assert retro is not None and retro.change == "no meetings before 11"
    thursday = ManualClock(at(2026, 11, 26, 9))
    assert not service(cfg, thursday).retro_due()


def test_status_json_shape(cfg: Config) -> None:
    clock = ManualClock(at(2026, 11, 18, 9))
    focus = service(cfg, clock)
    assert focus.status()["state"] == "idle"
    focus.start_session("pomodoro", "inbox")
    clock.advance(5 * M)
    focus.interrupt()
    status = focus.status()
    assert status["state"] == "running"
    assert status["today"] == {"day": "2026-11-18", "focus_seconds": 300.0,
                               "plan_seconds": 4 * H}
    session = status["session"]
    assert session["remaining"] == "20:00" and session["remaining_seconds"] == 1200.0
    assert session["ends"] == at(2026, 11, 18, 9, 25)
    assert session["interruptions"] == 1 and session["for"] == {"kind": "text", "ref": None}


# --------------------------------------------------------------------------- guarding the block


class Sink:
    def __init__(self) -> None:
        self.got: list[tuple[str, str]] = []

    def __call__(self, channel: str, alert: Alert) -> None:
        self.got.append((channel, alert.title))

    def titles(self, channel: str = "toast") -> list[str]:
        return [title for ch, title in self.got if ch == channel]


def hub_and_focus(cfg: Config, clock: ManualClock) -> tuple[AlertHub, FocusService, Sink]:
    store = Store(cfg.database)
    hub = AlertHub(cfg, store, clock=clock)
    focus = make_service(config=cfg, store=store, clock=clock, fleet=None, logs=None,
                         alerts=hub)
    sink = Sink()
    hub.notifier.add_sink(sink)
    return hub, focus, sink


def info(title: str, now: float) -> Alert:
    return Alert(time=now, rule="run finished", severity="info", title=title, message="done")


async def test_info_alerts_wait_for_the_end_of_a_deep_session(cfg: Config) -> None:
    clock = ManualClock(at(2026, 11, 18, 9))
    hub, focus, sink = hub_and_focus(cfg, clock)
    assert hub.notifier.hold == focus.holding
    focus.start_session("deep", "the paper")
    assert focus.holding()
    hub.emit([info("run finished: a", clock.time())])
    hub.emit([Alert(time=clock.time(), rule="run failed", severity="error",
                    title="run failed: b", message="Traceback")])
    await hub.drain(5)
    assert sink.titles() == ["run failed: b"]  # the failure came through at once
    assert [a.title for a in hub.notifier.held] == ["run finished: a"]
    clock.advance(H)
    focus.finish()
    await wait_for(lambda: "run finished: a" in sink.titles(), 5, "the held alert")
    assert hub.notifier.held == []


async def test_pausing_a_deep_session_and_light_work_do_not_hold(cfg: Config) -> None:
    clock = ManualClock(at(2026, 11, 18, 9))
    hub, focus, sink = hub_and_focus(cfg, clock)
    focus.start_session("deep")
    hub.emit([info("one", clock.time())])
    await hub.drain(5)
    assert sink.titles() == []
    focus.pause()
    await wait_for(lambda: sink.titles() == ["one"], 5, "release on pause")
    focus.abandon()
    focus.start_session(30, kind="light")
    assert not focus.holding()
    hub.emit([info("two", clock.time())])
    await hub.drain(5)
    assert sink.titles() == ["one", "two"]


async def test_the_end_notice_rings_once_and_is_not_held(cfg: Config) -> None:
    clock = ManualClock(at(2026, 11, 18, 9))
    hub, focus, sink = hub_and_focus(cfg, clock)
    other_hub, other, other_sink = hub_and_focus(cfg, clock)  # a second TUI
    focus.start_session("deep", "#42 by text")
    focus.interrupt()
    hub.emit([info("run finished: a", clock.time())])
    await hub.drain(5)
    clock.advance(4 * H)  # the time is up
    notices = focus.poll() + other.poll()
    assert [n.title for n in notices] == ["Focus: deep done"]  # one TUI sends it
    assert "4h00m of deep work for #42 by text is over. 1 interruption." in notices[0].message
    await hub.drain(5)
    await other_hub.drain(5)
    got = sink.titles() + other_sink.titles()
    assert got.count("Focus: deep done") == 1
    assert sink.titles() == ["run finished: a", "Focus: deep done"]  # held first, then it
    bells = [t for ch, t in sink.got + other_sink.got if ch in ("bell", "desktop")]
    assert bells.count("Focus: deep done") == 2  # the bell and the desktop notification
    stored = hub.log.recent(10) if hub.log else []
    assert [a.rule for a in stored].count("focus") == 1
    cfg.notify.webhooks = [WebhookConfig("phone", "ntfy", "ntfy-url")]
    assert Notifier(cfg.notify).channels_for(notices[0]) == [
        "toast", "bell", "desktop", "notify_send", "phone"]  # and the webhooks too
    assert focus.poll() == [] and other.poll() == []


async def test_a_session_ended_in_another_process_releases_held_alerts(cfg: Config) -> None:
    clock = ManualClock(at(2026, 11, 18, 9))
    hub, focus, sink = hub_and_focus(cfg, clock)
    focus.start_session("deep")
    hub.emit([info("held", clock.time())])
    await hub.drain(5)
    assert sink.titles() == []
    cli = FocusService(cfg, Store(cfg.database), clock)  # the CLI: `nomadlab focus stop`
    cli.finish()
    await focus.start()  # the app's tick notices the store changed
    try:
        await wait_for(lambda: sink.titles() == ["held"], 5, "release after the CLI stop")
    finally:
        await focus.stop()


async def test_no_notice_for_a_session_that_ended_long_ago(cfg: Config) -> None:
    clock = ManualClock(at(2026, 11, 18, 9))
    cli = FocusService(cfg, Store(cfg.database), clock)
    cli.start_session("pomodoro")
    clock.advance(3 * H)  # nobody had a TUI open
    _hub, focus, sink = hub_and_focus(cfg, clock)
    assert focus.poll() == []
    await asyncio.sleep(0)
    assert sink.titles() == []
