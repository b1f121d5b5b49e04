"""Papers: the model (a paper, its states, the weekly cap's weeks, queue order and
filters, what adding and looking up return). No I/O."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from nomadlab.core.config import WEEKDAYS
from nomadlab.core.papers.formats import (
    PaperMeta,
)
from nomadlab.core.papers.ids import (
    ArxivId,
)
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
