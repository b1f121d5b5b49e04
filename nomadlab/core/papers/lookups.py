"""Papers: filling in metadata (arXiv, Crossref) through a :class:`MetadataSource`,
with retries and back-off, by the CLI (blocking) or by a loop while the TUI runs."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable, Iterable, Sequence
from typing import Any, TypeVar

from nomadlab.core.papers.formats import (
    PaperMeta,
)
from nomadlab.core.papers.ids import (
    ArxivId,
    match_arxiv,
)
from nomadlab.core.papers.model import (
    ARXIV_BATCH,
    FillReport,
    Lookup,
    LookupFailed,
    Outcome,
    Paper,
    backoff,
)
from nomadlab.core.papers.records import PaperRecords

T = TypeVar("T")


class PaperLookups(PaperRecords):
    """Pending papers looked up and stored."""

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
        self._filler.start(self._loop)

    async def stop(self) -> None:
        await self._filler.stop(timeout=2.0)

    async def _loop(self) -> None:
        first = True
        while True:
            try:
                await self.refresh_async(force=first)
            except sqlite3.Error:
                pass  # the store is busy or gone; the next round tries again
            first = False
            await asyncio.sleep(self.poll_interval)


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
