"""The board service on a real SQLite file with a ManualClock: cards, moves, history,
undo/redo, the cross-feature contract, run alerts, export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import test_board_data as data

from nomadlab.core.board import BoardError, BoardService, make_service
from nomadlab.core.board.model import (
    ARCHIVE,
    Card,
    attempts,
    card_markdown,
    gpu_utilization,
    matches,
    parse_assignments,
    parse_priority,
    parse_tags,
    parse_value_lines,
    resolve_column,
    run_column,
    value_diff,
)
from nomadlab.core.clock import ManualClock
from nomadlab.core.config import BoardConfig, Config, LogConfig, load_config_text
from nomadlab.core.logs import LogLine
from nomadlab.core.model import GpuProcess, GpuSample, HostSample
from nomadlab.core.store import Store
from nomadlab.notify.hub import AlertHub

H = 3600.0


def make(tmp: Path, text: str = "") -> tuple[BoardService, ManualClock, Config]:
    cfg = load_config_text(f'data_dir = "{tmp / "data"}"\nshow_local = false\n' + text)
    clock = ManualClock()
    return BoardService(cfg, Store(cfg.database), clock), clock, cfg


# --------------------------------------------------------------------------- parsing


def test_parsing_helpers() -> None:
    assert parse_assignments(["lr=3e-4", "batch = 64", "old="]) == {
        "lr": "3e-4", "batch": "64", "old": None}
    for bad in ("lr", "=3", "a b=1"):
        with pytest.raises(BoardError):
            parse_assignments([bad])
    assert parse_value_lines("lr = 1\n\n# a comment\nbs=2\nempty =\n") == {"lr": "1", "bs": "2"}
    assert parse_tags("#lora, 7b lora") == ["lora", "7b"]
    assert parse_tags(["[red]t[/]"]) == ["[red]t[/]"]
    assert [parse_priority(p) for p in ("H", "medium", "l", "", None, "none", 2)] == \
        [3, 2, 1, 0, 0, 0, 2]
    with pytest.raises(BoardError):
        parse_priority("urgent")
    assert value_diff({"a": "1", "b": "2"}, {"a": "1", "b": "3", "c": "4"}) == {
        "b": "3", "c": "4"}
    assert value_diff({"a": "1"}, {}) == {"a": None}
    cols = ["Hypothesis", "Data Prep", "Training", "Evaluation", "Deployment"]
    assert resolve_column(cols, "training") == "Training"
    assert resolve_column(cols, "eval") == "Evaluation"
    assert resolve_column(cols, "archive") == ARCHIVE
    with pytest.raises(BoardError, match="no column"):
        resolve_column(cols, "nope")
    with pytest.raises(BoardError, match="ambiguous"):
        resolve_column(["Train A", "Train B"], "train")
    assert run_column(cols, "Evaluation") == "Training"
    assert run_column(["Ideas", "Running", "Done"], "Evaluation") == "Running"
    assert run_column(["Only"], "Evaluation") is None
    assert run_column(["Ideas", "Running", "Done"], "Done") == "Running"


def test_filter_words_tags_and_values() -> None:
    card = Card(id=42, board="main", column="Training", position=0, title="LoRA r=16 on 7B",
                created=0, updated=0, entered=0, tags=["lora", "llama"],
                params={"lr": "3e-4"}, notes="try **cosine**")
    assert matches(card, "")
    assert matches(card, "lora 7b")
    assert matches(card, "#lla")
    assert matches(card, "#42")
    assert matches(card, "lr=3e-4")
    assert matches(card, "cosine")
    assert not matches(card, "#vision")
    assert not matches(card, "lora vision")


def test_gpu_utilization_matches_the_run_command() -> None:
    def gpu(i: int, util: float, command: str | None) -> GpuSample:
        procs = [GpuProcess(100 + i, "alice", command, 1.0)] if command else []
        return GpuSample(i, "H100", f"GPU-{i}", util, 1.0, 80.0, 50.0, 100.0, 700.0, procs)

    sample = HostSample("h", 0.0, 1.0, 1.0, 2.0, 0.0, [
        gpu(0, 90, "python train.py --config a.yaml --rank 0"),
        gpu(1, 80, "python train.py --config a.yaml --rank 1"),
        gpu(2, 10, "python other.py"), gpu(3, 0, None)])
    assert gpu_utilization(sample, "CUDA_VISIBLE_DEVICES=0,1 python  train.py --config a.yaml") \
        == (85.0, "process", (0, 1))
    util, scope, gpus = gpu_utilization(sample, "python nothing.py")
    assert (util, scope, gpus) == (45.0, "host", ())
    assert gpu_utilization(None, "x") == (None, "", ())


# --------------------------------------------------------------------------- cards


def test_add_move_step_and_history(tmp_path: Path) -> None:
    board, clock, _ = make(tmp_path)
    a = board.add_card("LoRA r=16", tags=["lora"], params={"lr": "3e-4"}, origin="tui")
    b = board.add_card("baseline", column="train", origin="tui")
    assert [c.id for c in board.cards()] == [a, b]
    assert board.card(a).column == "Hypothesis" and board.card(b).column == "Training"
    clock.advance(H)
    assert board.step(a, -1) is None  # the first column: nowhere to go
    assert board.step(a, 1) == "Data Prep"
    clock.advance(2 * H)
    assert board.step(a, 1) == "Training"
    card = board.card(a)
    assert card.column == "Training" and card.entered == clock.time()
    assert card.position == 1  # moved cards go to the bottom
    history = board.history(a)
    assert [(m.from_col, m.to_col) for m in history.moves] == [
        (None, "Hypothesis"), ("Hypothesis", "Data Prep"), ("Data Prep", "Training")]
    clock.advance(H)
    times = board.export()["cards"][0]["seconds_in_columns"]
    assert times == {"Hypothesis": H, "Data Prep": 2 * H, "Training": H}
    assert board.move(a, "Training") is False


def test_params_history_and_attempts(tmp_path: Path) -> None:
    board, clock, _ = make(tmp_path)
    a = board.add_card("sweep", column="Training", params={"lr": "3e-4", "bs": "64"},
                       origin="tui")
    clock.advance(H)
    board.move(a, "Hypothesis")
    board.set_params(a, {"lr": "1e-4", "warmup": "500", "bs": None})
    clock.advance(H)
    board.move(a, "Training")
    clock.advance(H)
    board.set_params(a, {"lr": "1e-4"})  # the same value: no history row
    history = board.history(a)
    assert [(v.key, v.value) for v in history.values] == [
        ("lr", "3e-4"), ("bs", "64"), ("lr", "1e-4"), ("warmup", "500"), ("bs", None)]
    assert board.card(a).params == {"lr": "1e-4", "warmup": "500"}
    tries = attempts(history, "Training")
    assert [t.number for t in tries] == [1, 2]
    assert tries[0].ended == tries[1].started - H
    assert tries[1].changed == {"bs": ("64", None), "lr": ("3e-4", "1e-4"),
                                "warmup": (None, "500")}
    md = board.markdown(a)
    assert "attempt 2" in md and "lr 3e-4 → 1e-4" in md


def test_reorder_swaps_with_the_visible_neighbour(tmp_path: Path) -> None:
    board, _, _ = make(tmp_path)
    ids = [board.add_card(f"card {i}", origin="tui") for i in range(4)]
    assert board.reorder(ids[0], -1) is False
    assert board.reorder(ids[0], 1) is True
    assert [c.id for c in board.cards()] == [ids[1], ids[0], ids[2], ids[3]]
    # With a filter hiding ids[2], moving ids[0] down jumps over it to ids[3].
    assert board.reorder(ids[0], 1, among=[ids[1], ids[0], ids[3]]) is True
    assert [c.id for c in board.cards()] == [ids[1], ids[3], ids[2], ids[0]]


def test_edit_writes_only_what_the_form_changed(tmp_path: Path) -> None:
    board, _, _ = make(tmp_path)
    a = board.add_card("title", tags=["x"], origin="tui")
    card = board.card(a)
    original = {"title": card.title, "tags": card.tags, "notes": card.notes}
    # Meanwhile another writer changes the notes and a metric.
    board.edit(a, {"notes": "theirs"}, origin="cli")
    board.set_metrics(a, {"loss": "0.5"}, origin="cli")
    written = board.edit(a, {"title": "mine", "tags": ["x"], "notes": ""}, original={
        **original, "notes": ""}, params={"lr": "1"})
    assert written == ["title", "lr"]
    card = board.card(a)
    assert (card.title, card.notes, card.metrics, card.params) == (
        "mine", "theirs", {"loss": "0.5"}, {"lr": "1"})
    with pytest.raises(BoardError):
        board.edit(a, {"title": "  "})
    with pytest.raises(BoardError):
        board.edit(a, {"column": "x"})
    with pytest.raises(BoardError):
        board.edit(a, {"links": {"url": "x"}})


def test_undo_redo_several_levels_and_after_a_restart(tmp_path: Path) -> None:
    board, clock, cfg = make(tmp_path)
    a = board.add_card("a", origin="tui")
    clock.advance(60)
    board.step(a, 1)
    clock.advance(60)
    board.step(a, 1)
    board.edit(a, {"title": "a2"})
    board.set_params(a, {"lr": "1"})
    assert board.undo().label == f"params of #{a}"
    assert board.card(a).params == {} and board.history(a).values == []
    assert board.undo().label == f"edit #{a}"
    assert board.card(a).title == "a"
    assert board.undo().label == f"move #{a} to Training"
    card = board.card(a)
    assert card.column == "Data Prep" and card.entered == clock.time() - 60
    assert [m.to_col for m in board.history(a).moves] == ["Hypothesis", "Data Prep"]
    # A restart: the stack is in the database.
    board.store.close()
    board = BoardService(cfg, Store(cfg.database), clock)
    assert board.redo().label == f"move #{a} to Training"
    assert board.card(a).column == "Training"
    assert [m.to_col for m in board.history(a).moves] == ["Hypothesis", "Data Prep", "Training"]
    assert board.redo().label == f"edit #{a}"
    assert board.card(a).title == "a2"
    # A new change drops what is left to redo.
    board.archive(a)
    assert board.redo() is None
    assert board.card(a).column == ARCHIVE and board.cards() == []
    assert board.undo().label == f"archive #{a}"
    assert board.card(a).column == "Training" and board.card(a).archived is None
    # Undo down to the creation: the card goes away; redo brings it back.
    while board.undo() is not None:
        pass
    assert board.card(a) is None
    assert board.redo() is not None and board.card(a) is not None


def test_undo_keeps_what_someone_else_changed_since(tmp_path: Path) -> None:
    board, _, _ = make(tmp_path)
    a = board.add_card("a", origin="tui")
    board.edit(a, {"title": "mine", "notes": "mine"})
    board.edit(a, {"title": "theirs"}, origin="cli")  # not on the stack
    result = board.undo()
    assert result is not None and result.skipped == 1
    card = board.card(a)
    assert card.title == "theirs" and card.notes == ""
    # Params: key by key. Mine lr and wd; theirs lr since: only wd goes back.
    board.set_params(a, {"lr": "1", "wd": "0.1"})
    board.set_params(a, {"lr": "2", "bs": "3"}, origin="cli")
    result = board.undo()
    assert result is not None and result.skipped == 1
    assert board.card(a).params == {"lr": "2", "bs": "3"}
    assert [(v.key, v.value) for v in board.history(a).values] == [
        ("lr", "1"), ("lr", "2"), ("bs", "3")]
    # Moves: theirs since mine: the column and its history stay.
    board.move(a, "Training")
    board.move(a, "Deployment", origin="cli")
    assert board.undo().skipped >= 1
    assert board.card(a).column == "Deployment"
    assert [m.to_col for m in board.history(a).moves][-2:] == ["Training", "Deployment"]
    assert board.redo() is not None and board.card(a).column == "Deployment"
    data.check_consistent(board.store.path)


def test_cli_and_api_changes_are_not_on_the_undo_stack(tmp_path: Path) -> None:
    board, _, _ = make(tmp_path)
    a = board.add_card("from a script", origin="cli")
    board.set_metrics(a, {"loss": "1"}, origin="cli")
    board.add_card("from papers", column="Hypothesis", links={"paper": 7})
    assert board.undo() is None
    assert not board.can_undo()


def test_delete_archive_restore(tmp_path: Path) -> None:
    board, _, _ = make(tmp_path)
    a = board.add_card("a", column="Training", origin="tui")
    board.archive(a)
    assert board.card(a).archived_from == "Training"
    archived, total = board.archived_cards()
    assert [c.id for c in archived] == [a] and total == 1
    assert board.restore(a) == "Training"
    board.delete(a)
    assert board.card(a) is None and board.card_title(a) is None
    with pytest.raises(BoardError, match="deleted"):
        board.step(a, 1)
    board.undo()
    assert board.card_title(a) == "a"


def test_the_contract_for_papers_and_focus(tmp_path: Path) -> None:
    board, clock, _ = make(tmp_path)
    start = clock.time()
    paper = board.add_card("Read: LoRA", column="Hypothesis", links={"paper": "2106.09685"})
    assert isinstance(paper, int) and board.card_title(paper) == "Read: LoRA"
    assert board.card(paper).links == {"paper": "2106.09685"}
    assert board.card_title(9999) is None
    run = board.add_card("run", column="Training", tags=["x"])
    clock.advance(60)
    board.move(run, "Evaluation", origin="tui")
    clock.advance(60)
    board.move(paper, "Data Prep", origin="tui")
    board.move(run, "Deployment", origin="tui")
    moves = board.moves_between(start, clock.time() + 1)
    assert [(m["card"], m["from"], m["to"], m["auto"]) for m in moves] == [
        (run, "Training", "Evaluation", False), (paper, "Hypothesis", "Data Prep", False),
        (run, "Evaluation", "Deployment", False)]
    assert moves[0]["title"] == "run" and moves[0]["time"] == start + 60
    assert board.moves_between(start, start + 60) == []  # [start, end)
    assert board.cards_finished_between(start, clock.time() + 1) == 1
    assert board.cards_finished_between(start + 61, clock.time() + 1) == 0
    # An unknown column from another feature: the first column, not an error...
    odd = board.add_card("odd", column="Reading")
    assert board.card(odd).column == "Hypothesis"
    # ... but from the CLI or the TUI it is one.
    with pytest.raises(BoardError):
        board.add_card("odd", column="Reading", origin="cli")


def test_custom_boards_columns_and_boards_from_the_database(tmp_path: Path) -> None:
    board, _, _ = make(tmp_path, '[board]\ndefault = "llm"\n[[board.boards]]\nname = "llm"\n'
                                 'columns = ["Idea", "Run", "Done"]\n[board.boards.wip]\n'
                                 'Run = 2\n')
    assert board.columns() == ["Idea", "Run", "Done"]
    assert board.run_column() == "Run" and board.finished_column() == "Done"
    assert board.wip() == {"Run": 2}
    board.add_card("x", board="side-project", origin="cli")
    assert [b.name for b in board.boards()] == ["llm", "side-project"]
    assert board.columns("side-project")[0] == "Hypothesis"


# --------------------------------------------------------------------------- run alerts


def test_run_alerts_move_and_mark_cards_and_name_them(tmp_path: Path) -> None:
    board, clock, cfg = make(tmp_path)
    cfg.logs = [LogConfig("train", "gpu1", "~/train.log")]
    hub = AlertHub(cfg, board.store, clock=clock)
    board = make_service(config=cfg, store=board.store, clock=clock, alerts=hub)
    a = board.add_card("run a", column="Training", links={"log": "train"}, origin="tui")
    b = board.add_card("run b", column="Training", links={"host": "gpu1", "log": "~/b.log"},
                       origin="tui")
    done = board.add_card("done", column="Deployment", links={"log": "train"}, origin="tui")
    assert board.log_name(board.card(b)) == "gpu1:~/b.log"
    told = []
    hub.subscribe(told.append)
    clock.advance(60)
    hub.log_lines("train", [LogLine(1, "epoch 9 done; Training completed.", clock.time())])
    card = board.card(a)
    assert card.column == "Evaluation"
    assert board.card(done).column == "Deployment"  # never moved back
    move = board.history(a).moves[-1]
    assert move.auto and move.origin == "auto" and move.reason == "run finished: train"
    assert told[-1].extra["cards"] == [a, done]
    assert f"Card #{a} \u201crun a\u201d moved to Evaluation." in told[-1].message
    stored = hub.log.recent(1)[0]
    assert f"Card #{a}" in stored.message and stored.outcome == "finished"
    assert board.moves_between(0, clock.time() + 1)[-1]["auto"] is True
    # The automatic move is undoable.
    assert board.undo().label == f"move #{a} to Evaluation (automatic)"
    assert board.card(a).column == "Training"

    hub.log_lines("gpu1:~/b.log", [LogLine(1, "RuntimeError: CUDA out of memory.", 0)])
    card = board.card(b)
    assert card.column == "Training" and card.failed is not None
    assert "CUDA out of memory" in card.failed
    assert f"Card #{b} \u201crun b\u201d is marked failed." in told[-1].message
    assert told[-1].severity == "error"
    # A new attempt (back into Training by hand) clears the mark.
    board.move(b, "Hypothesis")
    board.move(b, "Training")
    assert board.card(b).failed is None


def test_make_service_without_an_annotating_hub_says_it_separately(tmp_path: Path) -> None:
    class OldHub:
        def __init__(self) -> None:
            self.subscribers: list = []  # type: ignore[type-arg]
            self.emitted: list = []  # type: ignore[type-arg]

        def subscribe(self, callback):  # type: ignore[no-untyped-def]
            self.subscribers.append(callback)
            return lambda: None

        def emit(self, alerts):  # type: ignore[no-untyped-def]
            self.emitted.extend(alerts)

    board, clock, cfg = make(tmp_path)
    hub = OldHub()
    board = make_service(config=cfg, store=board.store, clock=clock, alerts=hub)
    a = board.add_card("x", column="Training", links={"log": "local:/tmp/x.log"}, origin="tui")
    from nomadlab.core.alerts import Alert

    alert = Alert(time=clock.time(), rule="run failed", severity="error", title="run failed",
                  message="Traceback.", log="local:/tmp/x.log", outcome="failed")
    for callback in hub.subscribers:
        callback(alert)
    assert board.card(a).failed is not None
    assert hub.emitted and f"Card #{a}" in hub.emitted[0].message


# --------------------------------------------------------------------------- export


def test_export_json_and_markdown(tmp_path: Path) -> None:
    board, clock, _ = make(tmp_path)
    a = board.add_card("[bold]x[/] \x1b]0;t\x07", tags=["t"], params={"lr": "1"},
                       links={"host": "gpu1", "commit": "abc123"}, origin="cli")
    clock.advance(60)
    board.set_params(a, {"lr": "2"}, origin="cli")
    board.set_metrics(a, {"val_loss": "0.231"}, origin="cli")
    board.archive(board.add_card("old", origin="cli"), origin="cli")
    data = board.export()
    assert data["boards"][0]["name"] == "main"
    first, second = data["cards"]
    assert first["column"] == "Hypothesis" and second["column"] == ARCHIVE
    assert first["params"] == {"lr": "2"}
    assert [h["value"] for h in first["param_history"]] == ["1", "2"]
    assert first["metrics"] == {"val_loss": "0.231"}
    assert first["links"] == {"host": "gpu1", "commit": "abc123"}
    assert first["moves"][0]["to"] == "Hypothesis"
    json.dumps(data)
    md = board.export_markdown()
    assert "# Board: main" in md and "## Archive (1)" in md
    assert "\x1b" not in md and "\x07" not in md and "[bold]x[/]" in md
    assert card_markdown(board.card(a), now=clock.time()).startswith("## #1 [bold]x[/]")


def test_board_config_from_toml(tmp_path: Path) -> None:
    _, _, cfg = make(tmp_path, '[board]\nfinished_column = "Deployment"\neditor = "nano"\n'
                               '[[board.boards]]\nname = "main"\n[board.boards.wip]\n'
                               'Training = 3\n')
    assert cfg.board.finished_column == "Deployment" and cfg.board.editor == "nano"
    assert cfg.board.boards == [BoardConfig("main", wip={"Training": 3})]
