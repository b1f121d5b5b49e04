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
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from nomadlab.core.alerts import Alert, clean_text
from nomadlab.core.board_model import (
    ARCHIVE,
    EDITABLE,
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
    gpu_utilization,
    iso,
    matches,
    parse_priority,
    parse_tags,
    resolve_column,
    run_column,
    stage_times,
)
from nomadlab.core.clock import SYSTEM_CLOCK, Clock
from nomadlab.core.config import BoardConfig, Config
from nomadlab.core.logs import LogBuffer, LogStatus
from nomadlab.core.model import LOCAL_HOST, HostSample
from nomadlab.core.store import Store

if TYPE_CHECKING:
    from nomadlab.core.features import JobsLookup
    from nomadlab.core.jobs.model import Job

log = logging.getLogger(__name__)

__all__ = ["BoardError", "BoardService", "UndoResult", "make_service"]

UNDOABLE = ("tui", "auto")
UNDO_LEVELS = 100
KEEP_DELETED_DAYS = 30.0
ARCHIVE_SHOWN = 100  # archived cards listed at most (newest first; a filter searches all)

_CARD_FIELDS = ("id", "board", "col", "position", "title", "hypothesis", "notes", "tags",
                "priority", "params", "metrics", "links", "failed", "failed_at",
                "archived_from", "created", "updated", "entered", "archived", "deleted",
                "version")
_WRITABLE = frozenset(_CARD_FIELDS) - {"id", "board", "created", "updated", "version"}
_SELECT = "SELECT " + ", ".join(_CARD_FIELDS) + " FROM board_cards"


# --------------------------------------------------------------------------- what it reads


class _Tail(Protocol):
    @property
    def buffer(self) -> LogBuffer: ...


class LogsLike(Protocol):
    """What the service needs of :class:`nomadlab.remote.tail.Logs`."""

    @property
    def tails(self) -> Mapping[str, _Tail]: ...

    @property
    def statuses(self) -> Mapping[str, LogStatus]: ...

    def open_adhoc(self, host: str, path: str) -> str: ...


class FleetLike(Protocol):
    @property
    def latest(self) -> Mapping[str, HostSample]: ...


class AlertsLike(Protocol):
    def subscribe(self, callback: Callable[[Alert], None]) -> Callable[[], None]: ...

    def emit(self, alerts: Iterable[Alert]) -> None: ...


@runtime_checkable
class AnnotatingAlerts(AlertsLike, Protocol):
    """An AlertHub that lets the board name its cards in an alert before it goes out."""

    def add_annotator(self, callback: Callable[[Alert], None]) -> Callable[[], None]: ...


# --------------------------------------------------------------------------- rows


def _card(row: sqlite3.Row) -> Card:
    return Card(
        id=row["id"], board=row["board"], column=row["col"], position=row["position"],
        title=row["title"], created=row["created"], updated=row["updated"],
        entered=row["entered"], hypothesis=row["hypothesis"], notes=row["notes"],
        tags=list(json.loads(row["tags"])), priority=row["priority"],
        params=dict(json.loads(row["params"])), metrics=dict(json.loads(row["metrics"])),
        links=dict(json.loads(row["links"])), failed=row["failed"],
        failed_at=row["failed_at"], archived_from=row["archived_from"],
        archived=row["archived"], deleted=row["deleted"], version=row["version"],
    )


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@dataclass
class _Change:
    """What one write did: fields before/after per card, history rows it added."""

    board: str = ""
    label: str = ""
    cards: dict[int, dict[str, list[Any]]] = field(default_factory=dict)
    values: list[dict[str, Any]] = field(default_factory=list)
    moves: list[dict[str, Any]] = field(default_factory=list)

    def note(self, card: int, name: str, old: Any, new: Any) -> None:
        entry = self.cards.setdefault(card, {})
        if name in entry:
            entry[name][1] = new
        else:
            entry[name] = [old, new]

    def __bool__(self) -> bool:
        return bool(self.cards or self.values or self.moves)

    def to_json(self) -> str:
        return _dumps({"cards": {str(k): v for k, v in self.cards.items()},
                       "values": self.values, "moves": self.moves})


@dataclass(slots=True, frozen=True)
class UndoResult:
    label: str
    skipped: int  # fields left alone because someone changed them since
    card: int | None  # the card to put the cursor on


# --------------------------------------------------------------------------- the service


