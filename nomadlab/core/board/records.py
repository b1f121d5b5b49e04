"""The board's rows: cards read from the store, the boards and columns configured,
and the write helpers every change goes through (one transaction, journaled for undo);
the base of :class:`~nomadlab.core.board.service.BoardService`."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from nomadlab.core.board.model import (
    BoardError,
    Card,
    CardHistory,
    Move,
    ValueChange,
    board_columns,
    finished_column,
    matches,
    resolve_column,
    run_column,
)
from nomadlab.core.clock import Clock
from nomadlab.core.config import BoardConfig, Config
from nomadlab.core.store import Store

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


class BoardRecords:
    """Cards over the store; the attributes are set by BoardService.__init__."""

    config: Config
    store: Store
    clock: Clock
    local_changes: int

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
