"""Papers: the rows in the store (reading, writing, merging two rows that are one
paper) and the change events; the base of :class:`~nomadlab.core.papers.service.PaperService`."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

from nomadlab.core.clock import SYSTEM_CLOCK, Clock
from nomadlab.core.config import Config
from nomadlab.core.papers.formats import (
    PaperMeta,
)
from nomadlab.core.papers.ids import (
    doi_key,
    normalise_title,
)
from nomadlab.core.papers.model import (
    BIBLIO_FIELDS,
    JSON_FIELDS,
    STATUS_RANK,
    FillReport,
    MetadataSource,
    Paper,
    PaperError,
    _stored,
    matches,
    queue_key,
    stored_meta,
)
from nomadlab.core.store import Store
from nomadlab.core.tasks import BackgroundTask


class PaperRecords:
    """The papers table: rows in and out, duplicates merged; every change calls the
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
        self._filler = BackgroundTask("papers-metadata")
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
