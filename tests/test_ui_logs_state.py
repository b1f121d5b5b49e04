"""The log view's border tells its true state: following or paused, lines that arrived
while paused, the filter and the search; a log opens at its end when it follows it;
an alert's `l` opens its log paused on the line that fired."""

from __future__ import annotations

from pathlib import Path

from conftest import wait_for
from rich.text import Text
from test_ui_logs import config_with_logs

from nomadlab.cli.tui import build_app
from nomadlab.ui.alerts.screen import AlertsScreen
from nomadlab.ui.logs.screen import LogsScreen


def border(screen: LogsScreen, index: int = 0) -> str:
    """The bottom border's words, as drawn (Textual keeps it as markup)."""
    return Text.from_markup(str(screen.panel(index).border_subtitle or "")).plain


def visible(view) -> list[str]:  # type: ignore[no-untyped-def]
    """Texts of the lines on screen (rows above any horizontal scrollbar)."""
    top = int(view.scroll_y)
    rows = list(view.rows)[top: top + view.scrollable_content_region.height]
    return [view.buffer[view.buffer.index_of(seq)].text for seq, _ in rows]


async def test_border_follows_the_view_state(tmp_path: Path) -> None:
    log = tmp_path / "run.log"
    log.write_text("".join(f"step {i}\n" for i in range(100)) + "ERROR broke\n")
    app = build_app(config_with_logs(tmp_path, log))
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("2")
        screen = app.screen
        assert isinstance(screen, LogsScreen)
        view = screen.view
        await wait_for(lambda: len(view.rows) >= 101, what="the lines")
        await pilot.pause()
        assert border(screen).startswith("following")
        assert visible(view)[-1] == "ERROR broke"
        await pilot.press("up")
        await pilot.pause()
        assert border(screen).startswith("paused")
        with log.open("a") as f:
            f.write("late 1\nlate 2\nlate 3\n")
        await wait_for(lambda: "3 new (End to follow)" in border(screen),
                       what="the count of new lines in the border")
        await pilot.press("end")
        await pilot.pause()
        assert border(screen).startswith("following")
        assert visible(view)[-1] == "late 3"
        # A search hit pauses on it, and the border says both.
        await pilot.press("slash", *"step 5", "enter")
        await pilot.pause()
        assert border(screen).startswith("paused") and "search step 5" in border(screen)
        await pilot.press("escape")
        await pilot.pause()
        # A filter shows in the border with its count.
        await pilot.press("ampersand", *"late", "enter")
        await pilot.pause()
        assert "filter late (3 lines)" in border(screen)
        # Scrolling with the mouse wheel pauses too.
        await pilot.press("escape", "end")
        await pilot.pause()
        assert border(screen).startswith("following")
        view.scroll_up(animate=False, immediate=True)  # what a mouse wheel step does
        await pilot.pause()
        assert not view.follow and border(screen).startswith("paused")


async def test_open_a_log_with_o_starts_at_its_end(tmp_path: Path) -> None:
    first = tmp_path / "a.log"
    first.write_text("alpha\n")
    other = tmp_path / "long.log"
    other.write_text("".join(f"line {i}\n" for i in range(200)) + "LAST " + "w" * 400 + "\n")
    app = build_app(config_with_logs(tmp_path, first))
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("2", "o")
        await pilot.pause()
        await pilot.press(*f"local:{other}", "enter")
        screen = app.screen
        assert isinstance(screen, LogsScreen)
        view = screen.view
        await wait_for(lambda: len(view.rows) == 201, what="the opened log")
        await pilot.pause()
        await pilot.pause()
        assert view.follow and border(screen).startswith("following")
        # The last line is on screen, above the horizontal scrollbar its width brings.
        assert view.scrollbar_size_horizontal > 0
        assert visible(view)[-1].startswith("LAST ")
        assert view.scroll_y == view.max_scroll_y


async def test_l_on_an_alert_opens_the_log_paused_on_its_line(tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    log.write_text("step 1\n")
    app = build_app(config_with_logs(tmp_path, log))
    async with app.run_test(size=(120, 30)) as pilot:
        hub = app.services.alerts
        assert hub is not None and hub.log is not None
        await pilot.press("2")
        view = app.screen.view  # type: ignore[attr-defined]
        await wait_for(lambda: len(view.rows) >= 1, what="the log")
        with log.open("a") as f:
            f.write("Traceback (most recent call last):\nRuntimeError: CUDA out of memory\n")
            f.write("".join(f"after {i}\n" for i in range(300)))
        await wait_for(lambda: hub.log.count_unacknowledged() >= 1, what="the alert")
        await wait_for(lambda: len(view.rows) >= 303, what="the lines after it")
        await pilot.press("0", "exclamation_mark")
        await pilot.pause()
        assert isinstance(app.screen, AlertsScreen)
        await pilot.press("l")
        await wait_for(lambda: isinstance(app.screen, LogsScreen)
                       and app.screen.view.cursor_seq is not None, what="the log, paused")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, LogsScreen)
        view = screen.view
        line = view.current_line()
        assert line is not None and line.text.startswith("Traceback")
        assert not view.follow and border(screen).startswith("paused")
        assert line.text in visible(view)
