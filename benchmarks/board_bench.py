"""The board with 5,000 cards (most archived): time to first paint and per-move latency.

What it measures, on a board of 5,000 cards of which 4,900 are archived and 100 are
open (20 per column, those in Training linked to a host, a log and a run command),
each with a few hyperparameter changes and moves in its history, in a real SQLite
file (WAL):

- first paint: from ``build_app`` (the database opened, the services made) to the
  first frame Textual hands to the terminal that shows the board's cards, the app
  started on the board screen (``initial_mode="board"``); the median of several
  launches in this process (Python and Textual already imported);
- open from the workspace: the app started on the workspace, key "3" pressed, to
  the first frame showing the board (the board screen is built on first use);
- per-move latency: H/L pressed on a Training card (moving it to the next column
  and back, alternately), from the key press to the next frame painted after the
  move, p50/p99/max over the moves; and, separately, what part of that is the write
  (``BoardService.step``: one BEGIN IMMEDIATE transaction) and the screen's reload
  (reading the open cards again and updating the columns);
- the archive view: key "A" to the frame showing the archive column (the newest 100
  archived cards).

"Frame painted" is ``App._display`` called with a frame (wrapped by this script):
Textual's headless driver (no terminal, no ANSI rendering) at 160x48, or ``--size
80x24``. Figures are for this machine; the header says which.

Run: ``python benchmarks/board_bench.py [--cards 5000] [--moves 200] [--launches 5]``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common

from nomadlab.core.board import BoardService
from nomadlab.core.clock import SYSTEM_CLOCK
from nomadlab.core.config import Config, load_config_text
from nomadlab.core.store import Store

OPEN_PER_COLUMN = 20


def make_config(data_dir: Path) -> Config:
    return load_config_text(f'data_dir = "{data_dir}"\nshow_local = false\n')


def seed(config: Config, cards: int) -> dict[str, Any]:
    """``cards`` cards: 100 open (20 per column), the rest archived, with history."""
    store = Store(config.database)
    board = BoardService(config, store, SYSTEM_CLOCK)
    columns = board.columns()
    started = time.perf_counter()
    open_cards = OPEN_PER_COLUMN * len(columns)
    with store.transaction():
        for i in range(cards):
            is_open = i >= cards - open_cards
            column = columns[(i % len(columns))] if is_open else columns[i % 3]
            links = {}
            if column == "Training":
                links = {"host": "gpu1", "log": f"gpu1:~/runs/exp{i}/train.log",
                         "command": f"python train.py --exp {i}"}
            card = board.add_card(f"Experiment {i}: LoRA rank {4 << (i % 5)} lr sweep",
                                  column=column, tags=["lora", f"batch{i % 7}"], links=links,
                                  params={"lr": "3e-4", "rank": str(4 << (i % 5)),
                                          "batch": "64"}, origin="cli")
            board.set_params(card, {"lr": "1e-4"}, origin="cli")
            board.set_metrics(card, {"val_loss": f"{1 + (i % 97) / 100:.3f}"}, origin="cli")
            if not is_open:
                board.move(card, "Evaluation", origin="cli")
                board.archive(card, origin="cli")
    seconds = time.perf_counter() - started
    counts = {table: store.query(f"SELECT count(*) AS n FROM {table}")[0]["n"]
              for table in ("board_cards", "board_values", "board_moves")}
    store.close()
    size = sum(p.stat().st_size for p in config.database.parent.glob("nomadlab.db*"))
    return {"seconds": seconds, "open": open_cards, "size_mb": size / 1e6, **counts}


class Painter:
    """Wraps App._display: counts frames and notes when each was handed over."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.frames = 0
        self.last = 0.0
        self.first_board: float | None = None
        original = app._display

        def display(screen: Any, renderable: Any) -> None:
            batching = app._batch_count
            original(screen, renderable)
            if renderable is None or batching:
                return
            self.frames += 1
            self.last = time.perf_counter()
            if self.first_board is None and self.board_shown():
                self.first_board = self.last

        app._display = display

    def board_shown(self) -> bool:
        """The board screen with its columns (and its cards, when it has any)."""
        from nomadlab.ui.board.screen import BoardScreen

        screen = self.app.screen
        if not isinstance(screen, BoardScreen) or not screen.columns:
            return False
        service = screen.service
        has_cards = service is not None and bool(service.counts(screen.board))
        return not has_cards or any(c.list.cards for c in screen.columns)

    async def next_frame(self, after: int, timeout: float = 5.0) -> float:
        deadline = time.perf_counter() + timeout
        while self.frames <= after:
            if time.perf_counter() > deadline:
                raise TimeoutError("no frame painted")
            await asyncio.sleep(0.0005)
        return self.last


async def run_app(config: Config, size: tuple[int, int], mode: str,
                  pilot_fn: Callable[[Any, Painter, float], Awaitable[None]]) -> None:
    from nomadlab.cli.tui import build_app

    started = time.perf_counter()
    app = build_app(config, start_fleet=False, initial_mode=mode)
    painter = Painter(app)

    async def auto_pilot(pilot: Any) -> None:
        try:
            await pilot_fn(pilot, painter, started)
        finally:
            app.exit()

    await app.run_async(headless=True, size=size, auto_pilot=auto_pilot)


