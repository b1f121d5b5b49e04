"""The workspace fleet pane's table (a Line API widget): keys and mouse as a DataTable's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ui_data

from nomadlab.ui.fleet.pane import FleetPane
from nomadlab.ui.fleet.screen import FleetScreen
from nomadlab.ui.fleet.table import FleetTable


def cursor_line(app: Any) -> str:
    """The pane's line under the cursor, as the user sees it (first word: the host)."""
    pane = app.screen.query_one(FleetPane)
    region = pane.content_region
    strips = app.screen._compositor.render_strips()
    return str(strips[region.y + pane.cursor_row - int(pane.scroll_y)].text[
        region.x:region.right]).strip()


async def test_keys_move_the_cursor(tmp_path: Path) -> None:
    app, _fleet, _clock = ui_data.build(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        pane = app.screen.query_one(FleetPane)
        pane.focus()
        keys = [str(k.value) for k in pane.rows]
        await pilot.press("down", "down")
        assert pane.cursor_row == 2 and cursor_line(app).startswith(keys[2])
        await pilot.press("end")
        assert pane.cursor_row == len(keys) - 1
        await pilot.press("up")
        assert pane.cursor_row == len(keys) - 2
        await pilot.press("home")
        assert pane.cursor_row == 0 and cursor_line(app).startswith(keys[0])
        await pilot.press("pagedown")
        assert pane.cursor_row == min(len(keys) - 1, pane.scrollable_content_region.height)
        await pilot.press("pageup")
        assert pane.cursor_row == 0


async def test_click_selects_a_row_and_a_second_click_opens_it(tmp_path: Path) -> None:
    app, _fleet, _clock = ui_data.build(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        pane = app.screen.query_one(FleetPane)
        keys = [str(k.value) for k in pane.rows]
        row = keys.index("runpod-h200")
        await pilot.click(pane, offset=(3, row))
        await pilot.pause()
        assert pane.cursor_row == row and cursor_line(app).startswith("runpod-h200")
        assert not isinstance(app.screen, FleetScreen)
        await pilot.click(pane, offset=(3, row))
        await pilot.pause()
        await pilot.pause()
        assert isinstance(app.screen, FleetScreen)
        assert app.screen.query_one(FleetTable).selected() == ("runpod-h200", None)
