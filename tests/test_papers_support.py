"""Shared by the papers tests: a real HTTP server on 127.0.0.1 that answers like arXiv
and Crossref with the recorded responses in tests/data, and builders for services and
apps over fixed data. (No test functions here.)"""

from __future__ import annotations

import json
import re
import socket
import threading
import urllib.parse
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from nomadlab.core.clock import ManualClock
from nomadlab.core.config import Config, load_config_text
from nomadlab.core.papers import PaperService
from nomadlab.core.papers.formats import PaperMeta
from nomadlab.core.store import Store
from nomadlab.remote.papers_api import PaperApi

DATA = Path(__file__).resolve().parent / "data"
ARXIV = DATA / "arxiv"
CROSSREF = DATA / "crossref"
ATOM_NS = "http://www.w3.org/2005/Atom"


def arxiv_file(id_list: str) -> Path:
    return ARXIV / f"idlist_{id_list.replace('/', '_')}.xml"


def combined_feed(ids: list[str]) -> bytes:
    """For an id_list nobody recorded: the recorded feed of each id, their entries put
    together in one feed (the shape of a real multi-id answer; not itself recorded)."""
    ET.register_namespace("", ATOM_NS)
    ET.register_namespace("arxiv", "http://arxiv.org/schemas/atom")
    ET.register_namespace("opensearch", "http://a9.com/-/spec/opensearch/1.1/")
    base = ET.fromstring(arxiv_file("0000.0000").read_bytes())
    for one in ids:
        path = arxiv_file(one)
        if not path.exists():  # another version than the one recorded: that one
            found = sorted(ARXIV.glob(f"{arxiv_file(re.sub(r'v[0-9]+$', '', one)).stem}*.xml"))
            if not found:
                continue
            path = found[0]
        for entry in ET.fromstring(path.read_bytes()).findall(f"{{{ATOM_NS}}}entry"):
            base.append(entry)
    return ET.tostring(base, xml_declaration=True, encoding="utf-8")


@dataclass
class Request:
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]


