"""The focus, today and week screens and the focus pane, driven by keys; snapshots.

The app is built over a fixed fleet (ui_data) and a seeded week of focus data
(focus_seed) with a ManualClock at Wednesday 2026-11-18 11:06:40 UTC.
"""

from __future__ import annotations

from pathlib import Path

import focus_seed
import pytest
from focus_seed import M
from textual.widgets import DataTable, Digits, Input, Static

from nomadlab.core.focus import FocusService
from nomadlab.ui.confirm import ConfirmScreen
from nomadlab.ui.focus.dialogs import FormDialog
from nomadlab.ui.focus.pane import FocusPane
from nomadlab.ui.focus.screen import FocusScreen
from nomadlab.ui.focus.today import Timeline, TodayScreen
from nomadlab.ui.focus.week import WeekScreen
from nomadlab.ui.help import HelpScreen
from nomadlab.ui.statusbar import StatusBar


def focus_of(app) -> FocusService:  # type: ignore[no-untyped-def]
    service: FocusService = app.services.focus
    return service


def plain(screen, selector: str) -> str:  # type: ignore[no-untyped-def]
    widget = screen.query_one(selector, Static)
    return str(widget.render())


async def fill(pilot, app, *values: str | None) -> None:  # type: ignore[no-untyped-def]
    """Type into the open form (None keeps a field) and submit it."""
    dialog = app.screen
    assert isinstance(dialog, FormDialog)
    for index, value in enumerate(values):
        if value is not None:
            dialog.query_one(f"#field-{index}", Input).value = value
    dialog.query_one("#field-0", Input).focus()
    await pilot.press("enter")
    await pilot.pause()


async def test_start_pause_interrupt_extend_finish_and_abandon_with_keys(tmp_path: Path) -> None:
    app, clock = focus_seed.build(tmp_path, seeded=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, FocusScreen)
        assert screen.query_one(Digits).value == "1:30:00"  # the highlighted preset
        await pilot.press("down", "s")  # deep
        dialog = app.screen
        assert isinstance(dialog, FormDialog)
        assert dialog.values() == ["", "deep"]
        assert dialog.focused is dialog.query_one("#field-0", Input)
        await pilot.press(*"write the intro", "enter")
        await pilot.pause()
        service = focus_of(app)
        session = service.current()
        assert session is not None
        assert (session.preset, session.purpose) == ("deep", "write the intro")
        assert screen.query_one(Digits).value == "4:00:00"
        assert "for write the intro" in plain(screen, "#focus-purpose")
        assert "informational alerts held" in plain(screen, "#focus-state")
        clock.advance(10 * M)
        await pilot.press("p")
        assert service.current().state == "paused"  # type: ignore[union-attr]
        clock.advance(5 * M)
        screen.refresh_view()
        assert screen.query_one(Digits).value == "3:50:00"
        await pilot.press("p")
        await pilot.press("i")  # logged at once; the note is optional
        assert len(service.current().interruptions) == 1  # type: ignore[union-attr]
        assert isinstance(app.screen, FormDialog)
        await pilot.press(*"door", "enter")
        await pilot.pause()
        assert service.current().interruptions[0].note == "door"  # type: ignore[union-attr]
        assert "interrupted: door" in plain(screen, "#focus-log")
        await pilot.press("e")
        assert service.current().extended == 15 * M  # type: ignore[union-attr]
        assert screen.query_one(Digits).value == "4:05:00"
        assert "1 interruption" in plain(screen, "#focus-meta")
        await pilot.press("f")
        assert service.current() is None
        assert service.session(session.id).state == "finished"  # type: ignore[union-attr]
        assert "No session running" in plain(screen, "#focus-state")
        await pilot.press("s")
        await fill(pilot, app, "", "25")
        assert service.current().preset == "custom"  # type: ignore[union-attr]
        await pilot.press("a")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await pilot.pause()
        assert service.current() is None
        assert service.session(2).state == "abandoned"  # type: ignore[union-attr]


async def test_a_second_start_names_the_running_session(tmp_path: Path) -> None:
    app, _clock = focus_seed.build(tmp_path)  # the seeded week: a sprint is running
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("s")  # no form: it says what runs
        assert isinstance(app.screen, FocusScreen)
        messages = [n.message for n in app._notifications]
        assert any("already open: #7 sprint (running, 1:23:20 left" in m for m in messages)


