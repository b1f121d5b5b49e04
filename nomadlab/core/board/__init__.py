"""The board service: cards in SQLite, moved by people, scripts and run alerts.

Storage (``board`` migrations in :mod:`nomadlab.core.store`):

- ``board_cards``: one row per card; current params/metrics/links/tags as JSON;
  ``version`` is bumped by every change.
- ``board_values``: every change of a hyperparameter or metric, with its time (the
  card shows what changed between attempts).
- ``board_moves``: every column a card entered, with its time (cycle time per stage),
  whether an alert moved it (``auto``) and who did (``origin``: tui, cli, auto, api).
- ``board_journal``: undo/redo. Stored, so it survives a restart, one stack per board,
  shared by every TUI on the database: the changes made in a TUI (origin "tui") and
  the automatic ones (origin "auto": a run alert moved a card or marked it failed).
  Scripts (``nomadlab board ...``, origin "cli") and other features (origin "api")
  are not on it: ``u`` never undoes a training script's metric. An entry keeps each
  changed field's value before and after, and the history rows it added. Undo puts
  back a field only where it still holds the "after" value, so a change made since
  by someone else (another TUI, the CLI) is never overwritten; the rows it added are
  removed (an undone move leaves no trace in the history). A new change drops what
  was undone (no redo past it). The newest ``UNDO_LEVELS`` entries are kept.

Concurrency: every write is one ``Store.transaction()`` (BEGIN IMMEDIATE) that reads
the card again inside it, so writers in other processes wait their turn and
nothing is lost; a form's edit writes only the fields the user changed.
:meth:`BoardService.change_token` tells a view when to reload: ``PRAGMA
data_version`` (other connections' commits) plus a counter of this process's own.

Run alerts: a card's ``log`` link (a ``[[logs]]`` name, an ad hoc ``host:path``, or a
path with a ``host`` link) ties it to a log. A "finished" alert of that log moves the
card to ``[board] finished_column`` (when it is further left); a "failed" alert marks
it failed. Both are journaled (undoable) and the alert's message names the card
(through :meth:`AlertHub.add_annotator`, before the alert is stored and delivered).
Entering the run column again (a new attempt) clears the failed mark.

The parts: ``model`` (cards, their history and texts; no I/O), ``records`` (rows and
the write helpers), ``edits`` (changes and undo), ``service`` (:class:`BoardService`:
lifecycle, runs, run alerts, export). Public names are re-exported here.
"""

from __future__ import annotations

from nomadlab.core.board.edits import (
    BoardEdits,
)
from nomadlab.core.board.model import (
    ARCHIVE,
    EDITABLE,
    JOB_LINK,
    KEY_OK,
    LINK_KEYS,
    LINK_TITLES,
    PRIORITY_LABELS,
    PRIORITY_NAMES,
    TITLE_LIMIT,
    VALUE_LIMIT,
    Attempt,
    BoardError,
    Card,
    CardHistory,
    LiveState,
    Move,
    ValueChange,
    attempts,
    board_columns,
    card_markdown,
    check_title,
    clean_links,
    finished_column,
    format_value_lines,
    gpu_utilization,
    iso,
    local_time,
    matches,
    matching_gpus,
    parse_assignments,
    parse_priority,
    parse_tags,
    parse_value_lines,
    resolve_column,
    run_column,
    stage_times,
    value_diff,
)
from nomadlab.core.board.records import (
    ARCHIVE_SHOWN,
    KEEP_DELETED_DAYS,
    UNDO_LEVELS,
    UNDOABLE,
    BoardRecords,
    UndoResult,
)
from nomadlab.core.board.runs import AlertsLike, FleetLike, LogsLike
from nomadlab.core.board.service import BoardService, make_service

__all__ = [
    "ARCHIVE",
    "ARCHIVE_SHOWN",
    "EDITABLE",
    "JOB_LINK",
    "KEEP_DELETED_DAYS",
    "KEY_OK",
    "LINK_KEYS",
    "LINK_TITLES",
    "PRIORITY_LABELS",
    "PRIORITY_NAMES",
    "TITLE_LIMIT",
    "UNDOABLE",
    "UNDO_LEVELS",
    "VALUE_LIMIT",
    "AlertsLike",
    "Attempt",
    "BoardEdits",
    "BoardError",
    "BoardRecords",
    "BoardService",
    "Card",
    "CardHistory",
    "FleetLike",
    "LiveState",
    "LogsLike",
    "Move",
    "UndoResult",
    "ValueChange",
    "attempts",
    "board_columns",
    "card_markdown",
    "check_title",
    "clean_links",
    "duration",
    "finished_column",
    "format_value_lines",
    "gpu_utilization",
    "iso",
    "local_time",
    "make_service",
    "matches",
    "matching_gpus",
    "parse_assignments",
    "parse_priority",
    "parse_tags",
    "parse_value_lines",
    "resolve_column",
    "run_column",
    "stage_times",
    "value_diff",
]
