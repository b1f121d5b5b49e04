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
    "papers": [
        """
        CREATE TABLE papers (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            title TEXT NOT NULL DEFAULT '',   -- '' while metadata is pending
            title_key TEXT,                   -- normalised title: duplicates without ids
            authors TEXT NOT NULL DEFAULT '[]',     -- JSON list of names
            year INTEGER,
            venue TEXT,                       -- journal ref, container title, booktitle
            abstract TEXT,
            arxiv_id TEXT,                    -- without version: 2104.12255, astro-ph/0601001
            arxiv_version INTEGER,
            doi TEXT,
            url TEXT,                         -- the abstract page
            pdf_url TEXT,
            categories TEXT NOT NULL DEFAULT '[]',  -- JSON list, primary first
            tags TEXT NOT NULL DEFAULT '[]',        -- JSON list
            entry_type TEXT,                  -- BibTeX type: article, misc, ...
            bibtex_key TEXT,
            priority INTEGER NOT NULL DEFAULT 0,    -- higher first
            status TEXT NOT NULL DEFAULT 'queued'
                CHECK (status IN ('queued', 'reading', 'read', 'dropped')),
            added REAL NOT NULL,
            started REAL,                     -- counts against the weekly cap of its week
            finished REAL,                    -- read or dropped
            over_cap INTEGER NOT NULL DEFAULT 0,    -- started past the cap, confirmed
            rating INTEGER,                   -- 1 to 5
            notes TEXT NOT NULL DEFAULT '',   -- Markdown
            takeaway TEXT,                    -- one line, asked for when marked read
            metadata TEXT NOT NULL DEFAULT 'complete',  -- complete, pending, manual,
                                              -- missing, invalid
            metadata_error TEXT,
            attempts INTEGER NOT NULL DEFAULT 0,    -- failed lookups in a row
            next_attempt REAL,                -- when a pending lookup is tried again
            card_wanted INTEGER NOT NULL DEFAULT 0, -- a Hypothesis card waits for the board
            updated REAL NOT NULL
        );
        CREATE UNIQUE INDEX papers_arxiv ON papers (arxiv_id) WHERE arxiv_id IS NOT NULL;
        CREATE UNIQUE INDEX papers_doi ON papers (lower(doi)) WHERE doi IS NOT NULL;
        CREATE INDEX papers_title ON papers (title_key);
        CREATE INDEX papers_started ON papers (started) WHERE started IS NOT NULL;
        CREATE INDEX papers_pending ON papers (next_attempt) WHERE metadata = 'pending';
        CREATE TABLE paper_links (
            paper_id INTEGER NOT NULL REFERENCES papers (id) ON DELETE CASCADE,
            kind TEXT NOT NULL,               -- card
            target TEXT NOT NULL,             -- the board card id
            created REAL NOT NULL,
            PRIMARY KEY (paper_id, kind, target)
        );
        CREATE TABLE paper_reviews (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            time REAL NOT NULL,
            week TEXT NOT NULL,               -- ISO week, 2026-W47
            kept INTEGER NOT NULL DEFAULT 0,
            dropped INTEGER NOT NULL DEFAULT 0,
            raised INTEGER NOT NULL DEFAULT 0,
            picked INTEGER NOT NULL DEFAULT 0
        );
        """,
    ],
    "board": [
        """
        CREATE TABLE board_cards (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            board TEXT NOT NULL,              -- a board (project) name
            col TEXT NOT NULL,                -- a column of the board, or Archive
            position INTEGER NOT NULL,        -- order within the column, ascending
            title TEXT NOT NULL,
            hypothesis TEXT NOT NULL DEFAULT '',  -- Markdown
            notes TEXT NOT NULL DEFAULT '',       -- Markdown
            tags TEXT NOT NULL DEFAULT '[]',      -- JSON list of strings
            priority INTEGER NOT NULL DEFAULT 0,  -- 0 none, 1 low, 2 medium, 3 high
            params TEXT NOT NULL DEFAULT '{}',    -- JSON: current hyperparameters
            metrics TEXT NOT NULL DEFAULT '{}',   -- JSON: current metrics
            links TEXT NOT NULL DEFAULT '{}',     -- JSON: host, log, paper, commit, branch, command
            failed TEXT,                      -- why its run failed (an alert); NULL: not failed
            failed_at REAL,
            archived_from TEXT,               -- the column it was archived from
            created REAL NOT NULL,
            updated REAL NOT NULL,
            entered REAL NOT NULL,            -- when it entered its current column
            archived REAL,
            deleted REAL,                     -- deleted cards are kept a while (undo)
            version INTEGER NOT NULL DEFAULT 1  -- bumped by every change
        );
        CREATE INDEX board_cards_place ON board_cards (board, col, position);
        CREATE INDEX board_cards_open ON board_cards (board, col, position)
            WHERE archived IS NULL AND deleted IS NULL;
        CREATE TABLE board_values (           -- every change of a hyperparameter or metric
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            card INTEGER NOT NULL REFERENCES board_cards(id) ON DELETE CASCADE,
            kind TEXT NOT NULL,               -- param, metric
            key TEXT NOT NULL,
            value TEXT,                       -- NULL: removed
            time REAL NOT NULL
        );
        CREATE INDEX board_values_card ON board_values (card, kind, id);
        CREATE TABLE board_moves (            -- each column a card entered (from_col NULL: new)
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            card INTEGER NOT NULL REFERENCES board_cards(id) ON DELETE CASCADE,
            from_col TEXT,
            to_col TEXT NOT NULL,
            time REAL NOT NULL,
            auto INTEGER NOT NULL DEFAULT 0,  -- 1: moved by a run alert
            origin TEXT NOT NULL,             -- tui, cli, auto, api
            reason TEXT
        );
        CREATE INDEX board_moves_card ON board_moves (card, id);
        CREATE INDEX board_moves_time ON board_moves (time);
        CREATE TABLE board_journal (          -- undo/redo per board, newest last
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            board TEXT NOT NULL,
            time REAL NOT NULL,
            origin TEXT NOT NULL,             -- tui, auto
            label TEXT NOT NULL,
            changes TEXT NOT NULL,            -- JSON: fields before/after, rows added
            state TEXT NOT NULL DEFAULT 'done'  -- done, undone
        );
        CREATE INDEX board_journal_board ON board_journal (board, state, id);
        """,
    ],
    "focus": [
        """
        CREATE TABLE focus_blocks (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            day TEXT NOT NULL,                -- the focus day, YYYY-MM-DD
            start INTEGER NOT NULL,           -- minutes after the local midnight of day
            minutes INTEGER NOT NULL CHECK (minutes > 0),
            kind TEXT NOT NULL,               -- deep, sprint, pomodoro, light
            purpose_kind TEXT NOT NULL DEFAULT 'none',  -- card, paper, text, none
            purpose_ref TEXT,                 -- the card or paper id
            purpose TEXT NOT NULL DEFAULT ''  -- what it is for, as shown
        );
        CREATE INDEX focus_blocks_day ON focus_blocks (day, start);
        CREATE TABLE focus_sessions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            preset TEXT NOT NULL,
            kind TEXT NOT NULL,
            purpose_kind TEXT NOT NULL DEFAULT 'none',
            purpose_ref TEXT,
            purpose TEXT NOT NULL DEFAULT '',
            started REAL NOT NULL,            -- wall clock
            planned REAL NOT NULL,            -- seconds
            extended REAL NOT NULL DEFAULT 0, -- seconds added since
            state TEXT NOT NULL CHECK (state IN
                ('running', 'paused', 'completed', 'finished', 'abandoned')),
            ended REAL,                       -- wall clock; completed: when time ran out
            block INTEGER REFERENCES focus_blocks(id) ON DELETE SET NULL,
            notified INTEGER NOT NULL DEFAULT 0  -- 1 once the end notice was sent or skipped
        );
        -- One timer at a time, across every process: at most one open session.
        CREATE UNIQUE INDEX focus_one_open ON focus_sessions ((state IN ('running', 'paused')))
            WHERE state IN ('running', 'paused');
        CREATE INDEX focus_sessions_started ON focus_sessions (started);
        CREATE INDEX focus_sessions_unnotified ON focus_sessions (id) WHERE notified = 0;
        CREATE TABLE focus_pauses (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            session INTEGER NOT NULL REFERENCES focus_sessions(id) ON DELETE CASCADE,
            started REAL NOT NULL,
            ended REAL                        -- NULL while paused
        );
        CREATE INDEX focus_pauses_session ON focus_pauses (session);
        CREATE TABLE focus_interruptions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            session INTEGER NOT NULL REFERENCES focus_sessions(id) ON DELETE CASCADE,
            time REAL NOT NULL,
            note TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX focus_interruptions_session ON focus_interruptions (session);
        CREATE TABLE focus_days (
            day TEXT PRIMARY KEY,
            note TEXT NOT NULL DEFAULT '',
            updated REAL NOT NULL
        );
        CREATE TABLE focus_retros (
            week TEXT PRIMARY KEY,            -- ISO week, 2026-W48
            worked TEXT NOT NULL DEFAULT '',
            didnt TEXT NOT NULL DEFAULT '',
            change TEXT NOT NULL DEFAULT '',
            updated REAL NOT NULL
        );
        """,
    ],
    "energy": [
        """
        CREATE TABLE gpu_energy (
            host TEXT NOT NULL,
            gpu_uuid TEXT NOT NULL,
            minute INTEGER NOT NULL,          -- unix time // 60
            energy_mj INTEGER NOT NULL,       -- the GPU's total energy counter (NVML), mJ
            kwh_price REAL,                   -- the host's price per kWh then, if known
            PRIMARY KEY (host, gpu_uuid, minute)
        );
        """,
    ],
    "jobs": [
        """
        CREATE TABLE job_runs (
            cluster TEXT NOT NULL,
            job TEXT NOT NULL,                -- "123" or "123_4"
            name TEXT NOT NULL,
            user TEXT NOT NULL,
            state TEXT NOT NULL,
            gpus INTEGER,
            start_time REAL,                  -- wall clock; NULL while pending
            end_time REAL,                    -- wall clock when final
            seen REAL NOT NULL,               -- the last poll that saw it
            PRIMARY KEY (cluster, job)
        );
        CREATE INDEX job_runs_start ON job_runs (start_time);
        """,
    ],
}


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
