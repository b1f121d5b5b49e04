"""SQLite (WAL): the one place that writes user state.

Each component (fleet, alerts, board, ...) owns a numbered list of migrations; the
``schema_version`` table records how far each has been applied. Adding a component
or a migration never renumbers another's. Writers use ``transaction()`` (BEGIN
IMMEDIATE), so a second process (another TUI, the CLI) waits its turn instead of
losing an update, and ``data_version()`` tells a reader that someone else wrote.

Change broadcast: ``subscribe()`` a listener and it hears, after each commit of this
process, which features wrote (``transaction("fleet")``; ``ALL`` when the writer did
not say), and, from ``check_changes()`` (one timer in the TUI), that another process
wrote (``PRAGMA data_version``) or a write went past ``transaction()``.
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from nomadlab.core.migrations import MIGRATIONS

__all__ = ["ALL", "MIGRATIONS", "Store", "StoreError", "describe_error"]

_log = logging.getLogger(__name__)

ALL = "*"  # a change to any feature's tables (the writer did not say, or another process)

ChangeListener = Callable[[frozenset[str]], None]


class StoreError(Exception):
    """The database cannot be opened or is not ours."""


def _disk_full(path: Path | str | None, below: int = 1 << 20) -> bool:
    """Whether the filesystem holding ``path`` has (almost) no space left: SQLite says
    "disk I/O error" when it cannot even create its -wal or -shm file."""
    if path is None:
        return False
    try:
        return shutil.disk_usage(Path(path).parent).free < below
    except OSError:
        return False


def _read_only(path: Path | str | None) -> bool:
    """Whether the database's folder cannot be written (a read-only filesystem: SQLite
    cannot create its -shm file and says "unable to open database file")."""
    if path is None:
        return False
    folder = Path(path).parent
    return folder.is_dir() and not os.access(folder, os.W_OK)


def describe_error(exc: sqlite3.Error, path: Path | str | None) -> str:
    """One line for the user about a database error: what happened and what to do.

    A full disk, a read-only file or filesystem, and a damaged file each get their own
    words; a damaged file also says where it is and how to keep a copy and recover it.
    """
    text = str(exc) or type(exc).__name__
    where = str(path) if path is not None else "the nomadlab database"
    lowered = text.lower()
    if "disk is full" in lowered or ("i/o error" in lowered and _disk_full(path)):
        folder = str(Path(path).parent) if path is not None else "its folder"
        return (f"cannot write {where}: the disk is full ({text}); "
                f"free some space on the filesystem of {folder} and try again")
    if "readonly" in lowered or "read-only" in lowered or (
            ("unable to open" in lowered or "i/o error" in lowered) and _read_only(path)):
        return (f"cannot write {where}: the file or its filesystem is read-only ({text}); "
                "make it writable, or set data_dir in the config to a writable folder")
    if "malformed" in lowered or "not a database" in lowered or "corrupt" in lowered:
        if path is None:
            return f"the nomadlab database is damaged ({text})"
        q = shlex.quote(str(path))
        saved = shlex.quote(f"{path}.damaged")
        recovered = shlex.quote(f"{path}.recovered")
        return (f"the database {where} is damaged ({text}). Keep a copy "
                f"(cp {q} {saved}, and {shlex.quote(f'{path}-wal')} if there is one), "
                f"recover what it holds (sqlite3 {saved} .recover | sqlite3 {recovered}), "
                f"then mv {recovered} {q}; with the file moved away nomadlab starts a new, "
                "empty database")
    if "unable to open" in lowered:
        return f"cannot open {where}: {text}"
    return f"{where}: {text}"


class Store:
    def __init__(self, path: Path | str, *, timeout: float = 10.0) -> None:
        self._listeners: list[ChangeListener] = []
        self._listeners_lock = threading.Lock()
        self._touched: set[str] = set()  # features written in the open transaction
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
            raise StoreError(describe_error(exc, path)) from None
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
            raise StoreError(describe_error(exc, path)) from None
        if self.path is not None:
            try:
                os.chmod(self.path, 0o600)
            except OSError:
                pass
        self._seen_version = self.data_version()
        self._seen_changes = self.db.total_changes

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
    def transaction(self, *features: str) -> Iterator[sqlite3.Connection]:
        """One write transaction; nested uses join the outer one. After the commit the
        listeners hear ``features`` (the components written; none said: ``ALL``)."""
        if self.db.in_transaction:
            self._touched.update(features or (ALL,))
            yield self.db
            return
        self.db.execute("BEGIN IMMEDIATE")
        self._touched = set(features or (ALL,))
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            self._touched = set()
            self._seen_changes = self.db.total_changes  # counted, but nothing changed
            raise
        else:
            self.db.execute("COMMIT")
            touched, self._touched = frozenset(self._touched), set()
            self._seen_changes = self.db.total_changes
            self._announce(touched)

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        return self.db.execute(sql, params).fetchall()

    def data_version(self) -> int:
        """Changes when another connection commits (PRAGMA data_version)."""
        return int(self.db.execute("PRAGMA data_version").fetchone()[0])

    # ------------------------------------------------------------------ changes

    def subscribe(self, listener: ChangeListener) -> Callable[[], None]:
        """Call ``listener(features)`` after every change (in the writing thread);
        returns the function that unsubscribes it."""
        with self._listeners_lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._listeners_lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def check_changes(self) -> bool:
        """Did another process commit (data_version), or this connection write outside
        ``transaction()``, since the last look? Then the listeners hear ``ALL``."""
        version, changes = self.data_version(), self.db.total_changes
        if (version, changes) == (self._seen_version, self._seen_changes):
            return False
        self._seen_version, self._seen_changes = version, changes
        self._announce(frozenset((ALL,)))
        return True

    def _announce(self, features: frozenset[str]) -> None:
        with self._listeners_lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(features)
            except Exception:  # the write is committed: a listener's failure is its own
                _log.exception("a store change listener failed")

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
