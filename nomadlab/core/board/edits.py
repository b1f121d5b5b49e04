"""The board's changes: adding, moving, editing, failing and deleting cards, and
undo/redo over the stored journal."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from nomadlab.core.board.model import (
    ARCHIVE,
    EDITABLE,
    BoardError,
    check_title,
    clean_links,
    finished_column,
    parse_priority,
    parse_tags,
    resolve_column,
)
from nomadlab.core.board.records import (
    _SELECT,
    UndoResult,
    _Change,
    _dumps,
)
from nomadlab.core.board.runs import BoardRuns


class BoardEdits(BoardRuns):
    """Every change a person, a script or an alert makes to a card."""

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