async def test_a_restarted_app_continues_the_countdown(tmp_path: Path) -> None:
    app, clock = focus_seed.build(tmp_path, seeded=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("s")
        await fill(pilot, app, "the loss spike", "sprint")
        assert app.screen.query_one(Digits).value == "1:30:00"
    app.services.store.close()
    again, clock2 = focus_seed.build(tmp_path, seeded=False, now=clock.time() + 20 * M)
    async with again.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert again.screen.query_one(Digits).value == "1:10:00"
        assert "for the loss spike" in plain(again.screen, "#focus-purpose")
        clock2.advance(70 * M)  # the time runs out while this app is open
        again.screen.refresh_view()
        assert "No session running" in plain(again.screen, "#focus-state")
        assert "last: sprint completed" in plain(again.screen, "#focus-meta")


async def test_the_status_bar_of_every_screen_shows_the_countdown(tmp_path: Path) -> None:
    app, clock = focus_seed.build(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        for key in ("1", "2", "!", "5"):
            await pilot.press(key)
            await pilot.pause()
            bar = app.screen.query_one(StatusBar)
            bar.update_text()
            assert "sprint 1:23:20" in str(bar.render()), key
        clock.advance(20)
        bar.update_text()
        assert "sprint 1:23:00" in str(bar.render())


async def test_the_workspace_pane_shows_and_logs_interruptions(tmp_path: Path) -> None:
    app, _clock = focus_seed.build(tmp_path, mode="workspace")
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        pane = app.screen.query_one(FocusPane)
        pane.refresh_view()
        assert plain(pane, "#fp-timer") == "sprint 1:23:20 · 1 interruption"
        assert plain(pane, "#fp-purpose") == "for write the eval section"
        assert plain(pane, "#fp-today").startswith("today 4h06m / 6h30m ")
        assert plain(pane, "#fp-next") == "now 11:00-12:30 sprint · write the eval section"
        pane.focus()
        await pilot.press("i")
        pane.refresh_view()
        assert plain(pane, "#fp-timer") == "sprint 1:23:20 · 2 interruptions"
        await pilot.press("p")
        assert focus_of(app).current().state == "paused"  # type: ignore[union-attr]


async def test_today_add_move_resize_start_and_note(tmp_path: Path) -> None:
    app, clock = focus_seed.build(tmp_path, seeded=False)
    service = focus_of(app)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("t")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, TodayScreen)
        await pilot.press("a")
        assert app.screen.values()[0] == "12:00-13:30"  # type: ignore[attr-defined]
        await fill(pilot, app, "13:00-15:00", "deep", "paper:7")
        await pilot.press("a")
        await fill(pilot, app, "19:00+60m", "light", "check runs")
        day = service.today()
        assert [(b.label, b.kind, b.purpose) for b in service.blocks(day)] == [
            ("13:00-15:00", "deep", "paper 7: Attention Is All You Need"),
            ("19:00-20:00", "light", "check runs")]
        table = screen.query_one("#today-blocks", DataTable)
        table.move_cursor(row=0)
        await pilot.press("K", "K", "plus", "shift+down", "minus", "minus")
        first = service.blocks(day)[0]
        assert (first.label, first.minutes) == ("12:45-14:30", 105)
        assert screen.query_one(Timeline).selected == first.id
        await pilot.press("e")
        await fill(pilot, app, "12:00-13:00", "sprint", None)
        first = service.blocks(day)[0]
        assert (first.label, first.kind) == ("12:00-13:00", "sprint")
        clock.advance(60 * M)  # 12:06
        await pilot.press("s")
        session = service.current()
        assert session is not None
        assert (session.preset, session.kind, session.planned, session.purpose,
                session.block) == ("sprint", "sprint", 60 * M, first.purpose, first.id)
        screen.reload()
        assert table.get_row_at(0)[3].plain == "running"
        await pilot.press("n")
        await fill(pilot, app, "finish the eval")
        assert service.note(day) == "finish the eval"
        assert plain(screen, "#today-note") == "Note: finish the eval"
        table.move_cursor(row=1)
        await pilot.press("d")
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("y")
        await pilot.pause()
        assert len(service.blocks(day)) == 1
        await pilot.press("escape")
        assert isinstance(app.screen, FocusScreen)


async def test_the_retro_is_due_from_friday(tmp_path: Path) -> None:
    friday = focus_seed.WEDNESDAY + 2 * 24 * 3600 + 9 * 3600
    app, _clock = focus_seed.build(tmp_path, now=friday)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("t")
        await pilot.pause()
        assert "Retro due  w, then r" in plain(app.screen, "#today-yesterday")
        await pilot.press("w")
        await pilot.pause()
        assert "Not written yet." in plain(app.screen, "#week-retro")
        assert "(due from Friday)" in plain(app.screen, "#week-retro")
        await pilot.press("r")
        await fill(pilot, app, "a", "b", "c")
        assert "(due from Friday)" not in plain(app.screen, "#week-retro")


async def test_week_navigation_and_the_retro(tmp_path: Path) -> None:
    app, _clock = focus_seed.build(tmp_path)
    service = focus_of(app)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("w")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, WeekScreen)
        assert screen.week == "2026-W47"
        assert plain(screen, "#week-head").startswith("Week 2026-W47 (16-22 Nov 2026)  13h51m")
        assert "Last week you meant to change: no meetings before 11" in plain(
            screen, "#week-retro")
        await pilot.press("r")
        await fill(pilot, app, "long mornings", "Slack", "mute Slack until 11")
        retro = service.retro("2026-W47")
        assert retro is not None and retro.didnt == "Slack"
        assert "What will you change? mute Slack until 11" in plain(screen, "#week-retro")
        await pilot.press("left")
        assert screen.week == "2026-W46"
        assert "What will you change? no meetings before 11" in plain(screen, "#week-retro")
        await pilot.press("right", "right")
        assert screen.week == "2026-W48"
        assert "Last week you meant to change: mute Slack until 11" in plain(
            screen, "#week-retro")
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        rows = dict(app.screen.sections)["This screen"]
        assert ("r", "Retro") in rows
        await pilot.press("escape", "escape")
        assert isinstance(app.screen, FocusScreen)


