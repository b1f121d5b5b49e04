"""Papers: the reading queue's operations (adding, the two-paper rule, review, links
to the board, export) for the UI, the CLI, the board and focus."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from nomadlab.core.features import CardMaker
from nomadlab.core.papers.formats import (
    PaperMeta,
    clean_space,
    parse_bibtex,
    to_bibtex,
    to_markdown,
)
from nomadlab.core.papers.ids import (
    IdError,
    Source,
    classify,
)
from nomadlab.core.papers.lookups import PaperLookups
from nomadlab.core.papers.model import (
    Added,
    CapReached,
    Paper,
    PaperError,
    Week,
    review_day_start,
    week_of,
)


class PaperService(PaperLookups):
    """The reading queue over the store; the methods the UI, the CLI, the board and
    focus use. Writes go through ``store.transaction()``; every change calls the
    subscribers (in this process) and moves ``store.data_version()`` (in others)."""

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

    def link_card(self, paper_id: int, board: CardMaker | None,
                  now: float | None = None) -> int | None:
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

    def flush_card_wishes(self, board: CardMaker | None) -> list[tuple[int, int]]:
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
