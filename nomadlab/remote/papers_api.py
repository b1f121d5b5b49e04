"""Paper metadata over the network: the arXiv export API and Crossref (stdlib urllib).

Blocking calls, meant for a worker thread (the TUI) or a command (the CLI). arXiv asks
for one request at a time and at most one every 3 seconds: :class:`RateLimiter` keeps
to that across threads and, through a small lock file next to the database, across
nomadlab processes (the TUI and CLI commands run at the same time). Time comes from
an injected clock and waiting from an injected ``sleep``, so tests never sleep.
Parsing is in ``nomadlab/core/papers/formats.py`` (pure).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from nomadlab import __version__
from nomadlab.core.clock import Clock
from nomadlab.core.config import Config, PapersSettings
from nomadlab.core.papers import ARXIV_MIN_INTERVAL, LookupFailed, PaperService
from nomadlab.core.papers.formats import (
    FeedError,
    PaperMeta,
    clean_space,
    parse_arxiv_feed,
    parse_crossref_work,
)
from nomadlab.core.store import Store

try:
    import fcntl
except ImportError:  # not POSIX: the limit holds within one process only
    fcntl = None  # type: ignore[assignment]

MAX_BODY = 8 * 1024 * 1024
REAL_ARXIV_HOSTS = ("export.arxiv.org", "arxiv.org", "www.arxiv.org")


class RateLimiter:
    """One request at a time, at least ``interval`` seconds between the end of one and
    the start of the next. ``state`` (a file) shares the last request time and the
    turn between processes."""

    def __init__(self, interval: float, clock: Clock, *,
                 sleep: Callable[[float], None] = time.sleep, state: Path | None = None) -> None:
        self.interval = interval
        self.clock = clock
        self.sleep = sleep
        self.state = state
        self._lock = threading.Lock()
        self._last: float | None = None  # wall clock, when there is no state file

    def _remaining(self, deadline: float | None) -> float | None:
        return None if deadline is None else deadline - self.clock.monotonic()

    @contextlib.contextmanager
    def _file_lock(self, deadline: float | None) -> Iterator[int | None]:
        if self.state is None or fcntl is None:
            yield None
            return
        try:
            self.state.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.state, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            yield None  # cannot share the turn: keep to it in this process at least
            return
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    remaining = self._remaining(deadline)
                    if remaining is not None and remaining <= 0:
                        raise LookupFailed("another nomadlab is asking arXiv; "
                                           "left for later") from None
                    self.sleep(0.05)
            yield fd
        finally:
            os.close(fd)  # releases the lock

    def _read_last(self, fd: int | None) -> float | None:
        if fd is None:
            return self._last
        try:
            os.lseek(fd, 0, os.SEEK_SET)
            text = os.read(fd, 64).decode().strip()
            return float(text) if text else None
        except (OSError, ValueError):
            return None

    def _write_last(self, fd: int | None, when: float) -> None:
        self._last = when
        if fd is None:
            return
        with contextlib.suppress(OSError):
            os.lseek(fd, 0, os.SEEK_SET)
            os.ftruncate(fd, 0)
            os.write(fd, f"{when:.3f}\n".encode())

    @contextlib.contextmanager
    def turn(self, deadline: float | None = None, what: str = "arXiv") -> Iterator[None]:
        """Wait for our turn (bounded by ``deadline``, monotonic) and hold it."""
        remaining = self._remaining(deadline)
        if not self._lock.acquire(timeout=-1 if remaining is None else max(0.0, remaining)):
            raise LookupFailed(f"{what}: busy with another request; left for later")
        try:
            with self._file_lock(deadline) as fd:
                last = self._read_last(fd)
                wait = 0.0
                if last is not None:
                    # A clock set back must not make us wait longer than the interval.
                    wait = min(self.interval, last + self.interval - self.clock.time())
                if wait > 0:
                    remaining = self._remaining(deadline)
                    if remaining is not None and wait > remaining:
                        raise LookupFailed(f"{what}: the next request is allowed in "
                                           f"{wait:.1f}s; left for later")
                    self.sleep(wait)
                try:
                    yield
                finally:
                    self._write_last(fd, self.clock.time())
        finally:
            self._lock.release()


def user_agent(mailto: str | None) -> str:
    """Crossref's etiquette: name/version and, for its polite pool, a mailto."""
    agent = f"nomadlab/{__version__} (terminal reading queue; Python urllib)"
    if mailto:
        agent = f"nomadlab/{__version__} (mailto:{mailto})"
    return agent


