"""A fixed board for the board's UI tests and snapshots (no tests in here).

A dozen cards across the default columns (one over Training's WIP limit of 3), two
archived, one failed run, one with a title made of markup and escape sequences,
and a Training card linked to lambda-h100 (whose GPUs 0-5 run "python train.py
--config llama-7b.yaml --rank N" in tests/ui_data.py) and to a log whose buffer holds
a few lines. Everything happens on a ManualClock: same text every run.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any

import ui_data

from nomadlab.core.board import BoardService
from nomadlab.core.clock import ManualClock
from nomadlab.core.config import BoardConfig, Config, LogConfig
from nomadlab.core.store import Store
from nomadlab.remote.fleet import Fleet

START = ui_data.START
HOSTILE = ui_data.HOSTILE  # "[bold]x[/] \x1b]0;pwned\x07 [@click=app.quit]q[/]"
LOG_LINES = [
    "epoch 3 step 4100/10000 loss=1.772 lr=2.9e-04",
    "epoch 3 step 4200/10000 loss=1.734 lr=2.9e-04 \x1b[32mok\x1b[0m \x1b]0;pwned\x07[red]x[/]",
]


def config(tmp: Path) -> Config:
    cfg = ui_data.config(tmp)
    cfg.logs = [LogConfig("train-7b", "lambda-h100", "~/runs/7b/train.log")]
    cfg.board.boards = [
        BoardConfig("main", wip={"Training": 3}),
        BoardConfig("vision", ["Ideas", "Running", "Done"]),
    ]
    return cfg


def seed(cfg: Config, store: Store) -> dict[str, int]:
    """The cards, made over the three days before START; returns ids by short name."""
    clock = ManualClock(START - 30 * 3600)
    board = BoardService(cfg, store, clock)
    ids: dict[str, int] = {}

    def add(name: str, title: str, column: str, hours: float = 2.0, **kw: Any) -> int:
        card = board.add_card(title, origin="cli", **kw)
        clock.advance(600)
        if column != "Hypothesis":
            board.move(card, column, origin="cli")
        clock.advance(hours * 3600)
        ids[name] = card
        return card

    add("smooth", "Does label smoothing help the 7B SFT?", "Hypothesis", tags=["sft"],
        priority="H", hypothesis="Label smoothing 0.1 lowers **val loss** on the SFT mix.")
    add("curriculum", "Curriculum by sequence length", "Hypothesis", tags=["data"])
    add("hostile", HOSTILE, "Hypothesis", tags=["[red]t[/]"],
        hypothesis="[bold]not bold[/] \x1b[2J and `code`")
    add("dedup", "Dedup the code corpus with MinHash", "Data Prep", tags=["data"],
        priority="M")
    add("tok", "Tokenizer with a 64k vocabulary", "Data Prep")
    lora = add("lora", "LoRA r=16 on llama-7b", "Hypothesis", 1.0, tags=["lora", "7b"],
               priority="H",
               links={"host": "lambda-h100", "log": "train-7b",
                      "command": "python train.py --config llama-7b.yaml"},
               params={"lr": "3e-4", "rank": "16", "batch": "64"})
    board.move(lora, "Training", origin="cli")
    clock.advance(1800)
    board.move(lora, "Hypothesis", origin="cli")
    board.set_params(lora, {"lr": "2e-4", "warmup": "500"}, origin="cli")
    clock.advance(900)
    board.move(lora, "Training", origin="cli")
    full = add("full", "Full fine-tune 13B in bf16", "Training", 1.5, tags=["13b"],
               links={"host": "runpod-h200", "log": "runpod-h200:~/runs/13b/train.log"})
    board.mark_failed(full, "CUDA out of memory. Tried to allocate 2.00 GiB", origin="cli")
    add("warmup", "Sweep warmup 500 to 2000 steps", "Training", 1.0)
    add("distill", "Distill 7B into 1B", "Training", 0.5, tags=["distill"])
    add("mmlu", "MMLU on the r=8 checkpoint", "Evaluation", 3.0,
        metrics={"mmlu": "0.612", "val_loss": "1.83"})
    add("humaneval", "HumanEval pass@1 for the code SFT", "Evaluation", 1.0)
    add("ship", "Ship the r=8 adapter to staging", "Deployment", 2.0,
        metrics={"latency_ms": "41"})
    old = add("old", "Old baseline without packing", "Evaluation", 1.0)
    board.archive(old, origin="cli")
    gone = add("older", "GPT-2 small sanity run", "Deployment", 1.0)
    board.archive(gone, origin="cli")
    add("vision", "ViT-B/16 on the new crops", "Ideas", 1.0, board="vision")
    return ids


def build(tmp: Path, *, with_cards: bool = True):  # type: ignore[no-untyped-def]
    """(app, clock, ids): the app over ui_data's fleet and this board at START."""
    from nomadlab.cli.tui import build_app

    clock = ManualClock(START)
    cfg = config(tmp)
    store = Store(cfg.database)
    fleet = Fleet(cfg, store=store, clock=clock)
    ui_data.feed(fleet, clock)
    ids = seed(cfg, store) if with_cards else {}
    app = build_app(cfg, clock=clock, start_fleet=False, store=store, fleet=fleet)
    logs = app.services.logs
    assert logs is not None
    logs.tails["train-7b"].buffer.append(list(LOG_LINES), clock.time())
    return app, clock, ids


def screen_text(app: Any) -> str:
    """The screen as plain text, one line per row (from the SVG screenshot)."""
    svg = app.export_screenshot()
    rows: dict[float, list[tuple[float, str]]] = {}
    for match in re.finditer(r'<text[^>]*?x="([\d.]+)" y="([\d.]+)"[^>]*>(.*?)</text>', svg):
        x, y, body = float(match.group(1)), float(match.group(2)), match.group(3)
        rows.setdefault(y, []).append((x, html.unescape(body).replace("\xa0", " ")))
    return "\n".join("".join(t for _x, t in sorted(parts)) for _y, parts in sorted(rows.items()))


def check_consistent(path: Path) -> dict[str, int]:
    """The database file is intact and the board agrees with its own history: every
    card's column is its last move's, its params/metrics replay from their history.
    Returns row counts."""
    import json
    import sqlite3

    db = sqlite3.connect(path)
    db.row_factory = sqlite3.Row
    try:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        for card in db.execute("SELECT * FROM board_cards"):
            last = db.execute("SELECT to_col FROM board_moves WHERE card = ? ORDER BY id DESC"
                              " LIMIT 1", (card["id"],)).fetchone()
            assert last is not None and last[0] == card["col"], dict(card)
            for kind, column in (("param", "params"), ("metric", "metrics")):
                replay: dict[str, str] = {}
                for key, value in db.execute(
                        "SELECT key, value FROM board_values WHERE card = ? AND kind = ?"
                        " ORDER BY id", (card["id"], kind)):
                    if value is None:
                        replay.pop(key, None)
                    else:
                        replay[key] = value
                assert json.loads(card[column]) == replay, (card["id"], kind)
        return {table: db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in ("board_cards", "board_moves", "board_values", "board_journal")}
    finally:
        db.close()
