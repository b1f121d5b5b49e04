"""The papers service against a real HTTP server on 127.0.0.1 serving the recorded arXiv
and Crossref answers: offline add then fill-in, rate limiting on an injected clock,
duplicates, the weekly cap across week boundaries, reviews, board cards."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_for
from test_papers_support import (
    PaperServer,
    make_rig,
    no_proxies,
    paper_server,
)

from nomadlab.core.papers import (
    BACKOFF_FIRST,
    CapReached,
    LookupFailed,
    PaperError,
    PaperService,
    open_method,
    review_day_start,
    week_of,
)
from nomadlab.core.papers.formats import PaperMeta
from nomadlab.core.papers.ids import IdError
from nomadlab.core.store import Store
from nomadlab.remote.papers_api import RateLimiter, make_service

__all__ = ["no_proxies", "paper_server"]  # fixtures, used by name


def local(y: int, m: int, d: int, hh: int = 0, mm: int = 0, ss: int = 0) -> float:
    return dt.datetime(y, m, d, hh, mm, ss).timestamp()  # TZ=UTC in the tests


# --------------------------------------------------------------------------- offline first


def test_offline_add_then_filled_in_later(tmp_path: Path, paper_server: PaperServer) -> None:
    rig = make_rig(tmp_path, paper_server)  # the server is not listening yet: refused
    service = rig.service
    (added,) = service.add("https://arxiv.org/abs/2104.12255v1", tags=["crypto"])
    assert added.created and added.paper.metadata == "pending"
    assert added.paper.label == "arXiv:2104.12255v1"
    report = service.refresh(force=True, budget=5)
    assert [p.id for p, _ in report.failed] == [added.paper.id]
    paper = service.require(added.paper.id)
    assert paper.metadata == "pending" and "cannot connect" in (paper.metadata_error or "")
    assert paper.next_attempt == rig.clock.time() + BACKOFF_FIRST
    assert service.due_lookups() == []  # backing off
    paper_server.start()  # the service answers again
    rig.clock.advance(BACKOFF_FIRST)
    assert len(service.due_lookups()) == 1
    report = service.refresh(budget=5)
    assert [p.id for p in report.filled] == [paper.id]
    paper = service.require(paper.id)
    assert (paper.title, paper.metadata, paper.metadata_error) == ("0", "complete", None)
    assert paper.authors == ["Quan Thoi Minh Nguyen"] and paper.tags == ["crypto"]
    assert paper.arxiv_version == 1 and paper.year == 2021
    (request,) = paper_server.arxiv_requests()
    assert request.query["id_list"] == ["2104.12255v1"]


def test_backoff_grows_and_service_failures_keep_it_pending(tmp_path: Path,
                                                            paper_server: PaperServer) -> None:
    paper_server.fail_with = 503
    paper_server.start()
    rig = make_rig(tmp_path, paper_server)
    (added,) = rig.service.add("10.1038/srep16696")
    rig.service.refresh(force=True)
    first = rig.service.require(added.paper.id)
    assert first.metadata_error == "Crossref answered HTTP 503" and first.attempts == 1
    rig.clock.advance(BACKOFF_FIRST)
    rig.service.refresh()
    second = rig.service.require(added.paper.id)
    assert second.attempts == 2
    assert second.next_attempt == rig.clock.time() + 2 * BACKOFF_FIRST
    paper_server.fail_with = None
    rig.service.refresh(force=True)
    done = rig.service.require(added.paper.id)
    assert done.metadata == "complete" and done.venue == "Scientific Reports"
    assert done.abstract is not None and done.abstract.startswith("Oligomers")


def test_crossref_user_agent_names_us_and_the_mailto(tmp_path: Path,
                                                    paper_server: PaperServer) -> None:
    paper_server.start()
    rig = make_rig(tmp_path, paper_server)
    rig.service.add("https://doi.org/10.1371/journal.pone.0033693")
    rig.service.refresh(force=True)
    (request,) = paper_server.requests
    assert request.path == "/works/10.1371/journal.pone.0033693"
    agent = request.headers["User-Agent"]
    assert agent.startswith("nomadlab/") and "mailto:reader@example.org" in agent


def test_unknown_ids_say_so(tmp_path: Path, paper_server: PaperServer) -> None:
    paper_server.start()
    rig = make_rig(tmp_path, paper_server, interval="0s")
    (gone,) = rig.service.add("0000.0000")
    (nodoi,) = rig.service.add("10.1371/notarealdoi")
    report = rig.service.refresh(force=True)
    assert {p.id for p in report.missing} == {gone.paper.id, nodoi.paper.id}
    assert rig.service.require(gone.paper.id).metadata_error == "arXiv has no paper 0000.0000"
    assert rig.service.require(nodoi.paper.id).metadata_error == \
        "Crossref does not know the DOI 10.1371/notarealdoi"
    assert rig.service.due_lookups(force=True) == []  # not asked again by itself
    rig.service.retry(gone.paper.id)
    assert len(rig.service.due_lookups()) == 1


def test_http_400_error_feed(tmp_path: Path, paper_server: PaperServer) -> None:
    paper_server.start()
    rig = make_rig(tmp_path, paper_server, interval="0s")
    with pytest.raises(LookupFailed) as info:
        rig.api.fetch_arxiv(["abc"])
    assert str(info.value) == "arXiv: incorrect id format for abc"
    assert not info.value.transient and info.value.bad_ids == {"abc"}
    # A bad id that got into the queue (an old database, a hand-edited one) is marked
    # invalid, not retried forever.
    paper, _ = rig.service.add_meta(PaperMeta(arxiv_id="abc"))
    rig.service.refresh(force=True)
    assert rig.service.require(paper.id).metadata == "invalid"


def test_two_ids_batched_one_unknown(tmp_path: Path, paper_server: PaperServer) -> None:
    paper_server.start()
    rig = make_rig(tmp_path, paper_server)
    (unknown,) = rig.service.add("0808.05394", now=rig.clock.time())
    (known,) = rig.service.add("1707.08567")
    report = rig.service.refresh(force=True)
    (request,) = paper_server.arxiv_requests()  # one request for both: id_list
    assert request.query["id_list"] == ["0808.05394,1707.08567"]
    assert request.query["max_results"] == ["2"]
    assert [p.id for p in report.filled] == [known.paper.id]
    assert [p.id for p in report.missing] == [unknown.paper.id]
    assert rig.service.require(known.paper.id).title.startswith("Proceedings of Workshop AEW10")


# --------------------------------------------------------------------------- rate limiting


def test_arxiv_rate_limit_on_an_injected_clock(tmp_path: Path,
                                               paper_server: PaperServer) -> None:
    paper_server.start()
    rig = make_rig(tmp_path, paper_server, interval="3s")
    times: list[float] = []
    original = paper_server.answer

    def answer(path: str, query: dict[str, list[str]]) -> tuple[int, str, bytes]:
        times.append(rig.clock.monotonic())
        return original(path, query)

    paper_server.answer = answer  # type: ignore[method-assign]
    for arxiv_id in ("2104.12255v1", "astro-ph/0601001", "0000.0000"):
        rig.api.fetch_arxiv([arxiv_id])
    assert rig.sleeps == [3.0, 3.0]  # nobody slept for real: the clock was moved
    assert [b - a for a, b in itertools.pairwise(times)] == [3.0, 3.0]
    rig.clock.advance(10)
    rig.api.fetch_arxiv(["2104.12255v1"])
    assert rig.sleeps == [3.0, 3.0]  # long enough since the last one: no wait
    rig.clock.advance(1)
    rig.api.fetch_arxiv(["2104.12255v1"])
    assert rig.sleeps == [3.0, 3.0, 2.0]


def test_rate_limit_is_shared_through_the_state_file(tmp_path: Path,
                                                     paper_server: PaperServer) -> None:
    """Two PaperApis on one state file (the TUI and a CLI command) keep to one interval."""
    paper_server.start()
    first = make_rig(tmp_path / "a", paper_server)
    second = make_rig(tmp_path / "b", paper_server)
    second.api.arxiv_limiter.state = first.api.arxiv_limiter.state
    second.api.arxiv_limiter.clock = first.clock
    second.api.arxiv_limiter.sleep = first.api.arxiv_limiter.sleep
    first.api.fetch_arxiv(["2104.12255v1"])
    second.api.fetch_arxiv(["2104.12255v1"])
    assert first.sleeps == [3.0]
    state = first.api.arxiv_limiter.state
    assert state is not None and float(state.read_text()) == first.clock.time()


def test_a_wait_longer_than_the_deadline_is_left_for_later(tmp_path: Path,
                                                          paper_server: PaperServer) -> None:
    paper_server.start()
    rig = make_rig(tmp_path, paper_server, interval="3s")
    rig.api.fetch_arxiv(["2104.12255v1"])
    (added,) = rig.service.add("astro-ph/0601001")
    report = rig.service.refresh(force=True, budget=1.0)
    assert rig.sleeps == []  # did not wait 3 s on a 1 s budget
    assert "left for later" in report.failed[0][1]
    assert rig.service.require(added.paper.id).metadata == "pending"
    assert len(paper_server.arxiv_requests()) == 1


def test_limiter_never_waits_longer_than_the_interval_after_a_clock_jump() -> None:
    from nomadlab.core.clock import ManualClock

    clock = ManualClock(1000.0)
    slept: list[float] = []
    limiter = RateLimiter(3.0, clock, sleep=slept.append)
    with limiter.turn():
        pass
    clock.jump_wall(-3600)  # the wall clock was set back an hour
    with limiter.turn():
        pass
    assert slept == [3.0]


def test_real_arxiv_is_asked_at_most_every_three_seconds(tmp_path: Path) -> None:
    from nomadlab.core.clock import ManualClock
    from nomadlab.core.config import load_config_text
    from nomadlab.remote.papers_api import PaperApi

    config = load_config_text('[papers]\narxiv_interval = "0s"\n')
    api = PaperApi(config.papers, ManualClock())
    assert api.arxiv_limiter.interval == 3.0  # the config cannot go below arXiv's terms


# --------------------------------------------------------------------------- duplicates


def test_duplicates_are_merged(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    service = rig.service
    (a,) = service.add("2104.12255v1", tags=["x"])
    (b,) = service.add("https://arxiv.org/pdf/2104.12255.pdf", tags=["y"], priority=2)
    assert not b.created and b.paper.id == a.paper.id
    assert b.paper.tags == ["x", "y"] and b.paper.priority == 2
    (c,) = service.add("10.1103/PhysRevB.85.115117")
    (d,) = service.add("https://doi.org/10.1103/physrevb.85.115117")  # DOIs ignore case
    assert not d.created and d.paper.id == c.paper.id
    (e,) = service.add("Attention Is All You Need")
    (f,) = service.add("attention is all you need!")
    assert not f.created and f.paper.id == e.paper.id
    assert len(service.papers()) == 3


def test_bibtex_import_merges_with_what_is_there(tmp_path: Path) -> None:
    rig = make_rig(tmp_path)
    service = rig.service
    (title_only,) = service.add("Attention Is All You Need")
    (arxiv,) = service.add("2104.12255")
    bib = tmp_path / "refs.bib"
    bib.write_text("""
