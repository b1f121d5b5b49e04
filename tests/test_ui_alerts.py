"""The alerts screen and failed cards, as a user sees them (issue 9, item 9).

The app is the board tests' one (tests/test_board_data.py: ui_data's fleet, a seeded
board, the log "train-7b" with fixed lines, a ManualClock). Log lines reach the alert
hub the way a tail hands them over: appended to the log's buffer, then told to the hub.
"""

from __future__ import annotations

from pathlib import Path

import test_board_data as data
from conftest import wait_for
from textual.widgets import Static

from nomadlab.core.logs import LogLine
from nomadlab.ui.alerts.screen import AlertsScreen
from nomadlab.ui.board.screen import BoardScreen

LORA = 6  # the seeded card whose run logs to "train-7b" (tests/test_board_ui.py)
TRACEBACK = [
    "Traceback (most recent call last):",
    '  File "train.py", line 88, in <module>',
    "    main()",
    '  File "train.py", line 61, in main',
    "    loss = model(batch).loss",
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
]


def told(app, texts: list[str]) -> list[LogLine]:  # type: ignore[no-untyped-def]
    """New lines of train-7b, as its tail delivers them: buffer first, then listeners."""
    tail = app.services.logs.tails["train-7b"]
    lines = tail.buffer.append(texts, app.services.clock.time())
    app.services.alerts.log_lines("train-7b", lines)
    return lines


def detail(app) -> str:  # type: ignore[no-untyped-def]
    screen = app.screen
    assert isinstance(screen, AlertsScreen)
    return str(screen.query_one("#alert-detail", Static).render())


async def open_alerts(pilot) -> None:  # type: ignore[no-untyped-def]
    await pilot.press("exclamation_mark")
    await pilot.pause()
    assert isinstance(pilot.app.screen, AlertsScreen)


async def test_the_detail_shows_the_end_of_the_traceback(tmp_path: Path) -> None:
    app, _clock, _ids = data.build(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        told(app, ["epoch 3 step 4300", *TRACEBACK])
        await open_alerts(pilot)
        shown = detail(app)
        assert "Traceback (most recent call last):" in shown
        assert "loss = model(batch).loss" in shown
        assert "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB" in shown


async def test_a_traceback_that_arrives_after_its_first_line_is_shown_too(
        tmp_path: Path) -> None:
    app, _clock, _ids = data.build(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        told(app, ["epoch 3 step 4300", TRACEBACK[0]])  # the alert fires here
        told(app, TRACEBACK[1:])  # the rest in the next read
        await open_alerts(pilot)
        shown = detail(app)
        lines = shown.splitlines()
        fired = lines.index("Traceback (most recent call last):")  # the line that fired
        assert lines[-1].strip().startswith("torch.OutOfMemoryError: CUDA out of memory")
        assert fired < len(lines) - 1


async def test_acknowledged_alerts_are_not_called_no_alerts(tmp_path: Path) -> None:
    app, _clock, _ids = data.build(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_alerts(pilot)
        assert "No alerts yet" in detail(app)
        told(app, TRACEBACK)
        await pilot.pause()
        await pilot.press("a")  # acknowledge it
        await pilot.press("u")  # only new ones
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, AlertsScreen) and screen.alerts == []
        shown = detail(app)
        assert "No alerts yet" not in shown
        assert "every alert is acknowledged" in shown and "u shows them all" in shown
        await pilot.press("u")
        await pilot.pause()
        assert "torch.OutOfMemoryError" in detail(app)


async def test_a_failed_card_does_not_look_like_a_running_one(tmp_path: Path) -> None:
    app, _clock, _ids = data.build(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("3")
        await pilot.pause()
        board = app.screen
        assert isinstance(board, BoardScreen)

        def prompt_lines() -> list[str]:
            for column in board.columns:
                for index, card in enumerate(column.list.cards):
                    if card.id == LORA:
                        prompt = column.list.get_option_at_index(index).prompt
                        return str(prompt.plain).splitlines()
            raise AssertionError("the card is not shown")

        running = prompt_lines()
        assert any(line.startswith("▶ 92% lambda-h100") for line in running)
        assert "✗" not in "".join(running)

        told(app, TRACEBACK)  # the run fails: the hub marks the card failed
        await wait_for(lambda: "✗" in "".join(prompt_lines()), timeout=5,
                       what="the failed card on screen")
        failed = prompt_lines()
        assert failed[0].startswith(f"#{LORA} ✗ ")  # marked on its first line
        assert failed[1].startswith("✗ failed")  # the failure right under the title
        assert not any(line.startswith("▶") for line in failed)  # no "running" mark
        assert any(line.startswith("■ 92% lambda-h100") for line in failed)
