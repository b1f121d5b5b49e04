"""Papers: a reading queue that keeps to the two-paper rule. No Textual, no sockets.

Papers are added by arXiv id or URL, DOI, BibTeX or title, and saved at once; their
metadata comes from arXiv or Crossref through a :class:`MetadataSource` (the network
side lives in ``nomadlab/remote/papers_api.py``). Offline, a paper waits as "metadata
pending" and is filled in later: by the service's own loop in the TUI, and by every
``nomadlab paper`` command. Duplicates (same arXiv id without version, same DOI, same
title for papers without ids) are merged, never added twice.

The rule: at most ``[papers] weekly_cap`` papers started per ISO week (local time);
starting one more needs ``anyway=True`` (the UI asks, the CLI wants ``--anyway``). A
weekly review triages what was added since the last one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from nomadlab.core import editor as _editor
from nomadlab.core.clock import SYSTEM_CLOCK, Clock
from nomadlab.core.config import WEEKDAYS, Config
from nomadlab.core.papers_formats import (
    PaperMeta,
    clean_space,
    parse_bibtex,
    to_bibtex,
    to_markdown,
)
from nomadlab.core.papers_ids import (
    ArxivId,
    IdError,
    Source,
    classify,
    doi_key,
    match_arxiv,
    normalise_title,
)
from nomadlab.core.store import Store
from nomadlab.core.text import strip_controls

STATUSES = ("queued", "reading", "read", "dropped")
STATUS_ORDER = {"reading": 0, "queued": 1, "read": 2, "dropped": 3}
# How far a paper got: when two copies merge, the further one's state wins.
STATUS_RANK = {"dropped": 0, "queued": 1, "reading": 2, "read": 3}
# Metadata states: complete (from a service or BibTeX), pending (a lookup is due),
# manual (a title only: nothing to look up), missing (the service has no such paper),
# invalid (the service rejected the id).
METADATA_STATES = ("complete", "pending", "manual", "missing", "invalid")
BACKOFF_FIRST = 30.0  # seconds before the first retry of a failed lookup
BACKOFF_MAX = 1800.0
ARXIV_BATCH = 50  # ids per arXiv request (id_list)
ARXIV_MIN_INTERVAL = 3.0  # arXiv's terms for its real API, whatever the config says


class PaperError(Exception):
    """Something about a paper the user can fix (unknown id, wrong state, ...)."""


class CapReached(PaperError):
    """Starting this paper would go past the weekly cap."""

    def __init__(self, started: int, cap: int, week: str) -> None:
        self.started = started
        self.cap = cap
        self.week = week
        super().__init__(
            f"weekly cap reached: {started} of {cap} papers started this week ({week}); "
            "better two understood than twenty skimmed: start it next week, or anyway.")


class LookupFailed(Exception):
    """A metadata lookup did not get an answer (transient) or got a refusal (not)."""

    def __init__(self, message: str, *, transient: bool = True,
                 bad_ids: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.transient = transient
        self.bad_ids = set(bad_ids)  # arXiv: the ids it called malformed


class MetadataSource(Protocol):
    """Where metadata comes from (nomadlab.remote.papers_api.PaperApi). Blocking: the
    service calls it from a worker thread in the TUI. ``deadline`` is on the clock's
    monotonic scale; None waits as long as the configured timeouts allow."""

    def fetch_arxiv(self, ids: Sequence[str], deadline: float | None = None
                    ) -> dict[str, PaperMeta]:
        """Versionless id -> metadata for the ids arXiv knows; the others are absent."""
        ...

    def fetch_doi(self, doi: str, deadline: float | None = None) -> PaperMeta | None:
        """The work, or None when Crossref does not know the DOI."""
        ...


@dataclass(slots=True)
class Paper:
    id: int
    title: str = ""
    authors: list[str] = field(default_factory=list)
    year: int | None = None
    venue: str | None = None
    abstract: str | None = None
    arxiv_id: str | None = None
    arxiv_version: int | None = None
    doi: str | None = None
    url: str | None = None
    pdf_url: str | None = None
    categories: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)
    entry_type: str | None = None
    bibtex_key: str | None = None
    priority: int = 0
    status: str = "queued"
    added: float = 0.0
    started: float | None = None
    finished: float | None = None
    over_cap: bool = False
    rating: int | None = None
    notes: str = ""
    takeaway: str | None = None
    metadata: str = "complete"
    metadata_error: str | None = None
    attempts: int = 0
    next_attempt: float | None = None
    card_wanted: bool = False
    updated: float = 0.0
    cards: list[int] = field(default_factory=list)

    @property
    def ident(self) -> str:
        """arXiv:2104.12255, doi:10.1038/x, or '' for a paper known by its title only."""
        if self.arxiv_id:
            return f"arXiv:{self.arxiv_id}" + (f"v{self.arxiv_version}"
                                                if self.arxiv_version else "")
        if self.doi:
            return f"doi:{self.doi}"
        return ""

    @property
    def has_ids(self) -> bool:
        return bool(self.arxiv_id or self.doi)

    @property
    def label(self) -> str:
        """The title, or what stands for it while metadata is pending."""
        return self.title or self.ident or f"paper #{self.id}"

    @property
    def open_url(self) -> str | None:
        if self.url:
            return self.url
        if self.arxiv_id:
            return ArxivId(self.arxiv_id).abs_url
        if self.doi:
            return f"https://doi.org/{self.doi}"
        return None

    @property
    def pdf(self) -> str | None:
        if self.pdf_url:
            return self.pdf_url
        if self.arxiv_id:
            return ArxivId(self.arxiv_id).pdf_url
        return None

    def short_authors(self, limit: int = 2) -> str:
        if not self.authors:
            return ""
        if len(self.authors) <= limit:
            return ", ".join(self.authors)
        return ", ".join(self.authors[:limit]) + " et al."

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (``nomadlab paper list --json``)."""
        return {
            "id": self.id, "title": self.title, "authors": self.authors, "year": self.year,
            "venue": self.venue, "abstract": self.abstract, "arxiv_id": self.arxiv_id,
            "arxiv_version": self.arxiv_version, "doi": self.doi, "url": self.open_url,
            "pdf_url": self.pdf, "categories": self.categories, "tags": self.tags,
            "priority": self.priority, "status": self.status, "added": _iso(self.added),
            "started": _iso(self.started), "finished": _iso(self.finished),
            "over_cap": self.over_cap, "rating": self.rating, "notes": self.notes,
            "takeaway": self.takeaway, "metadata": self.metadata,
            "metadata_error": self.metadata_error, "cards": self.cards,
            "card_pending": self.card_wanted,
        }


