"""The papers screen, the weekly review and the workspace pane, driven by keys as a user
would, plus SVG snapshots. The app runs over fixed data on a ManualClock; its metadata
source answers nothing (or, in one test, a real HTTP server on 127.0.0.1 answers)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import bibtexparser
import pytest
from test_papers_support import (
    OfflineSource,
    PaperServer,
    build_app,
    no_proxies,
    paper_server,
)
from textual.widgets import DataTable, Input, Static, TextArea

from nomadlab.core.papers import PaperService
from nomadlab.remote.papers_api import PaperApi
from nomadlab.ui.confirm import ConfirmScreen
from nomadlab.ui.papers.dialogs import AddPaper, EditNotes, Takeaway
from nomadlab.ui.papers.pane import PapersPane
from nomadlab.ui.papers.review import PaperReviewScreen
from nomadlab.ui.papers.screen import PapersScreen
from nomadlab.ui.workspace import WorkspaceScreen

__all__ = ["no_proxies", "paper_server"]


def titles(screen: PapersScreen) -> list[str]:
    table = screen.query_one("#papers-table", DataTable)
    return [table.get_row_at(i)[3].plain for i in range(table.row_count)]


def static_text(screen: Any, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def open_papers(app: Any, pilot: Any) -> PapersScreen:
    await pilot.press("4")
    await pilot.pause()
    await app.workers.wait_for_complete()
    await pilot.pause()
    screen = app.screen
    assert isinstance(screen, PapersScreen)
    return screen


def select(screen: PapersScreen, paper_id: int) -> None:
    screen.select_paper(paper_id)
    assert screen.selected() is not None and screen.selected().id == paper_id  # type: ignore[union-attr]


async def test_queue_order_header_and_literal_text(tmp_path: Path) -> None:
    app, _service, _clock, ids = build_app(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_papers(app, pilot)
        assert [p.id for p in screen.shown] == [ids["zero"], ids["fret"], ids["hostile"],
                                                ids["jupiters"], ids["pending"],
                                                ids["title-only"]]
        header = static_text(screen, "#papers-week")
        assert "2026-W47" in header and "1/2 started this week" in header
        assert "weekly review due" in header
        shown = titles(screen)
        hostile = shown[2]
        assert hostile.startswith("[bold]Not bold[/] and $\\sigma$-algebras: [@click=")
        assert "\x1b" not in hostile and "\x07" not in hostile
        assert shown[4] == "arXiv:1111.2011v2"  # pending: its id stands for the title
        select(screen, ids["hostile"])
        await pilot.pause()
        detail = static_text(screen, "#papers-detail-text")
        assert "[bold]Not bold[/] and $\\sigma$-algebras: [@click=app.quit]quit[/]" in detail
        assert "Mallory [i]M[/i]" in detail
        assert "$\\sigma^2 \\leq \\frac{1}{n}$ where [red]x[/red] is [b]free[/b]" in detail
        assert "\x1b" not in detail
        assert app.is_running  # nothing in the text clicked app.quit


async def test_pending_metadata_is_retried_when_the_screen_opens(tmp_path: Path) -> None:
    app, service, _clock, ids = build_app(tmp_path)
    source = service.source
    assert isinstance(source, OfflineSource)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_papers(app, pilot)
        assert source.asked == ["1111.2011v2"]
        pending = service.require(ids["pending"])
        assert pending.metadata == "pending" and pending.attempts == 1
        select(screen, ids["pending"])
        await pilot.pause()
        detail = static_text(screen, "#papers-detail-text")
        assert "metadata pending: cannot connect: Network is unreachable" in detail
        assert "next try in 30m" not in detail and "next try in" in detail


async def test_the_screen_fills_in_from_a_real_server(tmp_path: Path,
                                                     paper_server: PaperServer) -> None:
    app, service, clock, ids = build_app(tmp_path)
    paper_server.start()
    service.settings.arxiv_api = paper_server.arxiv_api
    service.settings.arxiv_interval = 0.0
    service.source = PaperApi(service.settings, clock)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_papers(app, pilot)
        for _ in range(100):
            if service.require(ids["pending"]).metadata == "complete":
                break
            await asyncio.sleep(0.05)
        await pilot.pause()
        paper = service.require(ids["pending"])
        assert paper.title.startswith("Quantum Criticality for Extended Nodes")
        assert any(t.startswith("Quantum Criticality") for t in titles(screen))


async def test_start_past_the_cap_asks_first(tmp_path: Path) -> None:
    app, service, _clock, ids = build_app(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_papers(app, pilot)
        select(screen, ids["fret"])
        await pilot.press("s")
        assert service.require(ids["fret"]).status == "reading"
        assert service.week_count() == (2, 2)
        select(screen, ids["hostile"])
        await pilot.press("s")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        assert service.require(ids["hostile"]).status == "queued"
        select(screen, ids["hostile"])
        await pilot.press("s")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        paper = service.require(ids["hostile"])
        assert paper.status == "reading" and paper.over_cap
        assert "3/2 started this week · past the cap" in static_text(screen, "#papers-week")


async def test_read_asks_for_a_takeaway(tmp_path: Path) -> None:
    app, service, _clock, ids = build_app(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_papers(app, pilot)
        select(screen, ids["zero"])
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, Takeaway)
        await pilot.press("enter")  # empty: refused
        await pilot.pause()
        assert isinstance(app.screen, Takeaway)
        assert "takeaway is needed" in str(app.screen.query_one("#takeaway-error",
                                                                 Static).render())
        await pilot.press(*"x*0 = 0 breaks [b]BLS[/b]", "tab", "4", "enter")
        await pilot.pause()
        paper = service.require(ids["zero"])
        assert (paper.status, paper.takeaway, paper.rating) == ("read", "x*0 = 0 breaks [b]BLS[/b]",
                                                                4)
        assert ids["zero"] not in [p.id for p in screen.shown]  # read: out of the active view
        await pilot.press("f", "f", "f")  # active -> queued -> reading -> read
        assert screen.view == "read"
        assert [p.id for p in screen.shown] == [ids["zero"], ids["read"]]


async def test_drop_and_back_and_priority(tmp_path: Path) -> None:
    app, service, _clock, ids = build_app(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_papers(app, pilot)
        select(screen, ids["title-only"])
        await pilot.press("d")
        assert service.require(ids["title-only"]).status == "dropped"
        assert ids["title-only"] not in [p.id for p in screen.shown]
        await pilot.press("f", "f", "f", "f")
        assert screen.view == "dropped"
        await pilot.press("u")
        assert service.require(ids["title-only"]).status == "queued"
        await pilot.press("f", "f")
        assert screen.view == "active"
        select(screen, ids["jupiters"])
        await pilot.press("plus", "plus", "plus")
        assert service.require(ids["jupiters"]).priority == 3
        assert [p.id for p in screen.shown][1] == ids["jupiters"]  # first in the queue now


async def test_filter_by_text_and_tag(tmp_path: Path) -> None:
    app, _service, _clock, ids = build_app(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_papers(app, pilot)
        await pilot.press("slash", *"#astro")
        await pilot.pause()
        assert [p.id for p in screen.shown] == [ids["jupiters"]]
        await pilot.press("escape")
        await pilot.pause()
        assert len(screen.shown) == 6
        await pilot.press("slash", *"algebras", "enter")
        assert [p.id for p in screen.shown] == [ids["hostile"]]
        assert screen.query_one("#papers-table", DataTable).has_focus


async def test_add_from_the_screen(tmp_path: Path) -> None:
    app, service, _clock, ids = build_app(tmp_path)
    source = service.source
    assert isinstance(source, OfflineSource)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_papers(app, pilot)
        await pilot.press("a")
        await pilot.pause()
        assert isinstance(app.screen, AddPaper)
        await pilot.press(*"abc", "enter")
        await pilot.pause()
        assert isinstance(app.screen, AddPaper)  # stays open with the reason
        error = str(app.screen.query_one("#paper-error", Static).render())
        assert "not an arXiv id, DOI, URL or BibTeX file: 'abc'" in error
        app.screen.query_one("#paper-input", Input).value = ""
        await pilot.press(*"2301.00001 https://doi.org/10.1038/SREP16696", "enter")
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        assert isinstance(app.screen, PapersScreen)
        assert len(service.papers()) == 8  # one new, one the FRET paper again
        new = service.find("2301.00001")
        assert new.metadata == "pending" and "2301.00001" in source.asked
        assert screen.selected() is not None and screen.selected().id == new.id  # type: ignore[union-attr]
        assert service.require(ids["fret"]).doi == "10.1038/srep16696"


async def test_open_over_ssh_copies_and_on_a_desktop_opens(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", lambda url, *a, **k: opened.append(url) or True)
    app, _service, _clock, ids = build_app(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_papers(app, pilot)
        select(screen, ids["jupiters"])
        monkeypatch.setenv("SSH_CONNECTION", "192.0.2.1 50000 192.0.2.2 22")
        monkeypatch.setenv("DISPLAY", ":0")
        await pilot.press("o")
        assert app.clipboard == "https://arxiv.org/abs/astro-ph/0601001"
        await pilot.press("O")
        assert app.clipboard == "https://arxiv.org/pdf/astro-ph/0601001"
        assert opened == []
        monkeypatch.delenv("SSH_CONNECTION")
        select(screen, ids["fret"])
        await pilot.press("o")
        for _ in range(50):
            if opened:
                break
            await asyncio.sleep(0.02)
        assert opened == ["https://doi.org/10.1038/srep16696"]


class Board:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def start(self) -> None:  # the app starts and stops every feature's service
        pass

    async def stop(self) -> None:
        pass

    def add_card(self, title: str, *, column: str | None = None, board: str | None = None,
                 links: dict[str, str] | None = None, tags: list[str] | None = None) -> int:
        self.calls.append((title, {"column": column, "links": links}))
        return 40 + len(self.calls)

    def card_title(self, card_id: int) -> str | None:
        index = card_id - 41
        return self.calls[index][0] if 0 <= index < len(self.calls) else None


async def test_hypothesis_card_waits_for_the_board(tmp_path: Path) -> None:
    # Straight to the papers screen: the workspace's board pane wants the real board.
    app, service, _clock, ids = build_app(tmp_path, initial_mode="papers")
    app.services.board = None
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_papers(app, pilot)
        select(screen, ids["fret"])
        await pilot.press("c")
        assert service.require(ids["fret"]).card_wanted
    board = Board()
    app2, _service2, _clock2, _ = build_app(tmp_path / "again", fill=False,
                                           initial_mode="papers")
    app2.services.papers = service  # the same store: the wish is remembered
    app2.services.board = board
    async with app2.run_test(size=(160, 48)) as pilot:
        screen = await open_papers(app2, pilot)
        assert board.calls == [(service.require(ids["fret"]).title,
                                {"column": "Hypothesis", "links": {"paper": str(ids["fret"])}})]
        assert service.require(ids["fret"]).cards == [41]
        select(screen, ids["fret"])
        await pilot.pause()
        assert "card #41: Single-molecule FRET" in static_text(screen, "#papers-detail-text")
        await pilot.press("c")  # already has one: no second card
        assert len(board.calls) == 1
        select(screen, ids["zero"])
        await pilot.press("c")
        assert board.calls[-1] == ("0", {"column": "Hypothesis",
                                         "links": {"paper": str(ids["zero"])}})


async def test_notes_in_the_app_and_in_the_external_editor(tmp_path: Path) -> None:
    app, service, _clock, ids = build_app(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_papers(app, pilot)
        select(screen, ids["jupiters"])
        await pilot.press("e")
        await pilot.pause()
        assert isinstance(app.screen, EditNotes)
        area = app.screen.query_one("#notes", TextArea)
        area.text = "Check the [red]rates[/red] against RV surveys."
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert service.require(ids["jupiters"]).notes == \
            "Check the [red]rates[/red] against RV surveys.\n"
        assert "Check the [red]rates[/red]" in static_text(screen, "#papers-detail-text")
        # E: the configured editor (a headless test has no terminal to hand over: it just
        # runs); one that fails leaves the notes as they were
        script = tmp_path / "editor.py"
        script.write_text("import sys\nopen(sys.argv[1], 'a').write('From the editor.\\n')\n")
        app.services.config.board.editor = f"{sys.executable} {script}"
        await pilot.press("E")
        await pilot.pause()
        assert service.require(ids["jupiters"]).notes == \
            "Check the [red]rates[/red] against RV surveys.\nFrom the editor.\n"
        app.services.config.board.editor = f"{sys.executable} -c 'raise SystemExit(3)'"
        await pilot.press("E")
        await pilot.pause()
        assert service.require(ids["jupiters"]).notes.endswith("From the editor.\n")


async def test_export_marked_papers(tmp_path: Path) -> None:
    app, service, _clock, ids = build_app(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_papers(app, pilot)
        select(screen, ids["hostile"])
        await pilot.press("space")
        select(screen, ids["jupiters"])
        await pilot.press("space")
        assert screen.marked == {ids["hostile"], ids["jupiters"]}
        await pilot.press("x")
        exports = sorted((service.config.data_dir / "exports").glob("*.bib"))
        assert len(exports) == 1
        library = bibtexparser.parse_string(exports[0].read_text())
        assert library.failed_blocks == [] and len(library.entries) == 2
        assert app.clipboard == exports[0].read_text()
        await pilot.press("M")
        (markdown,) = (service.config.data_dir / "exports").glob("*.md")
        assert "# Reading list" in markdown.read_text()


async def test_weekly_review(tmp_path: Path) -> None:
    app, service, _clock, ids = build_app(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await open_papers(app, pilot)
        await pilot.press("w")
        await pilot.pause()
        review = app.screen
        assert isinstance(review, PaperReviewScreen)
        order = [p.id for p in review.papers]
        assert order == [ids["zero"], ids["jupiters"], ids["hostile"], ids["fret"],
                         ids["pending"], ids["title-only"]]  # oldest first; read not shown
        await pilot.press("k")  # zero (being read): keep
        await pilot.press("d")  # jupiters: drop
        await pilot.press("plus")  # hostile: raise
        await pilot.press("p")  # fret: pick -> 2/2
        assert service.require(ids["fret"]).status == "reading"
        await pilot.press("p")  # pending: past the cap -> asks
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        await pilot.press("n")
        await pilot.pause()
        assert service.require(ids["pending"]).status == "queued"
        assert service.require(ids["jupiters"]).status == "dropped"
        assert service.require(ids["hostile"]).priority == 2
        table = review.query_one("#review-table", DataTable)
        decisions = [table.get_row_at(i)[0].plain for i in range(table.row_count)]
        assert decisions == ["kept", "dropped", "raised", "picked", "", ""]
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert isinstance(app.screen, PapersScreen)
        assert not service.review_due()
        row = service.store.query("SELECT kept, dropped, raised, picked FROM paper_reviews")
        assert tuple(row[0]) == (1, 1, 1, 1)


async def test_review_escape_does_not_record(tmp_path: Path) -> None:
    app, service, _clock, _ids = build_app(tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_papers(app, pilot)
        await pilot.press("w", "escape")
        await pilot.pause()
        assert isinstance(app.screen, PapersScreen)
        assert service.last_review() is None


async def test_workspace_pane(tmp_path: Path) -> None:
    app, service, _clock, ids = build_app(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, WorkspaceScreen)
        pane = app.screen.query_one(PapersPane)
        pane.update_text()
        week = str(pane.query_one("#papers-pane-week", Static).render())
        body = str(pane.query_one("#papers-pane-list", Static).render())
        assert "1/2 started this week" in week and "review due" in week
        lines = body.splitlines()
        assert lines[0].startswith("▶  0")
        assert lines[1] == "Next in the queue (5)"
        assert lines[2].startswith("+2 Single-molecule FRET")
        assert lines[3].startswith("+1 [bold]Not bold[/]")
        service.start_reading(ids["fret"])
        await pilot.pause()
        body = str(pane.query_one("#papers-pane-list", Static).render())
        assert [line[:5] for line in body.splitlines()[:2]] == ["▶  Si", "▶  0"]
        assert "2/2" in str(pane.query_one("#papers-pane-week", Static).render())


async def test_changes_from_another_process_show_up(tmp_path: Path) -> None:
    from nomadlab.core.store import Store

    app, service, clock, _ids = build_app(tmp_path)
    async with app.run_test(size=(160, 48)) as pilot:
        screen = await open_papers(app, pilot)
        other = PaperService(service.config, Store(service.config.database), clock=clock,
                             source=OfflineSource())
        other.add("A paper added by the CLI meanwhile")
        for _ in range(60):
            await pilot.pause(0.05)
            if len(screen.shown) == 7:
                break
        assert "A paper added by the CLI meanwhile" in titles(screen)


# ---------------------------------------------------------------------- snapshots


def _keys_then_settle(*keys: str):  # type: ignore[no-untyped-def]
    async def run_before(pilot: Any) -> None:
        for key in keys:
            await pilot.press(key)
            await pilot.pause()
            await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    return run_before


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_snapshot_papers_queue(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    app, _service, _clock, _ids = build_app(tmp_path)
    assert snap_compare(app, terminal_size=size,
                        run_before=_keys_then_settle("4", "down", "down"))


@pytest.mark.parametrize("size", [(80, 24), (160, 48)])
def test_snapshot_weekly_review(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:  # type: ignore[no-untyped-def]
    app, _service, _clock, _ids = build_app(tmp_path)
    assert snap_compare(app, terminal_size=size,
                        run_before=_keys_then_settle("4", "w", "k", "d"))
