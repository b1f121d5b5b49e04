"""The store's schema: each component's numbered list of migrations (core/store.py
applies them). Add a component for a new feature; change a schema by appending a step
to its list, never by editing or renumbering one."""

from __future__ import annotations

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
