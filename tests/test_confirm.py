"""The one yes/no dialog: the same keys everywhere, hostile text shown as text."""

from __future__ import annotations

import pytest
from rich.text import Text
from textual.app import App
from textual.widgets import Label, Static

from nomadlab.ui.confirm import ConfirmScreen


class Asker(App[None]):
    def __init__(self, dialog: ConfirmScreen) -> None:
        super().__init__()
        self.dialog = dialog
        self.answers: list[bool | None] = []

    def on_mount(self) -> None:
        self.push_screen(self.dialog, self.answers.append)


@pytest.mark.parametrize(("key", "answer"),
                         [("y", True), ("enter", True), ("n", False), ("escape", False)])
async def test_keys_answer_the_same_way_everywhere(key: str, answer: bool) -> None:
    app = Asker(ConfirmScreen("Delete card", Text("Delete card #1?")))
    async with app.run_test() as pilot:
        await pilot.pause()
        await pilot.press(key)
        await pilot.pause()
        assert app.answers == [answer]
        assert not isinstance(app.screen, ConfirmScreen)


@pytest.mark.parametrize(("button", "answer"), [("#yes", True), ("#no", False)])
async def test_buttons_answer_with_the_mouse(button: str, answer: bool) -> None:
    app = Asker(ConfirmScreen("Cancel job", "Cancel job 12?", yes="Cancel it"))
    async with app.run_test() as pilot:
        await pilot.pause()
        assert app.focused is None  # enter means yes, whatever is focused
        await pilot.click(button)
        await pilot.pause()
        assert app.answers == [answer]


async def test_text_from_hosts_is_shown_as_text() -> None:
    app = Asker(ConfirmScreen("Abandon [bold]x[/] \x1b[2J?", "from [@click=app.quit]q[/]\x07"))
    async with app.run_test() as pilot:
        await pilot.pause()
        shown = " ".join(str(w.render()) for w in app.screen.query(Label))
        shown += " ".join(str(w.render()) for w in app.screen.query(Static))
        assert "[bold]x[/]" in shown and "[@click=app.quit]q[/]" in shown
        assert "\x1b" not in shown and "\x07" not in shown