# ---------------------------------------------------------------------- snapshots

SIZES = [(80, 24), (160, 48)]


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_focus(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    app, _clock = focus_seed.build(tmp_path)
    assert snap_compare(app, terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_today(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    app, _clock = focus_seed.build(tmp_path)
    assert snap_compare(app, press=["t"], terminal_size=size)


@pytest.mark.parametrize("size", SIZES)
def test_snapshot_week(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    app, _clock = focus_seed.build(tmp_path)
    assert snap_compare(app, press=["w"], terminal_size=size)


async def test_two_open_tuis_share_one_timer(tmp_path: Path) -> None:
    from textual._context import active_app

    one, clock = focus_seed.build(tmp_path, seeded=False)
    two, _clock = focus_seed.build(tmp_path, seeded=False)  # its own connection, same file
    two.services.clock = clock  # type: ignore[misc]
    focus_of(two).clock = clock
    async with one.run_test(size=(120, 40)) as first, two.run_test(size=(120, 40)) as second:
        await first.press("s")
        await fill(first, one, "the first", "deep")
        await second.press("s")
        assert isinstance(two.screen, FocusScreen)  # refused: no form
        messages = [n.message for n in two._notifications]
        assert any("already open: #1 deep" in m for m in messages)
        clock.advance(60)
        two.screen.refresh_view()  # type: ignore[attr-defined]
        assert two.screen.query_one(Digits).value == "3:59:00"
        await second.press("p")  # the second TUI pauses the first one's timer
        token = active_app.set(one)  # both run in this one test: speak to the first
        try:
            one.screen.refresh_view()  # type: ignore[attr-defined]
            assert plain(one.screen, "#focus-state") == "DEEP WORK · paused"
            assert one.screen.query_one(Digits).value == "3:59:00"
        finally:
            active_app.reset(token)


async def test_the_start_form_takes_what_is_typed_at_once_as_its_purpose(
        tmp_path: Path) -> None:
    """Issue 9 item 7: the cursor starts in the first field, tab goes on to the second
    and back; a card number typed at once is what the session is for, never minutes."""
    app, _clock = focus_seed.build(tmp_path, seeded=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("s")  # the highlighted preset: sprint
        dialog = app.screen
        assert isinstance(dialog, FormDialog)
        first, second = dialog.query_one("#field-0", Input), dialog.query_one("#field-1", Input)
        assert dialog.focused is first
        await pilot.press("tab")
        assert dialog.focused is second
        await pilot.press("tab")
        assert dialog.focused is first
        await pilot.press("9", "enter")  # card 9, "Distill"
        await pilot.pause()
        session = focus_of(app).current()
        assert session is not None
        assert (session.preset, session.purpose) == ("sprint", "#9 Distill")


async def test_an_abandoned_session_is_not_counted_today(tmp_path: Path) -> None:
    app, clock = focus_seed.build(tmp_path, seeded=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        await pilot.press("s")
        await fill(pilot, app, "the intro", "sprint")
        clock.advance(10 * M)
        await pilot.press("a", "y")
        await pilot.pause()
        await pilot.press("s")
        await fill(pilot, app, "the outro", "sprint")
        clock.advance(10 * M)
        await pilot.press("f")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, FocusScreen)
        screen.refresh_view()
        assert "1 session · " in plain(screen, "#focus-today")