@inproceedings{vaswani2017, title={Attention Is All You Need}, author={Vaswani, Ashish},
  year={2017}, eprint={1706.03762}, archivePrefix={arXiv}}
@misc{zero, title={0}, author={Nguyen, Quan Thoi Minh}, eprint={2104.12255v1},
  archivePrefix={arXiv}}
@article{new, title={Something new}, doi={10.1000/new}, year={2020}}
""")
    added = service.add(str(bib), tags=["import"])
    assert [a.created for a in added] == [False, False, True]
    vaswani = service.require(title_only.paper.id)
    assert vaswani.arxiv_id == "1706.03762" and vaswani.authors == ["Ashish Vaswani"]
    assert vaswani.metadata == "complete" and vaswani.tags == ["import"]
    zero = service.require(arxiv.paper.id)
    assert zero.title == "0" and zero.metadata == "pending"  # arXiv still fills it in
    assert len(service.papers()) == 3
    with pytest.raises(IdError, match="no paper found in the BibTeX"):
        service.add("@misc{broken, title = {never closed")


def test_fill_in_reveals_a_duplicate_by_doi(tmp_path: Path, paper_server: PaperServer) -> None:
    """An arXiv paper whose metadata brings a DOI that is already queued: one paper."""
    paper_server.start()
    rig = make_rig(tmp_path, paper_server)
    service = rig.service
    (by_doi,) = service.add("10.1103/PhysRevB.85.115117", tags=["doi"])
    service.set_notes(by_doi.paper.id, "from the DOI")
    (by_arxiv,) = service.add("1111.2011v2", tags=["arxiv"])
    service.link_card(by_arxiv.paper.id, None)
    report = service.refresh(force=True, ids=[by_arxiv.paper.id])
    assert report.merged == {by_arxiv.paper.id: by_doi.paper.id}
    assert service.get(by_arxiv.paper.id) is None
    merged = service.require(by_doi.paper.id)
    assert merged.arxiv_id == "1111.2011" and merged.doi == "10.1103/PhysRevB.85.115117"
    assert merged.title.startswith("Quantum Criticality") and merged.metadata == "complete"
    assert merged.tags == ["doi", "arxiv"] and merged.notes.strip() == "from the DOI"
    assert merged.card_wanted


def test_find_by_number_arxiv_id_or_doi(tmp_path: Path) -> None:
    service = make_rig(tmp_path).service
    (a,) = service.add("2104.12255v1")
    assert service.find(str(a.paper.id)).id == a.paper.id
    assert service.find(f"#{a.paper.id}").id == a.paper.id
    assert service.find("arXiv:2104.12255").id == a.paper.id
    with pytest.raises(PaperError, match="no paper #99"):
        service.find("99")
    with pytest.raises(PaperError, match=r"no paper with arXiv:2104\.99999"):
        service.find("2104.99999")
    with pytest.raises(PaperError, match="not a paper id"):
        service.find("abc")


# --------------------------------------------------------------------------- the weekly cap


def test_weekly_cap_across_an_iso_week_boundary(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, start=local(2026, 11, 22, 23, 59, 0))  # a Sunday, 2026-W47
    service = rig.service
    ids = [service.add(f"Paper number {n} on things")[0].paper.id for n in range(5)]
    assert week_of(rig.clock.time()).label == "2026-W47"
    service.start_reading(ids[0])
    service.start_reading(ids[1])
    assert service.week_count() == (2, 2)
    with pytest.raises(CapReached) as info:
        service.start_reading(ids[2])
    assert (info.value.started, info.value.cap, info.value.week) == (2, 2, "2026-W47")
    assert service.require(ids[2]).status == "queued"
    rig.clock.advance(60)  # Monday 00:00: a new ISO week, a new allowance
    assert week_of(rig.clock.time()).label == "2026-W48"
    assert service.week_count() == (0, 2)
    service.start_reading(ids[2])
    service.start_reading(ids[3])
    with pytest.raises(CapReached):
        service.start_reading(ids[4])
    over = service.start_reading(ids[4], anyway=True)
    assert over.status == "reading" and over.over_cap
    assert service.week_count() == (3, 2)
    # Dropping does not give a start back; putting it back in the queue does.
    service.drop(ids[3])
    assert service.week_count() == (3, 2)
    service.requeue(ids[4])
    assert service.week_count() == (2, 2)


def test_iso_weeks_across_the_new_year() -> None:
    assert week_of(local(2027, 1, 3, 23, 59)).label == "2026-W53"
    assert week_of(local(2027, 1, 4, 0, 0)).label == "2027-W01"
    assert week_of(local(2024, 12, 30)).label == "2025-W01"
    week = week_of(local(2026, 11, 18, 11))
    assert (week.start, week.end) == (local(2026, 11, 16), local(2026, 11, 23))


def test_states_and_their_errors(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, start=local(2026, 11, 18, 10))
    service = rig.service
    (a,) = service.add("One paper to read")
    service.start_reading(a.paper.id)
    with pytest.raises(PaperError, match="already being read"):
        service.start_reading(a.paper.id)
    with pytest.raises(PaperError, match="takeaway is needed"):
        service.mark_read(a.paper.id, "   ")
    with pytest.raises(PaperError, match="rating must be 1 to 5"):
        service.mark_read(a.paper.id, "ok", rating=9)
    done = service.mark_read(a.paper.id, "  zero\nis   funny ", rating=5)
    assert (done.status, done.takeaway, done.rating) == ("read", "zero is funny", 5)
    with pytest.raises(PaperError, match="read already"):
        service.start_reading(a.paper.id)
    (b,) = service.add("Read without starting it")
    assert service.mark_read(b.paper.id, "skimmed").started is not None
    assert service.week_count() == (2, 2)


def test_activity_between_and_titles_for_focus(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, start=local(2026, 11, 16, 9))
    service = rig.service
    (a,) = service.add("First paper of the week")
    (b,) = service.add("Second paper of the week")
    service.start_reading(a.paper.id)
    rig.clock.advance(3600)
    service.mark_read(a.paper.id, "good")
    service.start_reading(b.paper.id)
    assert service.activity_between(local(2026, 11, 16), local(2026, 11, 17)) == {
        "started": 2, "read": 1, "read_titles": ["First paper of the week"]}
    assert service.activity_between(local(2026, 11, 17), local(2026, 11, 18)) == {
        "started": 0, "read": 0, "read_titles": []}
    assert service.paper_title(b.paper.id) == "Second paper of the week"
    assert service.paper_title(999) is None


# --------------------------------------------------------------------------- review & board


def test_weekly_review(tmp_path: Path) -> None:
    rig = make_rig(tmp_path, start=local(2026, 11, 13, 12))  # a Friday
    service = rig.service
    (old,) = service.add("Added before any review")
    assert service.review_due()  # never reviewed, something to triage
    service.record_review(kept=1)
    assert not service.review_due()
    rig.clock.advance(86400)
    (new,) = service.add("Added on Saturday")
    assert [p.id for p in service.review_candidates()] == [new.paper.id]
    assert not service.review_due()  # Monday has not come yet
    rig.clock.jump_wall(2 * 86400)  # Monday
    assert service.review_due()
    service.record_review(picked=1)
    assert not service.review_due() and service.review_candidates() == []
    rows = rig.store.query("SELECT week, kept, picked FROM paper_reviews ORDER BY id")
    assert [tuple(r) for r in rows] == [("2026-W46", 1, 0), ("2026-W47", 0, 1)]
    assert old.paper.id not in [p.id for p in service.review_candidates()]
    assert review_day_start(local(2026, 11, 18, 9), "monday") == local(2026, 11, 16)
    assert review_day_start(local(2026, 11, 16, 9), "friday") == local(2026, 11, 13)


class FakeBoard:
    def __init__(self) -> None:
        self.cards: dict[int, tuple[str, dict[str, Any]]] = {}

    def add_card(self, title: str, *, column: str | None = None, board: str | None = None,
                 links: dict[str, str] | None = None, tags: list[str] | None = None) -> int:
        card_id = 100 + len(self.cards)
        self.cards[card_id] = (title, {"column": column, "links": links})
        return card_id

    def card_title(self, card_id: int) -> str | None:
        card = self.cards.get(card_id)
        return card[0] if card else None


def test_hypothesis_card_now_or_when_the_board_exists(tmp_path: Path) -> None:
    service = make_rig(tmp_path).service
    (a,) = service.add("A paper worth an experiment")
    (b,) = service.add("Another paper worth one")
    assert service.link_card(a.paper.id, None) is None  # no board yet: the wish is kept
    assert service.require(a.paper.id).card_wanted
    board = FakeBoard()
    assert service.flush_card_wishes(board) == [(a.paper.id, 100)]
    assert board.cards[100] == ("A paper worth an experiment",
                                {"column": "Hypothesis", "links": {"paper": str(a.paper.id)}})
    assert service.require(a.paper.id).cards == [100]
    assert not service.require(a.paper.id).card_wanted
    assert service.link_card(b.paper.id, board) == 101
    assert service.flush_card_wishes(board) == []


# --------------------------------------------------------------------------- the loop


async def test_the_service_fills_in_by_itself(tmp_path: Path, paper_server: PaperServer) -> None:
    rig = make_rig(tmp_path, paper_server, interval="0s")
    service = rig.service
    service.poll_interval = 0.05
    (added,) = service.add("astro-ph/0601001")
    await service.start()
    try:
        await wait_for(lambda: service.require(added.paper.id).attempts >= 1, 10,
                       "a failed first attempt")
        paper_server.start()
        rig.clock.advance(BACKOFF_FIRST)
        await wait_for(lambda: service.require(added.paper.id).metadata == "complete", 10,
                       "the metadata")
    finally:
        await service.stop()
    assert service.require(added.paper.id).venue == "ActaAstron.56:1-50,2006"


async def test_refresh_async_does_not_block_the_loop(tmp_path: Path,
                                                    paper_server: PaperServer) -> None:
    paper_server.start()
    service = make_rig(tmp_path, paper_server, interval="0s").service
    service.add("2104.12255")
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(tick())
    report = await service.refresh_async(force=True)
    ticker.cancel()
    assert [p.title for p in report.filled] == ["0"] and ticks > 0


# --------------------------------------------------------------------------- odds and ends


def test_make_service_builds_the_real_source(tmp_path: Path) -> None:
    from nomadlab.core.clock import ManualClock
    from nomadlab.core.config import load_config_text
    from nomadlab.remote.papers_api import PaperApi

    config = load_config_text(f'data_dir = "{tmp_path}"\n')
    service = make_service(config=config, store=Store(config.database), clock=ManualClock())
    assert isinstance(service, PaperService) and isinstance(service.source, PaperApi)
    assert service.settings.weekly_cap == 2


def test_open_method() -> None:
    assert open_method({"DISPLAY": ":0"}, "linux") == "browser"
    assert open_method({"WAYLAND_DISPLAY": "wayland-0"}, "linux") == "browser"
    assert open_method({}, "darwin") == "browser"
    assert open_method({"DISPLAY": ":0", "SSH_CONNECTION": "1 2 3 4"}, "linux") == "copy"
    assert open_method({}, "linux") == "copy"


def test_core_papers_does_not_import_textual() -> None:
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'textual' or name.startswith('textual.'):\n"
        "            raise ImportError('textual blocked')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import nomadlab.core.papers, nomadlab.core.papers.ids, nomadlab.core.papers.formats\n"
        "import nomadlab.remote.papers_api, nomadlab.cli.paper\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=False)
    assert out.stdout.strip() == "ok", out.stderr