async def first_paint(config: Config, size: tuple[int, int]) -> float:
    result: list[float] = []

    async def pilot_fn(pilot: Any, painter: Painter, started: float) -> None:
        deadline = time.perf_counter() + 30
        while painter.first_board is None and time.perf_counter() < deadline:
            await asyncio.sleep(0.001)
        assert painter.first_board is not None, "the board was never painted"
        result.append(painter.first_board - started)

    await run_app(config, size, "board", pilot_fn)
    return result[0]


async def interactive(config: Config, size: tuple[int, int], moves: int) -> dict[str, Any]:
    out: dict[str, Any] = {}

    async def pilot_fn(pilot: Any, painter: Painter, started: float) -> None:
        from nomadlab.ui.board.screen import BoardScreen

        await pilot.pause()
        before = painter.frames
        pressed = time.perf_counter()
        await pilot.press("3")
        deadline = time.perf_counter() + 30
        while painter.first_board is None and time.perf_counter() < deadline:
            await asyncio.sleep(0.0005)
        assert painter.first_board is not None and painter.frames > before
        out["open_ms"] = 1000 * (painter.first_board - pressed)
        screen = pilot.app.screen
        assert isinstance(screen, BoardScreen)
        await pilot.press("l", "l")  # Training
        await pilot.pause()
        service = screen.service
        assert service is not None
        latencies: list[float] = []
        writes: list[float] = []
        reloads: list[float] = []
        original_step = service.step
        original_reload = screen.reload

        def step(*args: Any, **kwargs: Any) -> Any:
            t = time.perf_counter()
            try:
                return original_step(*args, **kwargs)
            finally:
                writes.append(1000 * (time.perf_counter() - t))

        def reload() -> None:
            t = time.perf_counter()
            try:
                original_reload()
            finally:
                reloads.append(1000 * (time.perf_counter() - t))

        service.step = step  # type: ignore[method-assign]
        screen.reload = reload  # type: ignore[method-assign]
        for i in range(moves):
            await pilot.pause()
            before = painter.frames
            pressed = time.perf_counter()
            await pilot.press("L" if i % 2 == 0 else "H")
            painted = await painter.next_frame(before)
            latencies.append(1000 * (painted - pressed))
        card = screen.selected()
        out["moved_card_column"] = card.column if card is not None else None
        out["latency_ms"] = latencies
        out["write_ms"] = writes
        out["reload_ms"] = reloads
        await pilot.pause()
        before = painter.frames
        pressed = time.perf_counter()
        await pilot.press("A")
        deadline = time.perf_counter() + 10
        while not (screen.column_names and screen.column_names[-1] == "Archive"
                   and screen.columns[-1].list.cards) and time.perf_counter() < deadline:
            await asyncio.sleep(0.0005)
        painted = await painter.next_frame(before)
        out["archive_ms"] = 1000 * (painted - pressed)
        out["archive_shown"] = len(screen.columns[-1].list.cards)

    await run_app(config, size, "workspace", pilot_fn)
    return out


def fmt(values: list[float]) -> str:
    return (f"p50 {_common.percentile(values, 50):.1f} ms, "
            f"p99 {_common.percentile(values, 99):.1f} ms, max {max(values):.1f} ms "
            f"({len(values)} samples)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cards", type=int, default=5000)
    parser.add_argument("--moves", type=int, default=200)
    parser.add_argument("--launches", type=int, default=5)
    parser.add_argument("--size", default="160x48", help="terminal size, e.g. 80x24")
    args = parser.parse_args()
    width, height = (int(x) for x in args.size.lower().split("x"))
    size = (width, height)
    _common.header("board: 5,000 cards, first paint and per-move latency", sys.argv)
    with tempfile.TemporaryDirectory(prefix="nomadlab-board-bench-") as tmp:
        config = make_config(Path(tmp) / "data")
        seeded = seed(config, args.cards)
        print(f"seeded {seeded['board_cards']} cards ({seeded['open']} open, "
              f"{seeded['board_cards'] - seeded['open']} archived), "
              f"{seeded['board_values']} value changes, {seeded['board_moves']} moves "
              f"in {seeded['seconds']:.1f} s; database {seeded['size_mb']:.1f} MB")
        print(f"terminal {width}x{height}, Textual headless driver")
        empty = make_config(Path(tmp) / "empty")
        Store(empty.database).close()
        asyncio.run(first_paint(empty, size))  # warm: imports, CSS parsing caches
        baseline = [1000 * asyncio.run(first_paint(empty, size)) for _ in range(args.launches)]
        paints = [1000 * asyncio.run(first_paint(config, size)) for _ in range(args.launches)]
        print(f"first paint, empty board:        median {statistics.median(baseline):.0f} ms "
              f"(runs: {', '.join(f'{p:.0f}' for p in baseline)})")
        print(f"first paint, {args.cards} cards:       median {statistics.median(paints):.0f} ms "
              f"(runs: {', '.join(f'{p:.0f}' for p in paints)})")
        result = asyncio.run(interactive(config, size, args.moves))
        print(f"open from the workspace (key 3 -> board painted): {result['open_ms']:.0f} ms")
        print(f"move a card (H/L key -> next frame painted): {fmt(result['latency_ms'])}")
        print(f"  the write (BoardService.step, one transaction): {fmt(result['write_ms'])}")
        print(f"  the screen's reload (read + update columns):     {fmt(result['reload_ms'])}")
        print(f"archive view (A -> painted, newest {result['archive_shown']} shown): "
              f"{result['archive_ms']:.0f} ms")


if __name__ == "__main__":
    main()
