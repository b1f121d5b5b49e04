"""SQLite (WAL): the one place that writes user state.

Each component (fleet, alerts, board, ...) owns a numbered list of migrations; the
``schema_version`` table records how far each has been applied. Adding a component
or a migration never renumbers another's. Writers use ``transaction()`` (BEGIN
IMMEDIATE), so a second process (another TUI, the CLI) waits its turn instead of
losing an update, and ``data_version()`` tells a reader that someone else wrote.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

MIGRATIONS: dict[str, list[str]] = {
    "core": [
        """
        CREATE TABLE kv (
            key TEXT PRIMARY KEY,
            value TEXT NOT NULL,
            updated REAL NOT NULL
        );
        """,
    ],
    "fleet": [
        """
        CREATE TABLE gpu_minutes (
            host TEXT NOT NULL,
            gpu_uuid TEXT NOT NULL,
            gpu_index INTEGER NOT NULL,
            gpu_name TEXT NOT NULL,
            minute INTEGER NOT NULL,          -- unix time // 60
            samples INTEGER NOT NULL,
            util_avg REAL,
            memory_avg_mib REAL,
            memory_total_mib REAL,
            power_avg_w REAL,
            busy INTEGER NOT NULL,            -- 1 when any process ran in the minute
            hourly_cost REAL,                 -- the host's cost per hour then, if known
            gpus_on_host INTEGER NOT NULL DEFAULT 1,
            PRIMARY KEY (host, gpu_uuid, minute)
        );
        CREATE INDEX gpu_minutes_minute ON gpu_minutes (minute);
        """,
    ],
    "alerts": [
        """
        CREATE TABLE alerts (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            time REAL NOT NULL,               -- wall clock when it was raised
            rule TEXT NOT NULL,
            severity TEXT NOT NULL,           -- info, warning, error
            title TEXT NOT NULL,
            message TEXT NOT NULL,
            host TEXT,
            log TEXT,
            outcome TEXT,                     -- finished, failed
            line TEXT,                        -- the matching log line (cut)
            acknowledged REAL,                -- wall clock, NULL until seen
            extra TEXT NOT NULL DEFAULT '{}'  -- JSON object
        );
        CREATE INDEX alerts_time ON alerts (time);
        CREATE INDEX alerts_unacknowledged ON alerts (time) WHERE acknowledged IS NULL;
        """,
    ],
}


class StoreError(Exception):
    """The database cannot be opened or is not ours."""


class Store:
    def __init__(self, path: Path | str, *, timeout: float = 10.0) -> None:
        self.path = Path(path) if str(path) != ":memory:" else None
        if self.path is not None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            except OSError as exc:
                raise StoreError(f"{path}: cannot create {self.path.parent}: "
                                 f"{exc.strerror or exc}") from None
        try:
            self.db = sqlite3.connect(
                str(path), timeout=timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreError(f"{path}: {exc}") from None
        try:
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self.db.execute(f"PRAGMA busy_timeout={int(timeout * 1000)}")
            self._migrate()
        except StoreError:
            self.db.close()
            raise
        except sqlite3.Error as exc:
            self.db.close()
            raise StoreError(f"{path}: {exc}") from None
        if self.path is not None:
            try:
                os.chmod(self.path, 0o600)
            except OSError:
                pass

    # ------------------------------------------------------------------ schema

    def _migrate(self) -> None:
        with self.transaction():
            self.db.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                " component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
            )
            applied = {
                row["component"]: row["version"]
                for row in self.db.execute("SELECT component, version FROM schema_version")
            }
            for component, steps in MIGRATIONS.items():
                have = applied.get(component, 0)
                if have > len(steps):
                    raise StoreError(
                        f"{self.path}: written by a newer nomadlab ({component} schema {have},"
                        f" this version knows {len(steps)})"
                    )
                for number in range(have, len(steps)):
                    for statement in _statements(steps[number]):
                        self.db.execute(statement)
                if len(steps) != have:
                    self.db.execute(
                        "INSERT INTO schema_version(component, version) VALUES (?, ?)"
                        " ON CONFLICT(component) DO UPDATE SET version = excluded.version",
                        (component, len(steps)),
                    )

    def schema_versions(self) -> dict[str, int]:
        return {
            row["component"]: row["version"]
            for row in self.db.execute("SELECT component, version FROM schema_version")
        }

    # ------------------------------------------------------------------ access

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; nested uses join the outer one."""
        if self.db.in_transaction:
            yield self.db
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        else:
            self.db.execute("COMMIT")

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        return self.db.execute(sql, params).fetchall()

    def data_version(self) -> int:
        """Changes when another connection commits (PRAGMA data_version)."""
        return int(self.db.execute("PRAGMA data_version").fetchone()[0])

    # ------------------------------------------------------------------ small state

    def get_state(self, key: str, default: Any = None) -> Any:
        row = self.db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        if row is None:
            return default
        try:
            return json.loads(row["value"])
        except ValueError:
            return default

    def set_state(self, key: str, value: Any, now: float) -> None:
        with self.transaction():
            self.db.execute(
                "INSERT INTO kv(key, value, updated) VALUES (?, ?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value,"
                " updated = excluded.updated",
                (key, json.dumps(value), now),
            )

    def close(self) -> None:
        try:
            self.db.close()
        except sqlite3.Error:
            pass


def _statements(script: str) -> list[str]:
    """Split a migration into statements (executescript would commit mid-migration)."""
    out: list[str] = []
    buffer = ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            if not _only_comments(buffer.rstrip(";")):
                out.append(buffer.strip())
            buffer = ""
    return out


def _only_comments(text: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in text.splitlines())