class BoardService:
    def __init__(self, config: Config, store: Store, clock: Clock = SYSTEM_CLOCK, *,
                 fleet: FleetLike | None = None, logs: LogsLike | None = None,
                 alerts: AlertsLike | None = None) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.fleet = fleet
        self.logs = logs
        self.alerts = alerts
        self.jobs: JobsLookup | None = None  # job=CLUSTER:ID links; set by the app
        self.local_changes = 0  # writes by this process (data_version misses those)
        self._task: asyncio.Task[None] | None = None
        self._unhook: Callable[[], None] | None = None
        if alerts is not None:
            if isinstance(alerts, AnnotatingAlerts):
                self._unhook = alerts.add_annotator(self.on_alert)
            else:  # an AlertHub without annotators: act on it, then say so separately
                self._unhook = alerts.subscribe(self._on_alert_told)

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Purge long-deleted cards; follow the logs of running cards (every 2 s)."""
        now = self.clock.time()
        try:
            with self.store.transaction() as db:
                db.execute("DELETE FROM board_cards WHERE deleted IS NOT NULL AND deleted < ?",
                           (now - KEEP_DELETED_DAYS * 86400,))
        except sqlite3.Error as exc:
            log.warning("deleted cards not purged: %s", exc)
        self.follow_running_logs()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._watch())

    async def _watch(self) -> None:
        token = self.change_token()
        while True:
            await asyncio.sleep(2.0)
            now = self.change_token()
            if now != token:
                token = now
                self.follow_running_logs()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._unhook is not None:
            self._unhook()
            self._unhook = None

    def change_token(self) -> tuple[int, int]:
        """Changes whenever the board may have changed: another connection committed
        (``PRAGMA data_version``) or this process wrote. Cheap: poll it."""
        return (self.store.data_version(), self.local_changes)

    # ------------------------------------------------------------------ boards

    def boards(self) -> list[BoardConfig]:
        """Configured boards (the default first if it is not configured), then boards
        that exist only in the database (made with ``--board``), default columns."""
        out = list(self.config.board.boards)
        names = {b.name for b in out}
        default = self.config.board.default
        if default not in names:
            out.insert(0, BoardConfig(default))
            names.add(default)
        for row in self.store.query(
                "SELECT DISTINCT board FROM board_cards WHERE deleted IS NULL ORDER BY board"):
            if row["board"] not in names:
                out.append(BoardConfig(row["board"]))
                names.add(row["board"])
        return out

    def default_board(self) -> str:
        return self.config.board.default

    def board_config(self, board: str | None = None) -> BoardConfig:
        name = board or self.default_board()
        for b in self.config.board.boards:
            if b.name == name:
                return b
        return BoardConfig(name)

    def columns(self, board: str | None = None) -> list[str]:
        """The board's columns (Archive not included)."""
        return board_columns(self.board_config(board))

    def wip(self, board: str | None = None) -> dict[str, int]:
        return dict(self.board_config(board).wip)

    def run_column(self, board: str | None = None) -> str | None:
        return run_column(self.columns(board), self.config.board.finished_column)

    def finished_column(self, board: str | None = None) -> str | None:
        return finished_column(self.columns(board), self.config.board.finished_column)

    def resolve_column(self, board: str | None, name: str) -> str:
        return resolve_column(self.columns(board), name)

    # ------------------------------------------------------------------ reading

    def card(self, card_id: int) -> Card | None:
        """The card (archived ones too), or None when there is none or it was deleted."""
        rows = self.store.query(f"{_SELECT} WHERE id = ? AND deleted IS NULL", (card_id,))
        return _card(rows[0]) if rows else None

    def card_title(self, card_id: int) -> str | None:
        card = self.card(card_id)
        return card.title if card is not None else None

    def cards(self, board: str | None = None, *, query: str = "") -> list[Card]:
        """The board's open cards (not archived), by column order then position."""
        name = board or self.default_board()
        rows = self.store.query(
            f"{_SELECT} WHERE board = ? AND archived IS NULL AND deleted IS NULL"
            " ORDER BY position, id", (name,))
        cards = [_card(r) for r in rows]
        if query:
            cards = [c for c in cards if matches(c, query)]
        order = {c: i for i, c in enumerate(self.columns(name))}
        cards.sort(key=lambda c: (order.get(c.column, len(order)), c.column))
        return cards

    def archived_cards(self, board: str | None = None, *, query: str = "",
                       limit: int = ARCHIVE_SHOWN) -> tuple[list[Card], int]:
        """Archived cards, newest first, at most ``limit`` (and how many match in all)."""
        name = board or self.default_board()
        rows = self.store.query(
            f"{_SELECT} WHERE board = ? AND archived IS NOT NULL AND deleted IS NULL"
            " ORDER BY archived DESC, id DESC", (name,))
        cards = [_card(r) for r in rows]
        if query:
            cards = [c for c in cards if matches(c, query)]
        return cards[:limit], len(cards)

    def all_cards(self, board: str | None = None) -> list[Card]:
        """Every card not deleted (archived ones too), of one board or of all."""
        if board is None:
            rows = self.store.query(f"{_SELECT} WHERE deleted IS NULL ORDER BY board, id")
        else:
            rows = self.store.query(f"{_SELECT} WHERE board = ? AND deleted IS NULL ORDER BY id",
                                    (board,))
        return [_card(r) for r in rows]

    def history(self, card_id: int) -> CardHistory:
        values = [ValueChange(r["id"], r["kind"], r["key"], r["value"], r["time"])
                  for r in self.store.query(
                      "SELECT id, kind, key, value, time FROM board_values WHERE card = ?"
                      " ORDER BY id", (card_id,))]
        moves = [Move(r["id"], r["from_col"], r["to_col"], r["time"], bool(r["auto"]),
                      r["origin"], r["reason"])
                 for r in self.store.query(
                     "SELECT id, from_col, to_col, time, auto, origin, reason FROM board_moves"
                     " WHERE card = ? ORDER BY id", (card_id,))]
        return CardHistory(values, moves)

    def counts(self, board: str | None = None) -> dict[str, int]:
        name = board or self.default_board()
        rows = self.store.query(
            "SELECT col, count(*) AS n FROM board_cards WHERE board = ? AND archived IS NULL"
            " AND deleted IS NULL GROUP BY col", (name,))
        return {r["col"]: r["n"] for r in rows}

    # ------------------------------------------------------------------ writing

    @contextlib.contextmanager
    def _writing(self, origin: str) -> Iterator[tuple[sqlite3.Connection, _Change]]:
        change = _Change()
        with self.store.transaction() as db:
            yield db, change
            if change and origin in UNDOABLE:
                now = self.clock.time()
                db.execute("DELETE FROM board_journal WHERE board = ? AND state = 'undone'",
                           (change.board,))
                db.execute("INSERT INTO board_journal(board, time, origin, label, changes)"
                           " VALUES (?, ?, ?, ?, ?)",
                           (change.board, now, origin, change.label, change.to_json()))
                db.execute(
                    "DELETE FROM board_journal WHERE board = ? AND id < (SELECT id FROM"
                    " board_journal WHERE board = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                    (change.board, change.board, UNDO_LEVELS - 1))
        if change:
            self.local_changes += 1

    @staticmethod
    def _row(db: sqlite3.Connection, card_id: int) -> sqlite3.Row:
        row = db.execute(f"{_SELECT} WHERE id = ?", (card_id,)).fetchone()
        if row is None:
            raise BoardError(f"no card #{card_id}")
        if row["deleted"] is not None:
            raise BoardError(f"card #{card_id} was deleted")
        return row  # type: ignore[no-any-return]

    def _update(self, db: sqlite3.Connection, change: _Change, row: sqlite3.Row, *,
                journal: bool = True, **fields: Any) -> bool:
        sets = {k: v for k, v in fields.items() if row[k] != v}
        if not sets:
            return False
        assert set(sets) <= _WRITABLE, sets
        if journal:
            for key, value in sets.items():
                change.note(row["id"], key, row[key], value)
        change.board = change.board or row["board"]
        assignments = ", ".join(f"{k} = ?" for k in sets)
        db.execute(f"UPDATE board_cards SET {assignments}, updated = ?, version = version + 1"
                   " WHERE id = ?", (*sets.values(), self.clock.time(), row["id"]))
        return True

    @staticmethod
    def _bottom(db: sqlite3.Connection, board: str, column: str) -> int:
        row = db.execute("SELECT max(position) FROM board_cards WHERE board = ? AND col = ?"
                         " AND deleted IS NULL", (board, column)).fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def _add_move(self, db: sqlite3.Connection, change: _Change, card: int, *,
                  from_col: str | None, to_col: str, origin: str, auto: bool,
                  reason: str | None) -> None:
        now = self.clock.time()
        cursor = db.execute(
            "INSERT INTO board_moves(card, from_col, to_col, time, auto, origin, reason)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (card, from_col, to_col, now, int(auto), origin, reason))
        change.moves.append({"id": cursor.lastrowid, "card": card, "from_col": from_col,
                             "to_col": to_col, "time": now, "auto": int(auto),
                             "origin": origin, "reason": reason})

    def _set_values(self, db: sqlite3.Connection, change: _Change, row: sqlite3.Row,
                    kind: str, values: Mapping[str, str | None]) -> list[str]:
        column = "params" if kind == "param" else "metrics"
        current: dict[str, str] = json.loads(row[column])
        now = self.clock.time()
        changed = []
        for key, value in values.items():
            if current.get(key) == value:
                continue
            before = current.get(key)
            if value is None:
                current.pop(key, None)
            else:
                current[key] = value
            cursor = db.execute("INSERT INTO board_values(card, kind, key, value, time)"
                                " VALUES (?, ?, ?, ?, ?)", (row["id"], kind, key, value, now))
            change.values.append({"id": cursor.lastrowid, "card": row["id"], "kind": kind,
                                  "key": key, "value": value, "time": now, "old": before})
            changed.append(key)
        if changed:
            change.board = change.board or row["board"]
            self._update(db, change, row, journal=False, **{column: _dumps(current)})
        return changed

    # -------------------------------------------------------------- the contract

    def add_card(self, title: str, *, column: str | None = None, board: str | None = None,
                 links: Mapping[str, object] | None = None, tags: Iterable[str] | None = None,
                 params: Mapping[str, str | None] | None = None,
                 metrics: Mapping[str, str | None] | None = None,
                 priority: int | str | None = 0, hypothesis: str = "", notes: str = "",
                 origin: str = "api") -> int:
        """A new card at the bottom of ``column`` (default: the board's first); its id.

        Raises BoardError for an empty title, bad tags or links, or an unknown column
        (except for origin "api", other features: the board's first column then).
        """
        name = board or self.default_board()
        columns = self.columns(name)
        if column is None:
            col = columns[0]
        else:
            try:
                col = resolve_column(columns, column, archive=False)
            except BoardError:
                if origin != "api":
                    raise
                col = columns[0]
        title = check_title(title)
        tag_list = parse_tags(list(tags or []))
        link_map = clean_links(links or {})
        prio = parse_priority(priority)
        now = self.clock.time()
        with self._writing(origin) as (db, change):
            position = self._bottom(db, name, col)
            cursor = db.execute(
                "INSERT INTO board_cards(board, col, position, title, hypothesis, notes, tags,"
                " priority, links, created, updated, entered)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (name, col, position, title, hypothesis, notes, _dumps(tag_list), prio,
                 _dumps(link_map), now, now, now))
            card_id = int(cursor.lastrowid or 0)
            change.board = name
            change.label = f"add #{card_id}"
            change.note(card_id, "deleted", now, None)  # undo: the card goes away
            self._add_move(db, change, card_id, from_col=None, to_col=col, origin=origin,
                           auto=False, reason=None)
            row = self._row(db, card_id)
            if params:
                self._set_values(db, change, row, "param", params)
                row = self._row(db, card_id)
            if metrics:
                self._set_values(db, change, row, "metric", metrics)
        self.follow_running_logs()
        return card_id

    def moves_between(self, start: float, end: float) -> list[dict[str, Any]]:
        """Moves made in [start, end), oldest first (creation is not a move):
        {"card", "title", "board", "from", "to", "time", "auto"}."""
        rows = self.store.query(
            "SELECT m.card, c.title, c.board, m.from_col, m.to_col, m.time, m.auto"
            " FROM board_moves m JOIN board_cards c ON c.id = m.card"
            " WHERE m.time >= ? AND m.time < ? AND m.from_col IS NOT NULL"
            " AND c.deleted IS NULL ORDER BY m.time, m.id", (start, end))
        return [{"card": r["card"], "title": r["title"], "board": r["board"],
                 "from": r["from_col"], "to": r["to_col"], "time": r["time"],
                 "auto": bool(r["auto"])} for r in rows]

    def cards_finished_between(self, start: float, end: float) -> int:
        """Cards that reached their board's finished column (or a column right of it)
        from a column left of it, in [start, end)."""
        done: set[int] = set()
        for move in self.moves_between(start, end):
            columns = self.columns(move["board"])
            target = finished_column(columns, self.config.board.finished_column)
            if target is None or move["to"] not in columns or move["from"] not in columns:
                continue
            line = columns.index(target)
            if columns.index(move["to"]) >= line > columns.index(move["from"]):
                done.add(move["card"])
        return len(done)

    # -------------------------------------------------------------- moves

    def move(self, card_id: int, column: str, *, origin: str = "tui", auto: bool = False,
             reason: str | None = None) -> bool:
        """Move to ``column`` (a name, case-insensitive, prefix ok; "Archive" archives),
        at the bottom. False when it is there already."""
        card = self.card(card_id)
        if card is None:
            raise BoardError(f"no card #{card_id}")
        target = self.resolve_column(card.board, column)
        with self._writing(origin) as (db, change):
            row = self._row(db, card_id)
            moved = self._move(db, change, row, target, origin=origin, auto=auto,
                               reason=reason)
        return moved

    def _move(self, db: sqlite3.Connection, change: _Change, row: sqlite3.Row, target: str,
              *, origin: str, auto: bool, reason: str | None) -> bool:
        if row["col"] == target:
            return False
        now = self.clock.time()
        fields: dict[str, Any] = {"col": target, "entered": now,
                                  "position": self._bottom(db, row["board"], target)}
        if target == ARCHIVE:
            fields.update(archived=now, archived_from=row["col"])
        elif row["col"] == ARCHIVE:
            fields.update(archived=None, archived_from=None)
        if (not auto and row["failed"] is not None
                and target == self.run_column(row["board"])):
            fields.update(failed=None, failed_at=None)  # a new attempt
        self._update(db, change, row, **fields)
        self._add_move(db, change, row["id"], from_col=row["col"], to_col=target,
                       origin=origin, auto=auto, reason=reason)
        if target == ARCHIVE:
            change.label = f"archive #{row['id']}"
        elif row["col"] == ARCHIVE:
            change.label = f"restore #{row['id']} to {target}"
        else:
            change.label = f"move #{row['id']} to {target}"
        if auto:
            change.label += " (automatic)"
        return True

    def step(self, card_id: int, delta: int, *, origin: str = "tui") -> str | None:
        """Move to the previous (-1) or next (+1) column: the column it went to, or None
        at the edge. Relative to where the card is NOW (another writer may have moved it)."""
        with self._writing(origin) as (db, change):
            row = self._row(db, card_id)
            columns = self.columns(row["board"])
            if row["col"] not in columns:
                return None
            index = columns.index(row["col"]) + delta
            if not 0 <= index < len(columns):
                return None
            self._move(db, change, row, columns[index], origin=origin, auto=False, reason=None)
            return columns[index]

    def archive(self, card_id: int, *, origin: str = "tui") -> bool:
        return self.move(card_id, ARCHIVE, origin=origin)

    def restore(self, card_id: int, *, origin: str = "tui") -> str:
        """Out of the archive: back to the column it came from (or the first)."""
        card = self.card(card_id)
        if card is None:
            raise BoardError(f"no card #{card_id}")
        columns = self.columns(card.board)
        target = card.archived_from if card.archived_from in columns else columns[0]
        assert target is not None
        self.move(card_id, target, origin=origin)
        return target

    def reorder(self, card_id: int, delta: int, *, among: Sequence[int] | None = None,
                origin: str = "tui") -> bool:
        """Swap places with the card above (-1) or below (+1) in its column; ``among``:
        the cards the user sees there (a filter hides the others). False at the edge."""
        with self._writing(origin) as (db, change):
            row = self._row(db, card_id)
            rows = db.execute(
                f"{_SELECT} WHERE board = ? AND col = ? AND deleted IS NULL"
                " ORDER BY position, id", (row["board"], row["col"])).fetchall()
            ids = [r["id"] for r in rows]
            visible = [i for i in ids if among is None or i in among or i == card_id]
            where = visible.index(card_id)
            other_at = where + delta
            if not 0 <= other_at < len(visible):
                return False
            other = visible[other_at]
            a, b = ids.index(card_id), ids.index(other)
            ids[a], ids[b] = ids[b], ids[a]
            by_id = {r["id"]: r for r in rows}
            for position, cid in enumerate(ids):
                self._update(db, change, by_id[cid], position=position)
            change.label = f"reorder #{card_id}"
            return True

    # -------------------------------------------------------------- edits

    def edit(self, card_id: int, changes: Mapping[str, Any], *,
             original: Mapping[str, Any] | None = None,
             params: Mapping[str, str | None] | None = None,
             metrics: Mapping[str, str | None] | None = None,
             origin: str = "tui") -> list[str]:
        """Change fields (title, hypothesis, notes, tags, priority, links, failed) and
        params/metrics (None removes one): one transaction, one undo step.

        ``original``: the values the user started from (a form); a field equal to its
        original is not written, so what another writer changed meanwhile stays (pass
        params/metrics as the diff against what the form showed, for the same reason).
        The fields and value keys that changed are returned.
        """
        fields: dict[str, Any] = {}
        for key, value in changes.items():
            if key not in EDITABLE:
                raise BoardError(f"cannot edit {key!r}")
            if original is not None and key in original and original[key] == value:
                continue
            if key == "title":
                fields["title"] = check_title(str(value))
            elif key in ("hypothesis", "notes"):
                fields[key] = str(value).strip("\n").rstrip()
            elif key == "tags":
                fields["tags"] = _dumps(parse_tags(value))
            elif key == "priority":
                fields["priority"] = parse_priority(value)
            elif key == "links":
                fields["links"] = _dumps(clean_links(value))
            elif key == "failed":
                fields["failed"] = str(value) if value else None
                fields["failed_at"] = self.clock.time() if value else None
        if not fields and not params and not metrics:
            return []
        with self._writing(origin) as (db, change):
            row = self._row(db, card_id)
            if fields.get("failed") is not None and row["failed"] is not None:
                fields.pop("failed_at", None)
            self._update(db, change, row, **fields)
            written = [k for k in fields if k in change.cards.get(card_id, {})]
            for kind, values in (("param", params), ("metric", metrics)):
                if values:
                    row = self._row(db, card_id)
                    written += self._set_values(db, change, row, kind, values)
            change.label = f"edit #{card_id}"
        if "links" in fields:
            self.follow_running_logs()
        return [k for k in written if k != "failed_at"]

    def set_values(self, card_id: int, kind: str, values: Mapping[str, str | None], *,
                   origin: str = "tui") -> list[str]:
        """Set hyperparameters (kind "param") or metrics ("metric"); None removes one.
        Each change is kept with its time. Returns the keys that changed."""
        if kind not in ("param", "metric"):
            raise BoardError(f"unknown kind {kind!r}")
        with self._writing(origin) as (db, change):
            row = self._row(db, card_id)
            changed = self._set_values(db, change, row, kind, values)
            change.label = f"{'params' if kind == 'param' else 'metrics'} of #{card_id}"
        return changed

    def set_params(self, card_id: int, values: Mapping[str, str | None], *,
                   origin: str = "tui") -> list[str]:
        return self.set_values(card_id, "param", values, origin=origin)

    def set_metrics(self, card_id: int, values: Mapping[str, str | None], *,
                    origin: str = "tui") -> list[str]:
        return self.set_values(card_id, "metric", values, origin=origin)

    def cycle_priority(self, card_id: int, *, origin: str = "tui") -> int:
        """none -> high -> medium -> low -> none."""
        card = self.card(card_id)
        if card is None:
            raise BoardError(f"no card #{card_id}")
        following = {0: 3, 3: 2, 2: 1, 1: 0}[card.priority]
        self.edit(card_id, {"priority": following}, origin=origin)
        return following

    def mark_failed(self, card_id: int, reason: str, *, origin: str = "auto") -> bool:
        now = self.clock.time()
        with self._writing(origin) as (db, change):
            row = self._row(db, card_id)
            done = self._update(db, change, row, failed=reason or "failed", failed_at=now)
            change.label = f"mark #{card_id} failed" + (" (automatic)" if origin == "auto"
                                                        else "")
        return done

    def delete(self, card_id: int, *, origin: str = "tui") -> None:
        """Hidden at once, kept ``KEEP_DELETED_DAYS`` (undo can bring it back)."""
        with self._writing(origin) as (db, change):
            row = self._row(db, card_id)
            self._update(db, change, row, deleted=self.clock.time())
            change.label = f"delete #{card_id}"

    # -------------------------------------------------------------- undo

    def undo(self, board: str | None = None) -> UndoResult | None:
        """Undo the newest change on the board's stack; None when there is none."""
        return self._travel(board or self.default_board(), undo=True)

    def redo(self, board: str | None = None) -> UndoResult | None:
        return self._travel(board or self.default_board(), undo=False)

    def can_undo(self, board: str | None = None) -> bool:
        return bool(self.store.query(
            "SELECT 1 FROM board_journal WHERE board = ? AND state = 'done' LIMIT 1",
            (board or self.default_board(),)))

    def _travel(self, board: str, *, undo: bool) -> UndoResult | None:
        """Undo (or redo) one journal entry. A field goes back only where it still holds
        what the entry left there; a move's history row goes with the column, a param's
        or metric's with its key: what another writer changed since stays, and the
        history stays consistent with the card."""
        with self.store.transaction() as db:
            if undo:
                entry = db.execute("SELECT id, label, changes FROM board_journal WHERE board = ?"
                                   " AND state = 'done' ORDER BY id DESC LIMIT 1",
                                   (board,)).fetchone()
            else:
                entry = db.execute("SELECT id, label, changes FROM board_journal WHERE board = ?"
                                   " AND state = 'undone' ORDER BY id ASC LIMIT 1",
                                   (board,)).fetchone()
            if entry is None:
                return None
            changes = json.loads(entry["changes"])
            now = self.clock.time()
            skipped = 0
            card_ids = [int(k) for k in changes["cards"]]
            for key, fields in changes["cards"].items():
                skipped += self._travel_card(db, int(key), fields, moves=changes["moves"],
                                             undo=undo, now=now)
            for item in changes["values"]:
                card_ids.append(int(item["card"]))
            skipped += self._travel_values(db, changes["values"], undo, now)
            db.execute("UPDATE board_journal SET state = ?, changes = ? WHERE id = ?",
                       ("undone" if undo else "done", _dumps(changes), entry["id"]))
        self.local_changes += 1
        self.follow_running_logs()
        return UndoResult(entry["label"], skipped, card_ids[0] if card_ids else None)

    @staticmethod
    def _travel_card(db: sqlite3.Connection, card_id: int, fields: dict[str, list[Any]], *,
                     moves: list[dict[str, Any]], undo: bool, now: float) -> int:
        row = db.execute(f"{_SELECT} WHERE id = ?", (card_id,)).fetchone()
        if row is None:  # purged
            return len(fields)
        skipped = 0
        sets: dict[str, Any] = {}
        for name, (old, new) in fields.items():
            expect, target = (new, old) if undo else (old, new)
            if row[name] == expect:
                sets[name] = target
            else:
                skipped += 1
        if sets:
            assignments = ", ".join(f"{k} = ?" for k in sets)
            db.execute(f"UPDATE board_cards SET {assignments}, updated = ?,"
                       " version = version + 1 WHERE id = ?", (*sets.values(), now, card_id))
        if "col" in sets:  # the history rows of its moves follow the column
            for move in (m for m in moves if m["card"] == card_id):
                if undo:
                    db.execute("DELETE FROM board_moves WHERE id = ?", (move["id"],))
                else:
                    cursor = db.execute(
                        "INSERT INTO board_moves(card, from_col, to_col, time, auto, origin,"
                        " reason) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (card_id, move["from_col"], move["to_col"], move["time"],
                         move["auto"], move["origin"], move["reason"]))
                    move["id"] = cursor.lastrowid
        return skipped

    @staticmethod
    def _travel_values(db: sqlite3.Connection, values: list[dict[str, Any]], undo: bool,
                       now: float) -> int:
        skipped = 0
        for item in (reversed(values) if undo else values):
            column = "params" if item["kind"] == "param" else "metrics"
            row = db.execute(f"SELECT {column}, deleted FROM board_cards WHERE id = ?",
                             (item["card"],)).fetchone()
            if row is None:
                skipped += 1
                continue
            current: dict[str, str] = json.loads(row[column])
            expect, target = ((item["value"], item["old"]) if undo
                              else (item["old"], item["value"]))
            if current.get(item["key"]) != expect:
                skipped += 1
                continue
            if target is None:
                current.pop(item["key"], None)
            else:
                current[item["key"]] = target
            if undo:
                db.execute("DELETE FROM board_values WHERE id = ?", (item["id"],))
            else:
                cursor = db.execute(
                    "INSERT INTO board_values(card, kind, key, value, time)"
                    " VALUES (?, ?, ?, ?, ?)",
                    (item["card"], item["kind"], item["key"], item["value"], item["time"]))
                item["id"] = cursor.lastrowid
            db.execute(f"UPDATE board_cards SET {column} = ?, updated = ?,"
                       " version = version + 1 WHERE id = ?",
                       (_dumps(current), now, item["card"]))
        return skipped

    # -------------------------------------------------------------- runs

    def log_name(self, card: Card) -> str | None:
        """The followed log a card's ``log`` link names: a [[logs]] name, an ad hoc
        "host:path", or a path on the card's ``host``."""
        link = card.links.get("log")
        if not link:
            return self._job_log(card)
        known = {lc.name for lc in self.config.logs}
        if self.logs is not None:
            known |= set(self.logs.tails)
        if link in known:
            return link
        head, sep, _rest = link.partition(":")
        hosts = {h.name for h in self.config.hosts} | {LOCAL_HOST}
        if sep and head in hosts:
            return link
        host = card.links.get("host")
        if host:
            return f"{host}:{link}"
        return link

    def card_host(self, card: Card) -> str | None:
        host = card.links.get("host")
        if host:
            return host
        name = self.log_name(card)
        if name is None:
            return None
        for lc in self.config.logs:
            if lc.name == name:
                return lc.host
        head, sep, _ = name.partition(":")
        return head if sep else None

    def has_run(self, card: Card) -> bool:
        return bool(card.links.get("host") or card.links.get("log") or card.links.get("job"))

    def card_job(self, card: Card) -> Job | None:
        """The Slurm job a ``job=CLUSTER:ID`` link names, as the jobs service last saw it."""
        link = card.links.get("job")
        if not link or self.jobs is None:
            return None
        cluster, _, ident = link.partition(":")
        return self.jobs.find(cluster, ident)

    def _job_log(self, card: Card) -> str | None:
        """``login-host:stdout`` of the card's job (followed like a log link)."""
        job = self.card_job(card)
        host = (self.jobs.login_host(job.cluster)
                if job is not None and self.jobs is not None else None)
        if job is None or host is None or not job.stdout:
            return None
        return f"{host}:{job.stdout}"

    def live(self, card: Card, now: float | None = None) -> LiveState:
        """The run's state now: GPU utilization, last log line, time running."""
        now = self.clock.time() if now is None else now
        host = self.card_host(card)
        name = self.log_name(card)
        sample = self.fleet.latest.get(host) if self.fleet is not None and host else None
        util, scope, gpus = gpu_utilization(sample, card.links.get("command"))
        last: str | None = None
        state: str | None = None
        if self.logs is not None and name:
            tail = self.logs.tails.get(name)
            if tail is not None and len(tail.buffer):
                last = tail.buffer[-1].text
            status = self.logs.statuses.get(name)
            if status is not None:
                state = str(status.state)
        running = now - card.entered if card.column == self.run_column(card.board) else None
        job = self.card_job(card)
        job_state = None
        if job is not None:
            job_state = str(job.state)
            running = job.elapsed_s(now)
        elif card.links.get("job"):
            job_state = "not in the queue"
        return LiveState(host=host, log=name, utilization=util, scope=scope, gpus=gpus,
                         last_line=last, running_for=running, log_state=state,
                         job_state=job_state)

    def follow_running_logs(self) -> list[str]:
        """Follow (ad hoc) the logs of cards in a run column that are not followed yet,
        so their alerts can move them. Returns the names newly followed."""
        if self.logs is None:
            return []
        opened = []
        try:
            rows = self.store.query(
                f"{_SELECT} WHERE archived IS NULL AND deleted IS NULL AND links != '{{}}'")
        except sqlite3.Error:
            return []
        for card in map(_card, rows):
            if card.column != self.run_column(card.board):
                continue
            name = self.log_name(card)
            if not name or name in self.logs.tails:
                continue
            host, sep, path = name.partition(":")
            if not sep:
                continue
            try:
                opened.append(self.logs.open_adhoc(host, path))
            except (KeyError, ValueError) as exc:
                log.debug("card #%d: log %s not followed: %s", card.id, name, exc)
        return opened

    # -------------------------------------------------------------- alerts

    def on_alert(self, alert: Alert) -> None:
        """A run alert of a card's log: move it (finished) or mark it failed, and name
        the card(s) in the alert (called before the alert is stored and delivered)."""
        if alert.outcome not in ("finished", "failed"):
            return
        if alert.log:
            cards = self._cards_of_log(alert.log)
        elif alert.extra.get("job") and alert.extra.get("cluster"):
            cards = self._cards_of_job(f"{alert.extra['cluster']}:{alert.extra['job']}")
        else:
            return
        named = []
        for card in cards:
            try:
                text = self._apply_outcome(card, alert)
            except (BoardError, sqlite3.Error) as exc:
                log.warning("card #%d: alert not applied: %s", card.id, exc)
                continue
            named.append((card, text))
        if not named:
            return
        alert.extra["cards"] = [card.id for card, _ in named]
        alert.message = (alert.message.rstrip() + " "
                         + " ".join(text for _card, text in named)).strip()

    def _on_alert_told(self, alert: Alert) -> None:
        before = alert.message
        self.on_alert(alert)
        if alert.message != before and self.alerts is not None:
            self.alerts.emit([Alert(time=alert.time, rule="board", severity="info",
                                    title=alert.title, message=alert.message[len(before):]
                                    .strip(), host=alert.host, log=alert.log,
                                    extra={"cards": alert.extra.get("cards", [])})])

    def _cards_of_log(self, name: str) -> list[Card]:
        rows = self.store.query(
            f"{_SELECT} WHERE archived IS NULL AND deleted IS NULL AND links != '{{}}'"
            " ORDER BY id")
        return [c for c in map(_card, rows) if self.log_name(c) == name]

    def _cards_of_job(self, link: str) -> list[Card]:
        rows = self.store.query(
            f"{_SELECT} WHERE archived IS NULL AND deleted IS NULL AND links != '{{}}'"
            " ORDER BY id")
        return [c for c in map(_card, rows) if c.links.get("job") == link]

    def _apply_outcome(self, card: Card, alert: Alert) -> str:
        title = clean_text(card.title, 60)
        if alert.outcome == "failed":
            reason = clean_text(alert.line or alert.title, 200) or alert.title
            self.mark_failed(card.id, reason, origin="auto")
            return f"Card #{card.id} \u201c{title}\u201d is marked failed."
        columns = self.columns(card.board)
        target = self.finished_column(card.board)
        if target is None or card.column not in columns:
            return f"Card #{card.id} \u201c{title}\u201d."
        if columns.index(card.column) >= columns.index(target):
            return f"Card #{card.id} \u201c{title}\u201d (already in {card.column})."
        self.move(card.id, target, origin="auto", auto=True,
                  reason=clean_text(alert.title, 200))
        return f"Card #{card.id} \u201c{title}\u201d moved to {target}."

    # -------------------------------------------------------------- export

    def markdown(self, card_id: int) -> str:
        card = self.card(card_id)
        if card is None:
            raise BoardError(f"no card #{card_id}")
        return card_markdown(card, self.history(card_id), now=self.clock.time(),
                             run_col=self.run_column(card.board))

    def export_markdown(self, board: str | None = None) -> str:
        now = self.clock.time()
        names = [board] if board else [b.name for b in self.boards()]
        out: list[str] = []
        for name in names:
            out.append(f"# Board: {name}\n")
            cards = self.all_cards(name)
            by_col: dict[str, list[Card]] = {}
            for card in sorted(cards, key=lambda c: (c.position, c.id)):
                by_col.setdefault(card.column, []).append(card)
            run_col = self.run_column(name)
            for col in [*self.columns(name), *(c for c in by_col if c not in self.columns(name)
                                               and c != ARCHIVE), ARCHIVE]:
                group = by_col.get(col, [])
                if not group:
                    continue
                out.append(f"## {col} ({len(group)})\n")
                for card in group:
                    out.append(card_markdown(card, self.history(card.id), now=now,
                                             run_col=run_col, level=3))
        return "\n".join(out)

    def export(self, board: str | None = None) -> dict[str, Any]:
        """Every card (archived ones too) with its column, params and their history,
        metrics (and history), links, moves and time per column."""
        now = self.clock.time()
        boards = [b for b in self.boards() if board is None or b.name == board]
        if board is not None and not boards:
            boards = [self.board_config(board)]
        cards = self.all_cards(board)
        ids = [c.id for c in cards]
        values: dict[int, list[sqlite3.Row]] = {}
        moves: dict[int, list[sqlite3.Row]] = {}
        if ids:
            for row in self.store.query(
                    "SELECT * FROM board_values WHERE card IN (SELECT id FROM board_cards"
                    " WHERE deleted IS NULL" + (" AND board = ?" if board else "") + ")"
                    " ORDER BY id", (board,) if board else ()):
                values.setdefault(row["card"], []).append(row)
            for row in self.store.query(
                    "SELECT * FROM board_moves WHERE card IN (SELECT id FROM board_cards"
                    " WHERE deleted IS NULL" + (" AND board = ?" if board else "") + ")"
                    " ORDER BY id", (board,) if board else ()):
                moves.setdefault(row["card"], []).append(row)
        out_cards = []
        for card in cards:
            card_moves = [Move(r["id"], r["from_col"], r["to_col"], r["time"], bool(r["auto"]),
                               r["origin"], r["reason"]) for r in moves.get(card.id, [])]
            history = CardHistory(
                [ValueChange(r["id"], r["kind"], r["key"], r["value"], r["time"])
                 for r in values.get(card.id, [])], card_moves)
            run_col = self.run_column(card.board)
            out_cards.append({
                "id": card.id, "board": card.board, "column": card.column,
                "position": card.position, "title": card.title,
                "hypothesis": card.hypothesis, "notes": card.notes, "tags": card.tags,
                "priority": card.priority_label or None,
                "failed": card.failed, "failed_at": iso(card.failed_at),
                "links": card.links, "params": card.params,
                "param_history": [{"key": v.key, "value": v.value, "time": iso(v.time)}
                                  for v in history.values if v.kind == "param"],
                "metrics": card.metrics,
                "metric_history": [{"key": v.key, "value": v.value, "time": iso(v.time)}
                                   for v in history.values if v.kind == "metric"],
                "moves": [{"from": m.from_col, "to": m.to_col, "time": iso(m.time),
                           "auto": m.auto, "origin": m.origin, "reason": m.reason}
                          for m in card_moves],
                "attempts": [{"number": a.number, "started": iso(a.started),
                              "ended": iso(a.ended), "params": a.params,
                              "changed": {k: list(v) for k, v in a.changed.items()}}
                             for a in attempts(history, run_col)],
                "seconds_in_columns": {k: round(v, 3) for k, v in
                                       stage_times(card, card_moves, now).items()},
                "created": iso(card.created), "updated": iso(card.updated),
                "entered": iso(card.entered), "archived": iso(card.archived),
            })
        return {
            "exported": iso(now),
            "boards": [{"name": b.name, "columns": board_columns(b), "wip": b.wip,
                        "finished_column": finished_column(board_columns(b),
                                                           self.config.board.finished_column),
                        "run_column": run_column(board_columns(b),
                                                 self.config.board.finished_column)}
                       for b in boards],
            "cards": out_cards,
        }


def make_service(*, config: Config, store: Store, clock: Clock, fleet: FleetLike | None = None,
                 logs: LogsLike | None = None, alerts: AlertsLike | None = None) -> BoardService:
    """The board feature's service (nomadlab/features.py)."""
    return BoardService(config, store, clock, fleet=fleet, logs=logs, alerts=alerts)