def _stored(value: Any) -> Any:
    """Text from outside (a service, a BibTeX file, a form) as it is stored: escape
    sequences and control characters other than newline and tab removed."""
    if isinstance(value, str):
        return strip_controls(value)
    if isinstance(value, list):
        return [strip_controls(v) if isinstance(v, str) else v for v in value]
    return value


def stored_meta(meta: PaperMeta) -> PaperMeta:
    """``meta`` with every text field cleaned for storing (see :func:`_stored`)."""
    return dataclasses.replace(meta, **{f.name: _stored(getattr(meta, f.name))
                                        for f in dataclasses.fields(meta)})


def _iso(t: float | None) -> str | None:
    if t is None:
        return None
    return dt.datetime.fromtimestamp(t).astimezone().isoformat(timespec="seconds")


# ---------------------------------------------------------------------------- weeks


@dataclass(frozen=True, slots=True)
class Week:
    label: str  # 2026-W47
    start: float  # local Monday 00:00
    end: float  # the next Monday 00:00


def week_of(t: float) -> Week:
    """The ISO week (local time) that ``t`` falls in."""
    day = dt.datetime.fromtimestamp(t).date()
    monday = day - dt.timedelta(days=day.weekday())
    iso = day.isocalendar()
    start = dt.datetime.combine(monday, dt.time()).timestamp()
    end = dt.datetime.combine(monday + dt.timedelta(days=7), dt.time()).timestamp()
    return Week(f"{iso.year}-W{iso.week:02d}", start, end)


def review_day_start(now: float, review_day: str) -> float:
    """Local midnight of the most recent ``review_day`` (today included)."""
    day = dt.datetime.fromtimestamp(now).date()
    target = WEEKDAYS.index(review_day) if review_day in WEEKDAYS else 0
    back = (day.weekday() - target) % 7
    return dt.datetime.combine(day - dt.timedelta(days=back), dt.time()).timestamp()


def backoff(attempts: int) -> float:
    return min(BACKOFF_MAX, BACKOFF_FIRST * 2.0 ** max(0, attempts - 1))


# ---------------------------------------------------------------------------- queries


def queue_key(paper: Paper) -> tuple[int, int, float]:
    """Reading first; then the queue by priority (high first) and age (oldest first);
    then what was read (latest first) and dropped."""
    order = STATUS_ORDER.get(paper.status, 9)
    if paper.status in ("read", "dropped"):
        return (order, 0, -(paper.finished or paper.added))
    return (order, -paper.priority, paper.added)


def matches(paper: Paper, query: str) -> bool:
    """A filter: every word must match; ``#tag`` matches tags, ``status:x`` the status,
    other words the title, authors, venue, ids, abstract, notes and takeaway."""
    for token in query.lower().split():
        if token.startswith("#") and len(token) > 1:
            if not any(t.lower().startswith(token[1:]) for t in paper.tags):
                return False
        elif token.startswith("status:"):
            if not paper.status.startswith(token[7:]):
                return False
        else:
            haystack = " ".join([
                paper.title, " ".join(paper.authors), paper.venue or "", paper.ident,
                paper.abstract or "", paper.notes, paper.takeaway or "", " ".join(paper.tags),
                str(paper.year or ""), f"#{paper.id}",
            ]).lower()
            if token not in haystack:
                return False
    return True


def parse_tags(text: str) -> list[str]:
    out: list[str] = []
    for raw in re.split(r"[,\s]+", text):
        tag = raw.strip().lstrip("#")
        if tag and tag not in out:
            out.append(tag)
    return out


# ---------------------------------------------------------------------------- results


@dataclass(slots=True)
class Added:
    """One paper an ``add`` stored: new, or merged into one that was there already."""

    paper: Paper
    created: bool
    given: str  # what the user gave for it


@dataclass(slots=True)
class Lookup:
    paper_id: int
    kind: str  # arxiv, doi
    key: str  # the id asked for (with version when known), or the DOI


@dataclass(slots=True)
class Outcome:
    paper_id: int
    meta: PaperMeta | None = None
    state: str = "complete"  # complete, missing, invalid, failed
    error: str | None = None