@dataclass
class PaperServer:
    """arXiv's /api/query and Crossref's /works/{doi} from the recorded files."""

    port: int
    requests: list[Request] = field(default_factory=list)
    httpd: ThreadingHTTPServer | None = None
    fail_with: int | None = None  # answer every request with this status

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def arxiv_api(self) -> str:
        return f"{self.base}/api/query"

    @property
    def crossref_api(self) -> str:
        return f"{self.base}/works"

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, str, bytes]:
        if self.fail_with is not None:
            return self.fail_with, "text/plain", b"unavailable"
        if path == "/api/query":
            id_list = query.get("id_list", [""])[0]
            ids = [i for i in id_list.split(",") if i]
            if arxiv_file(id_list).exists():
                return 200, "application/atom+xml", arxiv_file(id_list).read_bytes()
            bad = [i for i in ids if not any(c.isdigit() for c in i)]
            if bad:  # what arXiv answers for a malformed id (recorded for "abc")
                body = (ARXIV / "idlist_abc.http400.xml").read_text().replace("abc", bad[0])
                return 400, "application/atom+xml", body.encode()
            return 200, "application/atom+xml", combined_feed(ids)
        if path.startswith("/works/"):
            doi = urllib.parse.unquote(path[len("/works/"):])
            file = CROSSREF / f"{doi.replace('/', '_')}.json"
            if file.exists():
                return 200, "application/json", file.read_bytes()
            return 404, "text/plain", (CROSSREF / "10.1371_notarealdoi.404.txt").read_bytes()
        return 404, "text/plain", b"not here"

    def start(self) -> PaperServer:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                query = urllib.parse.parse_qs(url.query)
                server.requests.append(Request(url.path, query, dict(self.headers.items())))
                status, kind, body = server.answer(url.path, query)
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02},
                         daemon=True).start()
        self.httpd = httpd
        return self

    def stop(self) -> None:
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def arxiv_requests(self) -> list[Request]:
        return [r for r in self.requests if r.path == "/api/query"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def paper_server() -> Iterator[PaperServer]:
    """Not started: nothing listens on its port until the test calls start()."""
    server = PaperServer(free_port())
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy",
                 "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


def papers_config(tmp: Path, server: PaperServer | None = None, *,
                  interval: str = "3s", cap: int = 2) -> Config:
    base = server.base if server is not None else f"http://127.0.0.1:{free_port()}"
    return load_config_text(
        f'data_dir = "{tmp / "data"}"\nshow_local = false\n'
        f'[papers]\narxiv_api = "{base}/api/query"\ncrossref_api = "{base}/works"\n'
        f'arxiv_interval = "{interval}"\nweekly_cap = {cap}\ntimeout = "5s"\n'
        f'mailto = "reader@example.org"\n')


@dataclass
class Rig:
    """A service over a real store, a real PaperApi, a ManualClock and a sleep that only
    moves the clock (and records what it was asked)."""

    config: Config
    store: Store
    clock: ManualClock
    api: PaperApi
    service: PaperService
    sleeps: list[float]


def make_rig(tmp: Path, server: PaperServer | None = None, *, interval: str = "3s",
             cap: int = 2, start: float = 1_795_000_000.0) -> Rig:
    config = papers_config(tmp, server, interval=interval, cap=cap)
    clock = ManualClock(start)
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock.advance(seconds)

    api = PaperApi(config.papers, clock, sleep=sleep, state=config.data_dir / "arxiv.turn")
    store = Store(config.database)
    service = PaperService(config, store, clock=clock, source=api)
    return Rig(config, store, clock, api, service, sleeps)


class OfflineSource:
    """A MetadataSource that never answers (UI tests: no network at all)."""

    def __init__(self) -> None:
        self.asked: list[str] = []

    def fetch_arxiv(self, ids: Any, deadline: float | None = None) -> dict[str, PaperMeta]:
        from nomadlab.core.papers import LookupFailed

        self.asked += list(ids)
        raise LookupFailed("cannot connect: Network is unreachable")

    def fetch_doi(self, doi: str, deadline: float | None = None) -> PaperMeta | None:
        from nomadlab.core.papers import LookupFailed

        self.asked.append(doi)
        raise LookupFailed("cannot connect: Network is unreachable")


HOSTILE_TITLE = "[bold]Not bold[/] and $\\sigma$-algebras: [@click=app.quit]quit[/] \x1b]0;t\x07"
HOSTILE_ABSTRACT = ("We bound $\\sigma^2 \\leq \\frac{1}{n}$ where [red]x[/red] is [b]free[/b]; "
                    "see \\cite{x} and \x1b[2J nothing cleared.")


def fill_queue(service: PaperService, clock: ManualClock) -> dict[str, int]:
    """The fixed queue of the UI tests and snapshots: every status, priorities, tags, a
    pending paper, a hostile title. Returns name -> paper id."""
    day = 86400.0
    now = clock.time()
    ids: dict[str, int] = {}

    def add(name: str, meta: PaperMeta, added: float, **extra: Any) -> None:
        paper, _ = service.add_meta(meta, now=added)
        ids[name] = paper.id

    add("zero", PaperMeta(title="0", authors=["Quan Thoi Minh Nguyen"], year=2021,
                          arxiv_id="2104.12255", arxiv_version=1, categories=["cs.CR"],
                          abstract="What is the funniest number in cryptography? 0. "
                                   "Eth2 bug bounties awarded $35,000 in total.",
                          url="https://arxiv.org/abs/2104.12255"), now - 20 * day)
    add("jupiters", PaperMeta(
        title="Frequency of Hot Jupiters and Very Hot Jupiters from the OGLE-III Transit "
              "Surveys Toward the Galactic Bulge and Carina",
        authors=["Andrew Gould", "Susan Dorsher", "B. Scott Gaudi", "Andrzej Udalski"],
        year=2006, venue="ActaAstron.56:1-50,2006", arxiv_id="astro-ph/0601001",
        categories=["astro-ph"], tags=["astro"],
        abstract="We derive the frequencies of hot Jupiters (HJs) with 3--5 day periods "
                 "(1/310)(1^{+1.39}_{-0.59})."), now - 12 * day)
    add("hostile", PaperMeta(title=HOSTILE_TITLE, authors=["Mallory [i]M[/i]"], year=2024,
                             doi="10.1234/hostile.1", abstract=HOSTILE_ABSTRACT,
                             tags=["markup"]), now - 5 * day)
    add("fret", PaperMeta(
        title="Single-molecule FRET studies on alpha-synuclein oligomerization of "
              "Parkinson’s disease genetically related mutants",
        authors=["Laura Tosatto", "Mathew H. Horrocks", "Alexander J. Dear"], year=2015,
        venue="Scientific Reports", doi="10.1038/srep16696", tags=["bio"]), now - 3 * day)
    add("pending", PaperMeta(arxiv_id="1111.2011", arxiv_version=2), now - 2 * day)
    add("title-only", PaperMeta(title="Attention Is All You Need"), now - 1 * day)
    add("read", PaperMeta(title="Proceedings of Workshop AEW10: Concepts in Information "
                                "Theory and Communications", authors=["Kees A. Schouhamer"],
                          year=2017, arxiv_id="1707.08567"), now - 30 * day)
    service.set_priority(ids["fret"], 2, now=now - 3 * day)
    service.set_priority(ids["hostile"], 1, now=now - 5 * day)
    service.start_reading(ids["zero"], now=now - 2 * day)
    service.start_reading(ids["read"], now=now - 9 * day)
    service.mark_read(ids["read"], "Workshops are where the field talks to itself.", rating=4,
                      now=now - 8 * day)
    service.set_notes(ids["zero"], "## Why\n\n- x*0 = 0 for [bold]all[/] x\n- $\\sigma$ stays\n",
                      now=now - day)
    return ids


def build_app(tmp: Path, *, fill: bool = True,  # type: ignore[no-untyped-def]
              initial_mode: str = "workspace"):
    """(app, service, clock, ids): the app over the fixed fleet and the fixed queue; its
    papers service answers no lookup (OfflineSource) and nothing connects anywhere."""
    import ui_data

    from nomadlab.cli.tui import build_app as build
    from nomadlab.remote.fleet import Fleet

    clock = ManualClock(ui_data.START)
    cfg = ui_data.config(tmp)
    cfg.papers.arxiv_api = f"http://127.0.0.1:{free_port()}/api/query"
    cfg.papers.crossref_api = f"http://127.0.0.1:{free_port()}/works"
    store = Store(cfg.database)
    fleet = Fleet(cfg, store=store, clock=clock)
    ui_data.feed(fleet, clock)
    app = build(cfg, clock=clock, start_fleet=False, store=store, fleet=fleet,
                initial_mode=initial_mode)
    service = PaperService(cfg, store, clock=clock, source=OfflineSource())
    app.services.papers = service
    ids = fill_queue(service, clock) if fill else {}
    return app, service, clock, ids


def as_json(text: str) -> Any:
    return json.loads(text)
