"""Several writers on one board: another process hammering the CLI while this one (or
the TUI) edits, and a writer killed with SIGKILL mid-transaction. Real SQLite files,
real processes; every wait is bounded."""

from __future__ import annotations

import asyncio
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import test_board_data as data
from conftest import wait_for
from textual.widgets import TextArea

from nomadlab.core.board import BoardService
from nomadlab.core.clock import SYSTEM_CLOCK
from nomadlab.core.config import load_config
from nomadlab.core.store import Store
from nomadlab.ui.board.dialogs import CardForm
from nomadlab.ui.board.screen import BoardScreen


def config_file(tmp: Path) -> Path:
    path = tmp / "config.toml"
    path.write_text(f'data_dir = "{tmp / "data"}"\nshow_local = false\n')
    return path


def child(code: str, config: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "NOMADLAB_CONFIG": str(config)}
    return subprocess.Popen([sys.executable, "-c", code, str(config)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def read_line(proc: subprocess.Popen[str], timeout: float = 30.0) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        proc.kill()
        raise AssertionError(f"no output from the child within {timeout}s")
    return proc.stdout.readline().strip()


def finish(proc: subprocess.Popen[str], timeout: float = 60.0) -> None:
    try:
        _out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    assert proc.returncode == 0, err


HAMMER = """
import sys, time
from nomadlab.cli import main
card, rounds, pause = sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
print("started", flush=True)
for i in range(rounds):
    assert main(["board", "move", card, "Evaluation" if i % 2 == 0 else "Training"]) == 0
    assert main(["board", "param", card, f"child{i}={i}"]) == 0
    assert main(["board", "metric", card, f"step={i}"]) == 0
    time.sleep(pause)
print("done", flush=True)
"""


def hammer(config: Path, card: int, rounds: int, pause: float) -> subprocess.Popen[str]:
    env = {**os.environ, "NOMADLAB_CONFIG": str(config)}
    return subprocess.Popen([sys.executable, "-c", HAMMER, str(config), str(card), str(rounds),
                             str(pause)], env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


def test_two_processes_on_the_same_card_lose_no_update(tmp_path: Path) -> None:
    config = config_file(tmp_path)
    board = BoardService(load_config(str(config)), Store(tmp_path / "data" / "nomadlab.db"),
                         SYSTEM_CLOCK)
    card = board.add_card("shared", column="Training", origin="cli")
    rounds = 40
    proc = hammer(config, card, rounds, 0.0)
    assert read_line(proc) == "started"
    mine = 0
    while proc.poll() is None or mine < rounds:
        board.set_params(card, {f"parent{mine}": str(mine)})
        board.edit(card, {"notes": f"note {mine}"})
        mine += 1
        time.sleep(0.002)  # pacing only: lets the other process take the lock in turn
        if mine > 5000:
            break
    finish(proc)
    final = board.card(card)
    assert final is not None
    assert {f"child{i}" for i in range(rounds)} <= set(final.params)
    assert {f"parent{i}" for i in range(mine)} <= set(final.params)
    assert len(final.params) == rounds + mine
    assert final.metrics == {"step": str(rounds - 1)}
    assert final.notes == f"note {mine - 1}"
    moves = [m for m in board.history(card).moves if m.origin == "cli" and m.from_col]
    assert len(moves) == rounds
    assert final.column == ("Evaluation" if (rounds - 1) % 2 == 0 else "Training")
    counts = data.check_consistent(tmp_path / "data" / "nomadlab.db")
    assert counts["board_values"] == 2 * rounds + mine


async def test_the_tui_edits_while_another_process_moves_the_card(tmp_path: Path) -> None:
    app, _clock, _ids = data.build(tmp_path)
    config = config_file(tmp_path)
    lora = 6
    rounds = 30
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("3")
        await pilot.pause()
        await pilot.press("l", "l")
        screen = app.screen
        assert isinstance(screen, BoardScreen) and screen.cursor == lora
        proc = hammer(config, lora, rounds, 0.05)
        edits = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while (proc.poll() is None or edits < 3) and loop.time() < deadline:
            screen.focus_card(lora)
            await pilot.press("e")
            await pilot.pause()
            form = app.screen
            assert isinstance(form, CardForm) and form.card is not None
            assert form.card.id == lora
            form.query_one("#f-title").value = f"LoRA edit {edits}"  # type: ignore[attr-defined]
            params = form.query_one("#f-params", TextArea)
            params.load_text(params.text + f"\ntui{edits} = {edits}")
            await pilot.press("ctrl+s")
            await pilot.pause()
            assert isinstance(app.screen, BoardScreen)
            await pilot.press("p")
            edits += 1
        finish(proc)
        board = app.services.board
        assert isinstance(board, BoardService)
        card = board.card(lora)
        assert card is not None
        assert card.title == f"LoRA edit {edits - 1}"
        assert {f"tui{i}" for i in range(edits)} <= set(card.params)
        assert {f"child{i}" for i in range(rounds)} <= set(card.params)
        assert card.metrics == {"step": str(rounds - 1)}
        assert card.priority == [3, 2, 1, 0][edits % 4]
        cli_moves = [m for m in board.history(lora).moves if m.origin == "cli"
                     and m.time > 0 and m.from_col in ("Training", "Evaluation")
                     and m.to_col in ("Training", "Evaluation")]
        assert len(cli_moves) >= rounds - 1  # the first may have been a no-op
        final = "Evaluation" if (rounds - 1) % 2 == 0 else "Training"
        assert card.column == final

        def shown() -> bool:
            names = screen.column_names
            return lora in [c.id for c in screen.columns[names.index(final)].list.cards]

        await wait_for(shown, timeout=5, what="the TUI showing the final column")
        data.check_consistent(tmp_path / "data" / "nomadlab.db")


LONG_TRANSACTION = """
import sys, time
from nomadlab.core.board import BoardService
from nomadlab.core.clock import SYSTEM_CLOCK
from nomadlab.core.config import load_config
from nomadlab.core.store import Store
config = load_config(sys.argv[1])
store = Store(config.database)
store.db.execute("PRAGMA cache_size=20")  # spill dirty pages into the WAL early
board = BoardService(config, store, SYSTEM_CLOCK)
with store.transaction():
    for i in range(2000):
        board.set_params(1, {f"k{i % 20}": f"{i}" + "x" * 1000}, origin="cli")
        if i % 10 == 0:
            board.move(1, "Evaluation" if i % 20 == 0 else "Training", origin="cli")
        if i % 100 == 0:
            board.add_card(f"never committed {i}", origin="cli")
    print("ready", flush=True)
    time.sleep(120)
"""


def test_sigkill_in_the_middle_of_a_long_write_leaves_the_database_intact(
        tmp_path: Path) -> None:
    config = config_file(tmp_path)
    db = tmp_path / "data" / "nomadlab.db"
    board = BoardService(load_config(str(config)), Store(db), SYSTEM_CLOCK)
    card = board.add_card("victim", column="Training", params={"lr": "1"}, origin="cli")
    assert card == 1
    for i in range(20):
        board.add_card(f"card {i}", origin="cli")
    before = data.check_consistent(db)
    wal = db.with_name(db.name + "-wal")
    proc = child(LONG_TRANSACTION, config)
    assert read_line(proc, 60) == "ready"
    assert wal.stat().st_size > 1_000_000  # uncommitted pages really are in the WAL
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    # Nothing of the killed transaction is there; everything before it is.
    assert data.check_consistent(db) == before
    again = BoardService(load_config(str(config)), Store(db), SYSTEM_CLOCK)
    victim = again.card(card)
    assert victim is not None and victim.params == {"lr": "1"}
    assert victim.column == "Training"
    assert len(again.cards()) == 21
    new = again.add_card("after the crash", origin="cli")
    again.move(card, "Evaluation", origin="cli")
    assert again.card(new) is not None and again.card(card).column == "Evaluation"
    data.check_consistent(db)


RAPID_COMMITS = """
import sys
from nomadlab.core.board import BoardService
from nomadlab.core.clock import SYSTEM_CLOCK
from nomadlab.core.config import load_config
from nomadlab.core.store import Store
config = load_config(sys.argv[1])
board = BoardService(config, Store(config.database), SYSTEM_CLOCK)
i = 0
while True:
    board.move(1, "Evaluation" if i % 2 == 0 else "Training", origin="cli")
    board.edit(1, {"title": f"title {i}"}, params={f"k{i}": str(i)}, origin="tui")
    if i % 25 == 0:
        board.undo()
        board.redo()
    print(i, flush=True)
    i += 1
"""


def test_sigkill_between_and_during_many_small_writes(tmp_path: Path) -> None:
    config = config_file(tmp_path)
    db = tmp_path / "data" / "nomadlab.db"
    board = BoardService(load_config(str(config)), Store(db), SYSTEM_CLOCK)
    card = board.add_card("victim", column="Training", origin="cli")
    proc = child(RAPID_COMMITS, config)
    done = -1
    deadline = time.monotonic() + 60
    while done < 300 and time.monotonic() < deadline:
        done = int(read_line(proc))
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert done >= 300
    data.check_consistent(db)
    again = BoardService(load_config(str(config)), Store(db), SYSTEM_CLOCK)
    victim = again.card(card)
    assert victim is not None
    # Every write it reported is there (it may have gone on a little before the kill;
    # what it was writing then is there whole or not at all).
    assert {f"k{i}" for i in range(done + 1)} <= set(victim.params)
    last = int(victim.title.removeprefix("title "))
    assert last >= done
    assert set(victim.params) == {f"k{i}" for i in range(last + 1)}