class PaperApi:
    """The MetadataSource of the papers service: arXiv for arXiv ids, Crossref for DOIs."""

    def __init__(self, settings: PapersSettings, clock: Clock, *,
                 sleep: Callable[[float], None] = time.sleep,
                 state: Path | None = None) -> None:
        self.settings = settings
        self.clock = clock
        interval = settings.arxiv_interval
        host = (urllib.parse.urlsplit(settings.arxiv_api).hostname or "").lower()
        if host in REAL_ARXIV_HOSTS:
            interval = max(interval, ARXIV_MIN_INTERVAL)  # arXiv's terms of use
        self.arxiv_limiter = RateLimiter(interval, clock, sleep=sleep, state=state)
        self.crossref_limiter = RateLimiter(0.0, clock, sleep=sleep)
        self.headers = {"User-Agent": user_agent(settings.mailto)}
        self.requests: list[str] = []  # URLs asked, newest last (tests, diagnostics)

    @classmethod
    def from_config(cls, config: Config, clock: Clock) -> PaperApi:
        return cls(config.papers, clock, state=config.data_dir / "papers-arxiv.turn")

    # ------------------------------------------------------------------ HTTP

    def _timeout(self, deadline: float | None) -> float:
        timeout = self.settings.timeout
        if deadline is not None:
            timeout = min(timeout, deadline - self.clock.monotonic())
        if timeout <= 0:
            raise LookupFailed("no time left for the request; left for later")
        return timeout

    def _get(self, url: str, deadline: float | None, accept: str) -> tuple[int, bytes]:
        """(status, body) of a GET; LookupFailed(transient) when no answer came."""
        request = urllib.request.Request(url, headers={**self.headers, "Accept": accept})
        self.requests.append(url)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout(deadline)) as response:
                return int(response.status), response.read(MAX_BODY)
        except urllib.error.HTTPError as exc:
            try:
                body = exc.read(MAX_BODY)
            except (OSError, http.client.HTTPException):
                body = b""
            finally:
                exc.close()
            return int(exc.code), body
        except urllib.error.URLError as exc:
            reason = exc.reason
            text = getattr(reason, "strerror", None) or str(reason)
            raise LookupFailed(f"cannot connect: {text}") from None
        except (OSError, http.client.HTTPException) as exc:  # timeouts, resets, bad replies
            raise LookupFailed(f"{type(exc).__name__}: {exc}".rstrip(": ")) from None
        except ValueError as exc:
            raise LookupFailed(f"invalid URL {url!r}: {exc}", transient=False) from None

    # ------------------------------------------------------------------ arXiv

    def arxiv_url(self, ids: Sequence[str]) -> str:
        query = urllib.parse.urlencode({"id_list": ",".join(ids), "start": 0,
                                        "max_results": len(ids)}, safe=",/")
        return f"{self.settings.arxiv_api}?{query}"

    def fetch_arxiv(self, ids: Sequence[str], deadline: float | None = None
                    ) -> dict[str, PaperMeta]:
        """One request for all ``ids`` (id_list). Versionless id -> metadata."""
        if not ids:
            return {}
        url = self.arxiv_url(ids)
        with self.arxiv_limiter.turn(deadline, "arXiv"):
            status, body = self._get(url, deadline, "application/atom+xml")
        try:
            feed = parse_arxiv_feed(body)
        except FeedError as exc:
            if status >= 400:
                raise LookupFailed(f"arXiv answered HTTP {status}",
                                   transient=status >= 500 or status == 429) from None
            raise LookupFailed(str(exc)) from None
        if feed.errors:
            bad = {message.rsplit(" ", 1)[-1] for message in feed.errors
                   if message.startswith("incorrect id format for")}
            raise LookupFailed("arXiv: " + "; ".join(clean_space(e) for e in feed.errors),
                               transient=False, bad_ids=bad)
        if status >= 400:
            raise LookupFailed(f"arXiv answered HTTP {status}",
                               transient=status >= 500 or status == 429)
        return {meta.arxiv_id: meta for meta in feed.entries if meta.arxiv_id}

    # ------------------------------------------------------------------ Crossref

    def crossref_url(self, doi: str) -> str:
        return f"{self.settings.crossref_api.rstrip('/')}/{urllib.parse.quote(doi, safe='/')}"

    def fetch_doi(self, doi: str, deadline: float | None = None) -> PaperMeta | None:
        url = self.crossref_url(doi)
        with self.crossref_limiter.turn(deadline, "Crossref"):
            status, body = self._get(url, deadline, "application/json")
        if status == 404:
            return None
        if status >= 400:
            raise LookupFailed(f"Crossref answered HTTP {status}",
                               transient=status >= 500 or status in (408, 429))
        try:
            return parse_crossref_work(body)
        except FeedError as exc:
            raise LookupFailed(str(exc)) from None


def make_service(*, config: Config, store: Store, clock: Clock, fleet: object = None,
                 logs: object = None, alerts: object = None) -> PaperService:
    """The papers feature for the app and the CLI (nomadlab/features.py).

    The composition root: the network side is built here (remote/ may import core/,
    never the other way), the service in core/ only knows the MetadataSource protocol."""
    return PaperService(config, store, clock=clock, source=PaperApi.from_config(config, clock))
