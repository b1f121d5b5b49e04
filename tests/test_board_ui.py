"""The board screen and pane, driven by keys as a user would (fixed data, ManualClock)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import test_board_data as data
from conftest import wait_for
from textual.widgets import Input, TextArea

from nomadlab.core.board import BoardService
from nomadlab.core.logs import LogLine
from nomadlab.ui.board.detail import CardDetail
from nomadlab.ui.board.dialogs import BoardPicker, CardForm
from nomadlab.ui.board.pane import BoardPane
from nomadlab.ui.board.screen import BoardScreen
from nomadlab.ui.confirm import ConfirmScreen
from nomadlab.ui.workspace import WorkspaceScreen

# Ids of the seeded cards (tests/test_board_data.py adds them in this order).
SMOOTH, CURRICULUM, HOSTILE, DEDUP, TOK, LORA, FULL, WARMUP, DISTILL = range(1, 10)
MMLU, HUMANEVAL, SHIP, OLD, OLDER, VISION = range(10, 16)


def board_of(app) -> BoardScreen:  # type: ignore[no-untyped-def]
    screen = app.screen
    assert isinstance(screen, BoardScreen), screen
    return screen


def service(app) -> BoardService:  # type: ignore[no-untyped-def]
    svc = app.services.board
    assert isinstance(svc, BoardService)
    return svc


def at(app) -> tuple[str, int | None]:  # type: ignore[no-untyped-def]
    screen = board_of(app)
    card = screen.selected()
    return screen.column_names[screen.col_index], card.id if card else None


def ids(app, column: str) -> list[int]:  # type: ignore[no-untyped-def]
    screen = board_of(app)
    return [c.id for c in screen.columns[screen.column_names.index(column)].list.cards]


def prompt(app, card_id: int) -> str:  # type: ignore[no-untyped-def]
    for column in board_of(app).columns:
        for index, card in enumerate(column.list.cards):
            if card.id == card_id:
                return str(column.list.get_option_at_index(index).prompt.plain)
    raise AssertionError(f"card #{card_id} is not shown")


async def open_board(pilot) -> None:  # type: ignore[no-untyped-def]
    await pilot.press("3")
    await pilot.pause()
    await pilot.pause()


# --------------------------------------------------------------------------- navigation


async def test_navigation_with_arrows_and_hjkl(tmp_path: Path) -> None:
    app, _clock, _ids = data.build(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await open_board(pilot)
        assert board_of(app).column_names == ["Hypothesis", "Data Prep", "Training",
                                              "Evaluation", "Deployment"]
        assert at(app) == ("Hypothesis", SMOOTH)
        await pilot.press("j")
        assert at(app) == ("Hypothesis", CURRICULUM)
        await pilot.press("j", "j")
        assert at(app) == ("Hypothesis", HOSTILE)  # stays on the last card
        await pilot.press("k")
        assert at(app) == ("Hypothesis", CURRICULUM)
        await pilot.press("l")  # the same row in the next column
        assert at(app) == ("Data Prep", TOK)
        await pilot.press("right")
        assert at(app) == ("Training", FULL)
        await pilot.press("down")
        assert at(app) == ("Training", WARMUP)
        await pilot.press("right", "right", "right")  # past the last column: stays
        assert at(app) == ("Deployment", SHIP)
        await pilot.press("left", "h")
        assert at(app) == ("Training", LORA)
        await pilot.press("up")
        assert at(app) == ("Training", LORA)


async def test_narrow_terminal_shows_three_columns_and_follows_the_cursor(
        tmp_path: Path) -> None:
    app, _clock, _ids = data.build(tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_board(pilot)
        screen = board_of(app)
        shown = [c.column for c in screen.columns if c.display]
        assert shown == ["Hypothesis", "Data Prep", "Training"]
        await pilot.press("l", "l", "l")
        await pilot.pause()
        shown = [c.column for c in screen.columns if c.display]
        assert shown == ["Data Prep", "Training", "Evaluation"]
        assert at(app) == ("Evaluation", MMLU)
        assert "◀ 1" in screen.query_one("#board-bar").render().plain  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- moves


async def test_move_between_columns_with_shift_keys(tmp_path: Path) -> None:
    app, _clock, _ids = data.build(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await open_board(pilot)
        await pilot.press("L")
        assert at(app) == ("Data Prep", SMOOTH)  # the cursor follows the card
        assert ids(app, "Data Prep") == [DEDUP, TOK, SMOOTH]  # at the bottom
        await pilot.press("shift+right")
        assert at(app) == ("Training", SMOOTH)
        assert service(app).card(SMOOTH).column == "Training"
        assert "5/3 over WIP" in board_of(app).columns[2].header.render().plain  # type: ignore[attr-defined]
        await pilot.press("H", "H", "H")  # the first column is the edge
        assert at(app) == ("Hypothesis", SMOOTH)
        moves = [(m.from_col, m.to_col) for m in service(app).history(SMOOTH).moves]
        assert moves[1:] == [("Hypothesis", "Data Prep"), ("Data Prep", "Training"),
                             ("Training", "Data Prep"), ("Data Prep", "Hypothesis")]


async def test_reorder_within_a_column(tmp_path: Path) -> None:
    app, _clock, _ids = data.build(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await open_board(pilot)
        await pilot.press("J")
        assert ids(app, "Hypothesis") == [CURRICULUM, SMOOTH, HOSTILE]
        assert at(app) == ("Hypothesis", SMOOTH)
        await pilot.press("J", "J")
        assert ids(app, "Hypothesis") == [CURRICULUM, HOSTILE, SMOOTH]
        await pilot.press("K", "shift+up")
        assert ids(app, "Hypothesis") == [SMOOTH, CURRICULUM, HOSTILE]
        assert [c.id for c in service(app).cards() if c.column == "Hypothesis"] == \
            [SMOOTH, CURRICULUM, HOSTILE]


# --------------------------------------------------------------------------- edits


async def test_edit_with_the_form(tmp_path: Path) -> None:
    app, _clock, _ids = data.build(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await open_board(pilot)
        await pilot.press("l", "l")
        assert at(app) == ("Training", LORA)
        await pilot.press("e")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, CardForm)
        form.query_one("#f-title", Input).value = "LoRA r=32 on llama-7b"
        form.query_one("#f-tags", Input).value = "lora 7b r32"
        params = form.query_one("#f-params", TextArea)
        assert params.text == "lr = 2e-4\nrank = 16\nbatch = 64\nwarmup = 500"
        params.load_text("lr = 2e-4\nrank = 32\nbatch = 64")
        form.query_one("#f-metrics", TextArea).load_text("val_loss = 1.71")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, BoardScreen)
        card = service(app).card(LORA)
        assert card.title == "LoRA r=32 on llama-7b" and card.tags == ["lora", "7b", "r32"]
        assert card.params == {"lr": "2e-4", "rank": "32", "batch": "64"}
        assert card.metrics == {"val_loss": "1.71"}
        history = [(v.key, v.value) for v in service(app).history(LORA).values]
        assert history[-3:] == [("rank", "32"), ("warmup", None), ("val_loss", "1.71")]
        assert "LoRA r=32" in prompt(app, LORA) and "val_loss 1.71" in prompt(app, LORA)
        # A bad value keeps the form open with the reason.
        await pilot.press("e")
        await pilot.pause()
        app.screen.query_one("#f-params", TextArea).load_text("no equals sign")
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, CardForm)
        assert "KEY=VALUE" in str(app.screen.query_one("#f-error").render())
        await pilot.press("escape")
        assert isinstance(app.screen, BoardScreen)


async def test_new_card_lands_in_the_current_column(tmp_path: Path) -> None:
    app, _clock, _ids = data.build(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await open_board(pilot)
        await pilot.press("l", "n")
        await pilot.pause()
        assert isinstance(app.screen, CardForm)
        await pilot.press(*"Try RoPE scaling", "enter")
        await pilot.pause()
        new = next(c for c in service(app).cards() if c.title == "Try RoPE scaling")
        assert new.title == "Try RoPE scaling" and new.column == "Data Prep"
        assert at(app) == ("Data Prep", new.id)
        assert ids(app, "Data Prep")[-1] == new.id


async def test_undo_and_redo_moves_and_edits(tmp_path: Path) -> None:
    app, _clock, _ids = data.build(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await open_board(pilot)
        board = service(app)
        await pilot.press("L", "L")  # two moves
        await pilot.press("p")  # priority high -> medium
        assert board.card(SMOOTH).priority == 2 and board.card(SMOOTH).column == "Training"
        await pilot.press("u")
        assert board.card(SMOOTH).priority == 3
        await pilot.press("u")
        assert board.card(SMOOTH).column == "Data Prep"
        assert at(app) == ("Data Prep", SMOOTH)  # the cursor goes to what was undone
        await pilot.press("u")
        assert board.card(SMOOTH).column == "Hypothesis"
        await pilot.press("u")  # the seeded cards came from a script: nothing more
        assert board.card(SMOOTH).column == "Hypothesis"
        await pilot.press("ctrl+r")
        assert board.card(SMOOTH).column == "Data Prep"
        await pilot.press("ctrl+r", "ctrl+r")
        assert board.card(SMOOTH).column == "Training" and board.card(SMOOTH).priority == 2
        assert at(app) == ("Training", SMOOTH)


async def test_filter_by_text_and_tag(tmp_path: Path) -> None:
    app, _clock, _ids = data.build(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await open_board(pilot)
        await pilot.press("slash", *"#data")
        await pilot.pause()
        assert ids(app, "Hypothesis") == [CURRICULUM]
        assert ids(app, "Data Prep") == [DEDUP]
        assert ids(app, "Training") == []
        assert "(1 shown)" in board_of(app).columns[0].header.render().plain  # type: ignore[attr-defined]
        await pilot.press("enter")  # keep it, back to the board
        assert at(app) == ("Hypothesis", CURRICULUM)
        await pilot.press("slash", "ctrl+u", *"llama lr=2e-4", "enter")
        await pilot.pause()
        assert ids(app, "Training") == [LORA] and ids(app, "Hypothesis") == []
        await pilot.press("escape")
        await pilot.pause()
        assert ids(app, "Training") == [LORA, FULL, WARMUP, DISTILL]
        assert board_of(app).query_text == ""


async def test_delete_asks_archive_hides_and_both_undo(tmp_path: Path) -> None:
    app, _clock, _ids = data.build(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await open_board(pilot)
        await pilot.press("d")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert service(app).card(SMOOTH) is not None
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        assert service(app).card(SMOOTH) is None
        assert ids(app, "Hypothesis") == [CURRICULUM, HOSTILE]
        await pilot.press("u")
        assert ids(app, "Hypothesis") == [SMOOTH, CURRICULUM, HOSTILE]
        await pilot.press("a")
        assert ids(app, "Hypothesis") == [CURRICULUM, HOSTILE]
        assert service(app).card(SMOOTH).column == "Archive"
        await pilot.press("A")  # the archive column, newest first
        await pilot.pause()
        assert board_of(app).column_names[-1] == "Archive"
        assert ids(app, "Archive") == [SMOOTH, OLDER, OLD]
        assert at(app) == ("Archive", SMOOTH)
        await pilot.press("a")  # restore
        assert service(app).card(SMOOTH).column == "Hypothesis"
        assert at(app) == ("Hypothesis", SMOOTH)
        await pilot.press("A")
        await pilot.pause()
        assert "Archive" not in board_of(app).column_names


async def test_open_card_detail_and_copy_markdown(tmp_path: Path) -> None:
    app, _clock, _ids = data.build(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await open_board(pilot)
        await pilot.press("l", "l", "enter")
        await pilot.pause()
        assert isinstance(app.screen, CardDetail)
        text = data.screen_text(app).replace(" ", "")
        for part in ("Hyperparameters", "Attempts", "lr3e-4→2e-4", "Timepercolumn",
                     "lambda-h100", "train-7b", "▶92%", "epoch3step4200/10000"):
            assert part in text, part
        await pilot.press("c")
        assert app.clipboard.startswith("## #6 LoRA r=16 on llama-7b")
        assert "| lr | 2e-4 |" in app.clipboard
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, CardForm)
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, BoardScreen)
        await pilot.press("c")
        assert app.clipboard.startswith("## #6 ")


async def test_switch_boards(tmp_path: Path) -> None:
    app, _clock, _ids = data.build(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await open_board(pilot)
        await pilot.press("b")
        await pilot.pause()
        assert isinstance(app.screen, BoardPicker)
        await pilot.press("down", "enter")
        await pilot.pause()
        await pilot.pause()
        assert board_of(app).board == "vision"
        assert board_of(app).column_names == ["Ideas", "Running", "Done"]
        assert at(app) == ("Ideas", VISION)
        assert app.services.store.get_state("board.current") == "vision"


# --------------------------------------------------------------------------- what cards show


async def test_cards_show_their_runs_live(tmp_path: Path) -> None:
    app, clock, _ids = data.build(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await open_board(pilot)
        lora = prompt(app, LORA)
        assert "▶ 92% lambda-h100 GPU0,1,2" in lora  # its own processes' GPUs
        assert "› epoch 3 step 4200/10000" in lora  # the last line (cut to the column)
        assert board_of(app).render_card(service(app).card(LORA), 200).plain.endswith(
            "epoch 3 step 4200/10000 loss=1.734 lr=2.9e-04 ok [red]x[/]")
        full = prompt(app, FULL)
        assert "■ 91% host runpod-h200" in full  # the host's mean; failed: not "running"
        assert "✗ failed: CUDA out of memor" in full
        assert "15h25m" in prompt(app, WARMUP)  # time in Training
        clock.advance(3600)
        app.services.logs.tails["train-7b"].buffer.append(["epoch 4 step 4300"], clock.time())
        await wait_for(lambda: "16h25m" in prompt(app, WARMUP), timeout=5, what="a tick")
        assert "› epoch 4 step 4300" in prompt(app, LORA)


async def test_markup_and_escapes_in_card_text_show_literally(tmp_path: Path) -> None:
    app, _clock, _ids = data.build(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await open_board(pilot)
        text = prompt(app, HOSTILE)
        assert "[bold]x[/]" in text and "[@click=app.quit]q[/]" in text
        assert "#[red]t[/]" in text
        assert "\x1b" not in text and "\x07" not in text
        # The last log line has SGR, OSC and markup: colour kept, OSC dropped, markup text.
        lora = board_of(app).render_card(service(app).card(LORA), 200)
        assert lora.plain.endswith("ok [red]x[/]")
        assert "\x1b" not in lora.plain and "pwned" not in lora.plain
        screen = data.screen_text(app)
        assert "[bold]x[/]" in screen and "[@click=app.quit]q[/]" in screen
        await pilot.press("j", "j", "enter")
        await pilot.pause()
        assert isinstance(app.screen, CardDetail)
        screen = data.screen_text(app)
        assert "[bold]x[/]" in screen and "[bold]notbold[/]" in screen.replace(" ", "")
        assert "\x1b" not in screen and "\x07" not in screen
        await pilot.press("c")
        assert "\x1b" not in app.clipboard and "[bold]x[/]" in app.clipboard
        assert app.is_running


async def test_edit_in_external_editor(tmp_path: Path) -> None:
    script = tmp_path / "editor.py"
    script.write_text("import sys\np = sys.argv[1]\n"
                      "open(p, 'a').write('\\nfrom the editor: **bold**\\n')\n")
    app, _clock, _ids = data.build(tmp_path)
    app.services.config.board.editor = f"{sys.executable} {script}"
    async with app.run_test(size=(160, 48)) as pilot:
        await open_board(pilot)
        await pilot.press("e")
        await pilot.pause()
        form = app.screen
        assert isinstance(form, CardForm)
        form.query_one("#f-notes", TextArea).focus()
        await pilot.press("ctrl+e")
        await pilot.pause()
        assert form.query_one("#f-notes", TextArea).text == "\nfrom the editor: **bold**"
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert service(app).card(SMOOTH).notes == "from the editor: **bold**"


# --------------------------------------------------------------------------- others' changes


async def test_a_cli_change_shows_within_a_second(tmp_path: Path) -> None:
    app, _clock, _ids = data.build(tmp_path)
    config = tmp_path / "config.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\nshow_local = false\n')
    env = {**os.environ, "NOMADLAB_CONFIG": str(config)}
    async with app.run_test(size=(160, 48)) as pilot:
        await open_board(pilot)
        result = subprocess.run([sys.executable, "-m", "nomadlab", "board", "move", "1",
                                 "Deployment"], env=env, capture_output=True, text=True,
                                timeout=60, check=False)
        assert result.returncode == 0, result.stderr
        await wait_for(lambda: SMOOTH in ids(app, "Deployment"), timeout=3,
                       what="the move made by the CLI")
        assert at(app) == ("Deployment", SMOOTH)  # the cursor was on it: it follows
        added = subprocess.run([sys.executable, "-m", "nomadlab", "board", "add", "from cli",
                                "--column", "Training"], env=env, capture_output=True,
                               text=True, timeout=60, check=True)
        new_id = int(added.stdout)
        await wait_for(lambda: new_id in ids(app, "Training"), timeout=3,
                       what="the card added by the CLI")


async def test_a_finished_alert_moves_the_card_on_screen_and_u_undoes_it(
        tmp_path: Path) -> None:
    app, clock, _ids = data.build(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await open_board(pilot)
        await pilot.press("l", "l")
        assert at(app) == ("Training", LORA)
        hub = app.services.alerts
        hub.log_lines("train-7b", [LogLine(3, "Training completed.", clock.time())])
        await wait_for(lambda: LORA in ids(app, "Evaluation"), timeout=3,
                       what="the automatic move on screen")
        assert at(app) == ("Evaluation", LORA)
        assert hub.log.recent(1)[0].extra["cards"] == [LORA]
        await pilot.press("u")
        assert at(app) == ("Training", LORA)
        assert service(app).card(LORA).column == "Training"


# --------------------------------------------------------------------------- the pane


async def test_pane_shows_counts_and_training_and_opens_the_board(tmp_path: Path) -> None:
    app, _clock, _ids = data.build(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, WorkspaceScreen)
        pane = app.screen.query_one(BoardPane)
        pane.refresh_pane()
        counts = pane.query_one("#bp-counts").render().plain  # type: ignore[attr-defined]
        assert "Hypothesis 3" in counts and "Training 4/3" in counts
        assert [c.id for c in pane.cards] == [LORA, FULL, WARMUP, DISTILL]
        pane.focus()
        await pilot.press("down", "enter")
        await pilot.pause()
        await pilot.pause()
        await pilot.pause()
        assert isinstance(app.screen, BoardScreen)
        assert at(app) == ("Training", FULL)


# --------------------------------------------------------------------------- snapshots


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_snapshot_board(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    app, _clock, _ids = data.build(tmp_path)

    async def run_before(pilot) -> None:  # type: ignore[no-untyped-def]
        await open_board(pilot)
        await pilot.press("l", "l")
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)