@dataclass(slots=True)
class FillReport:
    filled: list[Paper] = field(default_factory=list)
    missing: list[Paper] = field(default_factory=list)
    invalid: list[Paper] = field(default_factory=list)
    failed: list[tuple[Paper, str]] = field(default_factory=list)
    merged: dict[int, int] = field(default_factory=dict)  # removed id -> kept id

    @property
    def changed(self) -> bool:
        return bool(self.filled or self.missing or self.invalid or self.failed)


BIBLIO_FIELDS = ("title", "authors", "year", "venue", "abstract", "arxiv_id", "arxiv_version",
                 "doi", "url", "pdf_url", "categories", "entry_type", "bibtex_key")
JSON_FIELDS = ("authors", "categories", "tags")

T = TypeVar("T")


# ---------------------------------------------------------------------------- service


class PaperService:
    """The reading queue over the store; the methods the UI, the CLI, the board and
    focus use. Writes go through ``store.transaction()``; every change calls the
    subscribers (in this process) and moves ``store.data_version()`` (in others)."""

    def __init__(self, config: Config, store: Store, *, clock: Clock = SYSTEM_CLOCK,
                 source: MetadataSource | None = None, poll_interval: float = 15.0) -> None:
        self.config = config
        self.settings = config.papers
        self.store = store
        self.clock = clock
        self.source = source
        self.poll_interval = poll_interval
        self.version = 0  # bumped by every change made through this service
        self._listeners: list[Callable[[], None]] = []
        self._task: asyncio.Task[None] | None = None
        self._refreshing = False
        self.last_report: FillReport | None = None

    # ------------------------------------------------------------------ events

    def subscribe(self, callback: Callable[[], None]) -> Callable[[], None]:
        self._listeners.append(callback)

        def unsubscribe() -> None:
            if callback in self._listeners:
                self._listeners.remove(callback)

        return unsubscribe

    def _changed(self) -> None:
        self.version += 1
        for callback in list(self._listeners):
            callback()

    # ------------------------------------------------------------------ rows

    def _paper(self, row: sqlite3.Row, cards: dict[int, list[int]] | None = None) -> Paper:
        data = dict(row)
        for key in JSON_FIELDS:
            try:
                value = json.loads(data.get(key) or "[]")
            except ValueError:
                value = []
            data[key] = [str(v) for v in value] if isinstance(value, list) else []
        data["over_cap"] = bool(data.get("over_cap"))
        data["card_wanted"] = bool(data.get("card_wanted"))
        data.pop("title_key", None)
        paper = Paper(**data)
        if cards is not None:
            paper.cards = cards.get(paper.id, [])
        return paper

    def _cards(self, ids: Iterable[int] | None = None) -> dict[int, list[int]]:
        out: dict[int, list[int]] = {}
        rows = self.store.query("SELECT paper_id, target FROM paper_links WHERE kind = 'card'"
                                " ORDER BY created")
        wanted = set(ids) if ids is not None else None
        for row in rows:
            if wanted is None or row["paper_id"] in wanted:
                try:
                    out.setdefault(row["paper_id"], []).append(int(row["target"]))
                except ValueError:
                    continue
        return out

    def get(self, paper_id: int) -> Paper | None:
        rows = self.store.query("SELECT * FROM papers WHERE id = ?", (paper_id,))
        return self._paper(rows[0], self._cards([paper_id])) if rows else None

    def require(self, paper_id: int) -> Paper:
        paper = self.get(paper_id)
        if paper is None:
            raise PaperError(f"no paper #{paper_id}")
        return paper

    def papers(self, *, status: str | Iterable[str] | None = None, tag: str | None = None,
               query: str | None = None) -> list[Paper]:
        """Papers in queue order, optionally filtered by status(es), a tag and a query."""
        rows = self.store.query("SELECT * FROM papers")
        cards = self._cards()
        papers = [self._paper(row, cards) for row in rows]
        if status is not None and status != "all":
            wanted = {status} if isinstance(status, str) else set(status)
            papers = [p for p in papers if p.status in wanted]
        if tag:
            papers = [p for p in papers if tag.lower().lstrip("#") in (t.lower() for t in p.tags)]
        if query:
            papers = [p for p in papers if matches(p, query)]
        return sorted(papers, key=queue_key)

    def queue(self, limit: int | None = None) -> list[Paper]:
        papers = self.papers(status="queued")
        return papers[:limit] if limit is not None else papers

    def all_tags(self) -> list[str]:
        tags: set[str] = set()
        for paper in self.papers():
            tags.update(paper.tags)
        return sorted(tags, key=str.lower)

    def find(self, text: str) -> Paper:
        """A paper by ``12``, ``#12``, an arXiv id or URL, or a DOI."""
        raw = text.strip()
        number = raw.removeprefix("#")
        if number.isdigit():
            return self.require(int(number))
        try:
            source = classify(raw, is_file=lambda _p: False)
        except IdError:
            source = None
        if source is None or source.kind not in ("arxiv", "doi"):
            raise PaperError(f"{raw!r} is not a paper id: give its number (as `nomadlab paper "
                             "list` shows it), its arXiv id or its DOI")
        meta = PaperMeta(arxiv_id=source.value if source.kind == "arxiv" else None,
                         doi=source.value if source.kind == "doi" else None)
        found = self._duplicates(meta)
        if not found:
            raise PaperError(f"no paper with {source} in the queue")
        return found[0]

    # ------------------------------------------------------------------ adding

    def add(self, text: str, *, tags: Sequence[str] = (), priority: int | None = None,
            now: float | None = None) -> list[Added]:
        """Add what ``text`` names (IdError when it names nothing valid). Papers with an
        id are saved as "metadata pending": :meth:`refresh` fills them in."""
        source = classify(text)
        return self.add_source(source, tags=tags, priority=priority, now=now)

    def add_source(self, source: Source, *, tags: Sequence[str] = (),
                   priority: int | None = None, now: float | None = None) -> list[Added]:
        now = self.clock.time() if now is None else now
        if source.kind in ("bibtex", "file"):
            return self.import_bibtex(self.read_bibtex(source) if source.kind == "file"
                                      else source.value, tags=tags, now=now)[0]
        if source.kind == "arxiv":
            assert source.arxiv is not None
            meta = PaperMeta(arxiv_id=source.arxiv.id, arxiv_version=source.arxiv.version)
        elif source.kind == "doi":
            meta = PaperMeta(doi=source.value)
        else:
            meta = PaperMeta(title=source.value)
        meta.tags = list(tags)
        paper, created = self.add_meta(meta, now=now, priority=priority)
        return [Added(paper, created, str(source))]

    @staticmethod
    def read_bibtex(source: Source) -> str:
        try:
            return Path(source.value).read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise IdError(f"cannot read {source.value}: {exc.strerror or exc}") from None

    def import_bibtex(self, text: str, *, tags: Sequence[str] = (),
                      now: float | None = None) -> tuple[list[Added], list[str]]:
        """Every entry of a BibTeX text; (added, problems). IdError when nothing in it
        could be read."""
        now = self.clock.time() if now is None else now
        parsed = parse_bibtex(text)
        if not parsed.entries:
            why = "; ".join(parsed.problems[:3]) or "no entries"
            raise IdError(f"no paper found in the BibTeX ({why})")
        added: list[Added] = []
        with self.store.transaction():
            for meta in parsed.entries:
                meta.tags = list(dict.fromkeys([*meta.tags, *tags]))
                paper, created = self.add_meta(meta, now=now)
                added.append(Added(paper, created, f"@{{{meta.bibtex_key}}}"
                                   if meta.bibtex_key else paper.label))
        return added, parsed.problems

    def _duplicates(self, meta: PaperMeta, exclude: int | None = None) -> list[Paper]:
        """Rows that are the same paper: same arXiv id, same DOI; for a paper without
        ids (or rows without ids), the same title. Oldest first."""
        clauses: list[str] = []
        params: list[object] = []
        if meta.arxiv_id:
            clauses.append("arxiv_id = ?")
            params.append(meta.arxiv_id)
        if meta.doi:
            clauses.append("lower(doi) = ?")
            params.append(doi_key(meta.doi))
        key = normalise_title(meta.title) if meta.title else ""
        if key:
            if meta.has_ids:
                clauses.append("(title_key = ? AND arxiv_id IS NULL AND doi IS NULL)")
            else:
                clauses.append("title_key = ?")
            params.append(key)
        if not clauses:
            return []
        sql = f"SELECT * FROM papers WHERE ({' OR '.join(clauses)})"
        if exclude is not None:
            sql += " AND id != ?"
            params.append(exclude)
        rows = self.store.query(sql + " ORDER BY id", params)
        return [self._paper(row) for row in rows]

    def add_meta(self, meta: PaperMeta, *, now: float | None = None,
                 priority: int | None = None) -> tuple[Paper, bool]:
        """Store ``meta`` as a new paper, or merge it into the one it duplicates."""
        now = self.clock.time() if now is None else now
        meta = stored_meta(meta)
        with self.store.transaction() as db:
            found = self._duplicates(meta)
            if found:
                keep = found[0]
                for other in found[1:]:
                    self._merge_rows(keep.id, other.id, now)
                self._merge_meta(keep.id, meta, now, authoritative=False)
                if priority is not None and priority > keep.priority:
                    db.execute("UPDATE papers SET priority = ? WHERE id = ?", (priority, keep.id))
                paper, created = self.require(keep.id), False
            else:
                state = "complete" if meta.title else "pending"
                if not meta.has_ids:
                    state = "manual"
                cursor = db.execute(
                    "INSERT INTO papers (title, title_key, authors, year, venue, abstract,"
                    " arxiv_id, arxiv_version, doi, url, pdf_url, categories, tags, entry_type,"
                    " bibtex_key, priority, status, added, metadata, updated)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?)",
                    (meta.title, normalise_title(meta.title) or None, json.dumps(meta.authors),
                     meta.year, meta.venue, meta.abstract, meta.arxiv_id, meta.arxiv_version,
                     meta.doi, meta.url, meta.pdf_url, json.dumps(meta.categories),
                     json.dumps(list(dict.fromkeys(meta.tags))), meta.entry_type,
                     meta.bibtex_key, priority or 0, now, state, now))
                paper, created = self.require(int(cursor.lastrowid or 0)), True
        self._changed()
        return paper, created

    def _merge_meta(self, paper_id: int, meta: PaperMeta, now: float, *,
                    authoritative: bool) -> None:
        """Fill ``paper_id`` from ``meta``: blanks only, or (from a service) every
        bibliographic field it has. Tags are joined."""
        meta = stored_meta(meta)
        paper = self.require(paper_id)
        updates: dict[str, Any] = {}
        for name in BIBLIO_FIELDS:
            value = getattr(meta, name)
            if value in (None, "", []):
                continue
            if authoritative or getattr(paper, name) in (None, "", []):
                updates[name] = value
        tags = list(dict.fromkeys([*paper.tags, *meta.tags]))
        if tags != paper.tags:
            updates["tags"] = tags
        if not authoritative:
            if paper.metadata == "manual" and meta.has_ids:
                # A title known only by its title now has an id: complete when the
                # entry brought a title, else to be looked up.
                updates["metadata"] = "complete" if meta.title else "pending"
            elif paper.metadata in ("missing", "invalid"):
                updates.update(metadata="pending", next_attempt=None, attempts=0)
        self._update(paper_id, updates, now)

    def _update(self, paper_id: int, updates: dict[str, Any], now: float) -> None:
        if not updates:
            return
        values = {key: _stored(value) for key, value in updates.items()}
        for key in JSON_FIELDS:
            if key in values:
                values[key] = json.dumps(values[key])
        if "title" in values:
            values["title_key"] = normalise_title(values["title"]) or None
        values["updated"] = now
        columns = ", ".join(f"{key} = ?" for key in values)
        with self.store.transaction() as db:
            db.execute(f"UPDATE papers SET {columns} WHERE id = ?", [*values.values(), paper_id])

    def _merge_rows(self, keep_id: int, other_id: int, now: float) -> None:
        """Two rows are one paper: fold ``other_id`` into ``keep_id`` and delete it."""
        keep, other = self.require(keep_id), self.require(other_id)
        with self.store.transaction() as db:
            db.execute("INSERT OR IGNORE INTO paper_links (paper_id, kind, target, created)"
                       " SELECT ?, kind, target, created FROM paper_links WHERE paper_id = ?",
                       (keep_id, other_id))
            db.execute("DELETE FROM papers WHERE id = ?", (other_id,))
            updates: dict[str, Any] = {}
            for name in BIBLIO_FIELDS:
                value = getattr(other, name)
                if value not in (None, "", []) and getattr(keep, name) in (None, "", []):
                    updates[name] = value
            updates["tags"] = list(dict.fromkeys([*keep.tags, *other.tags]))
            updates["priority"] = max(keep.priority, other.priority)
            updates["added"] = min(keep.added, other.added)
            if other.notes and other.notes not in keep.notes:
                updates["notes"] = (keep.notes + "\n\n" + other.notes).strip()
            if STATUS_RANK.get(other.status, 0) > STATUS_RANK.get(keep.status, 0):
                for name in ("status", "started", "finished", "over_cap", "takeaway", "rating"):
                    updates[name] = getattr(other, name)
            for name in ("takeaway", "rating"):
                if updates.get(name, getattr(keep, name)) is None and getattr(other, name):
                    updates[name] = getattr(other, name)
            if keep.metadata != "complete" and other.metadata == "complete":
                updates["metadata"] = "complete"
                updates["metadata_error"] = None
            updates["card_wanted"] = int(keep.card_wanted or other.card_wanted)
            updates["over_cap"] = int(bool(updates.get("over_cap", keep.over_cap)))
            self._update(keep_id, updates, now)

    # ------------------------------------------------------------------ metadata

    def pending(self) -> list[Paper]:
        return [p for p in self.papers() if p.metadata == "pending"]

    def due_lookups(self, now: float | None = None, *, force: bool = False,
                    ids: Iterable[int] | None = None) -> list[Lookup]:
        """The lookups to make now: pending papers whose retry time has come (all of
        them with ``force``), or just ``ids``."""
        now = self.clock.time() if now is None else now
        rows = self.store.query("SELECT id, arxiv_id, arxiv_version, doi, next_attempt"
                                " FROM papers WHERE metadata = 'pending' ORDER BY id")
        wanted = set(ids) if ids is not None else None
        out: list[Lookup] = []
        for row in rows:
            if wanted is not None and row["id"] not in wanted:
                continue
            if not force and wanted is None and row["next_attempt"] is not None \
                    and row["next_attempt"] > now:
                continue
            if row["arxiv_id"]:
                out.append(Lookup(row["id"], "arxiv",
                                  str(ArxivId(row["arxiv_id"], row["arxiv_version"]))))
            elif row["doi"]:
                out.append(Lookup(row["id"], "doi", row["doi"]))
        return out

    def fetch(self, lookups: Sequence[Lookup], deadline: float | None = None) -> list[Outcome]:
        """Ask the services (blocking, no store access: safe in a worker thread)."""
        source = self.source
        if source is None:
            return [Outcome(lk.paper_id, state="failed", error="no metadata service")
                    for lk in lookups]
        outcomes: list[Outcome] = []
        arxiv = [lk for lk in lookups if lk.kind == "arxiv"]
        for start in range(0, len(arxiv), ARXIV_BATCH):
            batch = arxiv[start:start + ARXIV_BATCH]
            try:
                found = source.fetch_arxiv([lk.key for lk in batch], deadline)
            except LookupFailed as exc:
                for lk in batch:
                    if exc.bad_ids:  # arXiv named the malformed ids: retry the others
                        bad = lk.key in exc.bad_ids or _versionless(lk.key) in exc.bad_ids
                        state = "invalid" if bad else "failed"
                    else:
                        state = "failed" if exc.transient else "invalid"
                    outcomes.append(Outcome(lk.paper_id, state=state, error=str(exc)))
                continue
            for lk in batch:
                meta = found.get(_versionless(lk.key))
                if meta is None:
                    outcomes.append(Outcome(lk.paper_id, state="missing",
                                            error=f"arXiv has no paper {lk.key}"))
                else:
                    outcomes.append(Outcome(lk.paper_id, meta))
        for lk in lookups:
            if lk.kind != "doi":
                continue
            try:
                meta = source.fetch_doi(lk.key, deadline)
            except LookupFailed as exc:
                outcomes.append(Outcome(lk.paper_id, state="failed" if exc.transient
                                        else "invalid", error=str(exc)))
                continue
            if meta is None:
                outcomes.append(Outcome(lk.paper_id, state="missing",
                                        error=f"Crossref does not know the DOI {lk.key}"))
            else:
                outcomes.append(Outcome(lk.paper_id, meta))
        return outcomes

    def apply(self, outcomes: Sequence[Outcome], now: float | None = None) -> FillReport:
        """Store what the lookups found (in the thread that owns the store)."""
        now = self.clock.time() if now is None else now
        report = FillReport()
        with self.store.transaction():
            for outcome in outcomes:
                paper_id = report.merged.get(outcome.paper_id, outcome.paper_id)
                paper = self.get(paper_id)
                if paper is None or paper.metadata != "pending":
                    continue
                if outcome.meta is not None:
                    kept = self._fill(paper, outcome.meta, now, report)
                    report.filled.append(self.require(kept))
                elif outcome.state in ("missing", "invalid"):
                    self._update(paper.id, {"metadata": outcome.state,
                                            "metadata_error": outcome.error,
                                            "next_attempt": None}, now)
                    target = report.missing if outcome.state == "missing" else report.invalid
                    target.append(self.require(paper.id))
                else:
                    attempts = paper.attempts + 1
                    self._update(paper.id, {"attempts": attempts,
                                            "next_attempt": now + backoff(attempts),
                                            "metadata_error": outcome.error}, now)
                    report.failed.append((self.require(paper.id), outcome.error or "failed"))
        self.last_report = report
        if report.changed:
            self._changed()
        return report

    def _fill(self, paper: Paper, meta: PaperMeta, now: float, report: FillReport) -> int:
        """Metadata arrived for a pending paper; it may reveal a duplicate (an arXiv
        paper's DOI already in the queue): the two are merged, the older row kept."""
        meta.tags = []
        found = self._duplicates(meta, exclude=paper.id)
        keep_id = paper.id
        if found:
            ids = sorted([paper.id, *(p.id for p in found)])
            keep_id = ids[0]
            for other in ids[1:]:
                self._merge_rows(keep_id, other, now)
                report.merged[other] = keep_id
        self._merge_meta(keep_id, meta, now, authoritative=True)
        self._update(keep_id, {"metadata": "complete", "metadata_error": None, "attempts": 0,
                               "next_attempt": None}, now)
        return keep_id

    def refresh(self, *, force: bool = False, budget: float | None = None,
                ids: Iterable[int] | None = None) -> FillReport:
        """Look up pending papers now and store the answers (blocking: the CLI)."""
        lookups = self.due_lookups(force=force, ids=ids)
        if not lookups:
            return FillReport()
        deadline = self.clock.monotonic() + budget if budget is not None else None
        return self.apply(self.fetch(lookups, deadline))

    async def refresh_async(self, *, force: bool = False, budget: float | None = None,
                            ids: Iterable[int] | None = None) -> FillReport:
        """The same from the event loop: the network part runs in a daemon thread (so a
        slow service never holds up quitting), the store part here."""
        if self._refreshing:
            return FillReport()
        self._refreshing = True
        try:
            lookups = self.due_lookups(force=force, ids=ids)
            if not lookups:
                return FillReport()
            deadline = self.clock.monotonic() + budget if budget is not None else None
            outcomes = await _in_thread(self.fetch, lookups, deadline)
            return self.apply(outcomes)
        finally:
            self._refreshing = False

    async def start(self) -> None:
        """Fill in pending papers by itself while the TUI runs."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="papers-metadata")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            try:
                await asyncio.wait_for(task, timeout=2.0)
            except (TimeoutError, asyncio.CancelledError):
                pass

    async def _loop(self) -> None:
        first = True
        while True:
            try:
                await self.refresh_async(force=first)
            except sqlite3.Error:
                pass  # the store is busy or gone; the next round tries again
            first = False
            await asyncio.sleep(self.poll_interval)

    # ------------------------------------------------------------------ reading state

    def week(self, now: float | None = None) -> Week:
        return week_of(self.clock.time() if now is None else now)

    def started_in(self, start: float, end: float) -> list[Paper]:
        rows = self.store.query("SELECT * FROM papers WHERE started >= ? AND started < ?"
                                " ORDER BY started", (start, end))
        return [self._paper(row) for row in rows]

    def week_count(self, now: float | None = None) -> tuple[int, int]:
        """(papers started this ISO week, the weekly cap)."""
        week = self.week(now)
        row = self.store.query("SELECT count(*) AS n FROM papers WHERE started >= ?"
                               " AND started < ?", (week.start, week.end))
        return int(row[0]["n"]), self.settings.weekly_cap

    def start_reading(self, paper_id: int, *, anyway: bool = False,
                      now: float | None = None) -> Paper:
        """queued (or dropped) -> reading; CapReached past the weekly cap unless anyway."""
        now = self.clock.time() if now is None else now
        with self.store.transaction():
            paper = self.require(paper_id)
            if paper.status == "reading":
                raise PaperError(f"#{paper.id} is already being read")
            if paper.status == "read":
                raise PaperError(f"#{paper.id} is read already")
            started, cap = self.week_count(now)
            over = started >= cap
            if over and not anyway:
                raise CapReached(started, cap, self.week(now).label)
            self._update(paper.id, {"status": "reading", "started": now, "finished": None,
                                    "over_cap": int(over)}, now)
        self._changed()
        return self.require(paper_id)

    def mark_read(self, paper_id: int, takeaway: str, *, rating: int | None = None,
                  now: float | None = None) -> Paper:
        """-> read, with the one-line takeaway (required) and an optional rating 1-5."""
        now = self.clock.time() if now is None else now
        line = clean_space(takeaway)
        if not line:
            raise PaperError("a one-line takeaway is needed to mark a paper read")
        if rating is not None and not 1 <= rating <= 5:
            raise PaperError(f"rating must be 1 to 5, got {rating}")
        with self.store.transaction():
            paper = self.require(paper_id)
            if paper.status == "read":
                raise PaperError(f"#{paper.id} is read already")
            updates: dict[str, Any] = {"status": "read", "finished": now, "takeaway": line}
            if rating is not None:
                updates["rating"] = rating
            if paper.started is None or paper.status == "dropped":
                started, cap = self.week_count(now)
                updates["started"] = now
                updates["over_cap"] = int(started >= cap)
            self._update(paper.id, updates, now)
        self._changed()
        return self.require(paper_id)

    def drop(self, paper_id: int, now: float | None = None) -> Paper:
        now = self.clock.time() if now is None else now
        paper = self.require(paper_id)
        if paper.status == "dropped":
            raise PaperError(f"#{paper.id} is dropped already")
        self._update(paper.id, {"status": "dropped", "finished": now}, now)
        self._changed()
        return self.require(paper_id)

    def requeue(self, paper_id: int, now: float | None = None) -> Paper:
        """Back to the queue; a start this week is given back."""
        now = self.clock.time() if now is None else now
        paper = self.require(paper_id)
        if paper.status == "queued":
            raise PaperError(f"#{paper.id} is in the queue already")
        self._update(paper.id, {"status": "queued", "started": None, "finished": None,
                                "over_cap": 0}, now)
        self._changed()
        return self.require(paper_id)

    def set_priority(self, paper_id: int, priority: int, now: float | None = None) -> Paper:
        now = self.clock.time() if now is None else now
        self.require(paper_id)
        self._update(paper_id, {"priority": max(-9, min(9, priority))}, now)
        self._changed()
        return self.require(paper_id)

    def raise_priority(self, paper_id: int, step: int = 1, now: float | None = None) -> Paper:
        return self.set_priority(paper_id, self.require(paper_id).priority + step, now)

    def set_notes(self, paper_id: int, notes: str, now: float | None = None) -> Paper:
        now = self.clock.time() if now is None else now
        self.require(paper_id)
        self._update(paper_id, {"notes": notes.rstrip() + ("\n" if notes.strip() else "")},
                     now)
        self._changed()
        return self.require(paper_id)

    def set_tags(self, paper_id: int, tags: Sequence[str], now: float | None = None) -> Paper:
        now = self.clock.time() if now is None else now
        self.require(paper_id)
        self._update(paper_id, {"tags": list(dict.fromkeys(t for t in tags if t))}, now)
        self._changed()
        return self.require(paper_id)

    def set_rating(self, paper_id: int, rating: int | None, now: float | None = None) -> Paper:
        now = self.clock.time() if now is None else now
        if rating is not None and not 1 <= rating <= 5:
            raise PaperError(f"rating must be 1 to 5, got {rating}")
        self.require(paper_id)
        self._update(paper_id, {"rating": rating}, now)
        self._changed()
        return self.require(paper_id)

    def retry(self, paper_id: int, now: float | None = None) -> Paper:
        """Ask the service again (a paper marked missing or failed)."""
        now = self.clock.time() if now is None else now
        paper = self.require(paper_id)
        if not (paper.arxiv_id or paper.doi):
            raise PaperError(f"#{paper.id} has no arXiv id or DOI to look up")
        self._update(paper.id, {"metadata": "pending", "next_attempt": None, "attempts": 0},
                     now)
        self._changed()
        return self.require(paper_id)

    def delete(self, paper_id: int) -> None:
        with self.store.transaction() as db:
            db.execute("DELETE FROM papers WHERE id = ?", (paper_id,))
        self._changed()

    # ------------------------------------------------------------------ for focus & board

    def paper_title(self, paper_id: int) -> str | None:
        paper = self.get(paper_id)
        return paper.label if paper is not None else None

    def activity_between(self, start: float, end: float) -> dict[str, Any]:
        """What happened in [start, end): papers started, papers read and their titles."""
        started = self.store.query("SELECT count(*) AS n FROM papers WHERE started >= ?"
                                   " AND started < ?", (start, end))
        read = self.store.query("SELECT * FROM papers WHERE status = 'read' AND finished >= ?"
                                " AND finished < ? ORDER BY finished", (start, end))
        titles = [self._paper(row).label for row in read]
        return {"started": int(started[0]["n"]), "read": len(titles), "read_titles": titles}

    def link_card(self, paper_id: int, board: Any, now: float | None = None) -> int | None:
        """A Hypothesis card on the board linked to this paper; without a board, the wish
        is kept (and :meth:`flush_card_wishes` makes it when there is one)."""
        now = self.clock.time() if now is None else now
        paper = self.require(paper_id)
        if board is None:
            self._update(paper.id, {"card_wanted": 1}, now)
            self._changed()
            return None
        card_id = int(board.add_card(paper.title or paper.label, column="Hypothesis",
                                     links={"paper": str(paper.id)}))
        with self.store.transaction() as db:
            db.execute("INSERT OR IGNORE INTO paper_links (paper_id, kind, target, created)"
                       " VALUES (?, 'card', ?, ?)", (paper.id, str(card_id), now))
            db.execute("UPDATE papers SET card_wanted = 0, updated = ? WHERE id = ?",
                       (now, paper.id))
        self._changed()
        return card_id

    def card_wishes(self) -> list[Paper]:
        rows = self.store.query("SELECT * FROM papers WHERE card_wanted = 1 ORDER BY id")
        return [self._paper(row) for row in rows]

    def flush_card_wishes(self, board: Any) -> list[tuple[int, int]]:
        """Make the cards that waited for the board: [(paper id, card id)]."""
        if board is None:
            return []
        made = []
        for paper in self.card_wishes():
            card = self.link_card(paper.id, board)
            if card is not None:
                made.append((paper.id, card))
        return made

    # ------------------------------------------------------------------ review

    def last_review(self) -> float | None:
        row = self.store.query("SELECT max(time) AS t FROM paper_reviews")
        value: float | None = row[0]["t"] if row else None
        return float(value) if value is not None else None

    def review_candidates(self, now: float | None = None) -> list[Paper]:
        """Added since the last review and still to decide on (queued or reading)."""
        since = self.last_review()
        papers = self.papers(status=("queued", "reading"))
        if since is not None:
            papers = [p for p in papers if p.added > since]
        return sorted(papers, key=lambda p: (p.added, p.id))

    def review_due(self, now: float | None = None) -> bool:
        """The review day has come since the last review, and there is something to triage."""
        now = self.clock.time() if now is None else now
        last = self.last_review()
        due_from = review_day_start(now, self.settings.review_day)
        if last is not None and last >= due_from:
            return False
        return bool(self.review_candidates(now))

    def record_review(self, *, kept: int = 0, dropped: int = 0, raised: int = 0,
                      picked: int = 0, now: float | None = None) -> None:
        now = self.clock.time() if now is None else now
        with self.store.transaction() as db:
            db.execute("INSERT INTO paper_reviews (time, week, kept, dropped, raised, picked)"
                       " VALUES (?, ?, ?, ?, ?, ?)",
                       (now, week_of(now).label, kept, dropped, raised, picked))
        self._changed()

    # ------------------------------------------------------------------ export

    def export_bibtex(self, papers: Sequence[Paper]) -> str:
        return to_bibtex(papers)

    def export_markdown(self, papers: Sequence[Paper], now: float | None = None) -> str:
        return to_markdown(papers, self.clock.time() if now is None else now)

    def write_export(self, text: str, suffix: str, now: float | None = None) -> Path:
        """Save an export under the data directory; the path it went to."""
        now = self.clock.time() if now is None else now
        folder = self.config.data_dir / "exports"
        folder.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
        path = folder / f"papers-{stamp}.{suffix}"
        path.write_text(text, encoding="utf-8")
        return path


def open_method(environ: Mapping[str, str], platform: str) -> str:
    """How to open a paper's page: "browser" on a desktop (a display, or macOS), "copy"
    (show the URL and copy it with OSC 52) over SSH or on a headless box, where a
    browser would be a text one taking over the terminal, or none at all."""
    if environ.get("SSH_CONNECTION") or environ.get("SSH_TTY"):
        return "copy"
    if platform == "darwin" or environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"):
        return "browser"
    return "copy"


# The editor for long text is shared with the board: nomadlab.core.editor.
editor_command = _editor.editor_command
edit_in_editor = _editor.edit_text


def _versionless(arxiv_id: str) -> str:
    found = match_arxiv(arxiv_id)
    return found.id if found is not None else arxiv_id


async def _in_thread(function: Callable[..., T], *args: Any) -> T:
    """Run ``function`` in a daemon thread (asyncio.to_thread's threads are waited for
    at exit; a lookup stuck on a dead network must not hold up quitting)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def done(result: T | None, error: BaseException | None) -> None:
        if future.done():
            return
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(result)  # type: ignore[arg-type]

    def run() -> None:
        try:
            result = function(*args)
        except BaseException as exc:
            loop.call_soon_threadsafe(done, None, exc)
        else:
            loop.call_soon_threadsafe(done, result, None)

    threading.Thread(target=run, name="papers-lookup", daemon=True).start()
    return await future
