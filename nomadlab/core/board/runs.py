"""A card's run: the log, host and Slurm job it is linked to, its live state, and
following the logs of running cards; what the board needs of the logs, fleet and
alerts services."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from nomadlab.core.alerts import Alert
from nomadlab.core.board.model import (
    Card,
    LiveState,
    gpu_utilization,
)
from nomadlab.core.board.records import _SELECT, BoardRecords, _card
from nomadlab.core.logs import LogBuffer, LogStatus
from nomadlab.core.model import LOCAL_HOST, HostSample

if TYPE_CHECKING:
    from nomadlab.core.features import JobsLookup
    from nomadlab.core.jobs.model import Job

log = logging.getLogger(__name__)
# --------------------------------------------------------------------------- what it reads


class _Tail(Protocol):
    @property
    def buffer(self) -> LogBuffer: ...


class LogsLike(Protocol):
    """What the service needs of :class:`nomadlab.remote.tail.Logs`."""

    @property
    def tails(self) -> Mapping[str, _Tail]: ...

    @property
    def statuses(self) -> Mapping[str, LogStatus]: ...

    def open_adhoc(self, host: str, path: str) -> str: ...


class FleetLike(Protocol):
    @property
    def latest(self) -> Mapping[str, HostSample]: ...


class AlertsLike(Protocol):
    def subscribe(self, callback: Callable[[Alert], None]) -> Callable[[], None]: ...

    def emit(self, alerts: Iterable[Alert]) -> None: ...


@runtime_checkable
class AnnotatingAlerts(AlertsLike, Protocol):
    """An AlertHub that lets the board name its cards in an alert before it goes out."""

    def add_annotator(self, callback: Callable[[Alert], None]) -> Callable[[], None]: ...


class BoardRuns(BoardRecords):
    """Cards with a run; the attributes are set by BoardService.__init__."""

    fleet: FleetLike | None
    logs: LogsLike | None
    jobs: JobsLookup | None

    # -------------------------------------------------------------- runs

    def log_name(self, card: Card) -> str | None:
        """The followed log a card's ``log`` link names: a [[logs]] name, an ad hoc
        "host:path", or a path on the card's ``host``."""
        link = card.links.get("log")
        if not link:
            return self._job_log(card)
        known = {lc.name for lc in self.config.logs}
        if self.logs is not None:
            known |= set(self.logs.tails)
        if link in known:
            return link
        head, sep, _rest = link.partition(":")
        hosts = {h.name for h in self.config.hosts} | {LOCAL_HOST}
        if sep and head in hosts:
            return link
        host = card.links.get("host")
        if host:
            return f"{host}:{link}"
        return link

    def card_host(self, card: Card) -> str | None:
        host = card.links.get("host")
        if host:
            return host
        name = self.log_name(card)
        if name is None:
            return None
        for lc in self.config.logs:
            if lc.name == name:
                return lc.host
        head, sep, _ = name.partition(":")
        return head if sep else None

    def has_run(self, card: Card) -> bool:
        return bool(card.links.get("host") or card.links.get("log") or card.links.get("job"))

    def card_job(self, card: Card) -> Job | None:
        """The Slurm job a ``job=CLUSTER:ID`` link names, as the jobs service last saw it."""
        link = card.links.get("job")
        if not link or self.jobs is None:
            return None
        cluster, _, ident = link.partition(":")
        return self.jobs.find(cluster, ident)

    def _job_log(self, card: Card) -> str | None:
        """``login-host:stdout`` of the card's job (followed like a log link)."""
        job = self.card_job(card)
        host = (self.jobs.login_host(job.cluster)
                if job is not None and self.jobs is not None else None)
        if job is None or host is None or not job.stdout:
            return None
        return f"{host}:{job.stdout}"

    def live(self, card: Card, now: float | None = None) -> LiveState:
        """The run's state now: GPU utilization, last log line, time running."""
        now = self.clock.time() if now is None else now
        host = self.card_host(card)
        name = self.log_name(card)
        sample = self.fleet.latest.get(host) if self.fleet is not None and host else None
        util, scope, gpus = gpu_utilization(sample, card.links.get("command"))
        last: str | None = None
        state: str | None = None
        if self.logs is not None and name:
            tail = self.logs.tails.get(name)
            if tail is not None and len(tail.buffer):
                last = tail.buffer[-1].text
            status = self.logs.statuses.get(name)
            if status is not None:
                state = str(status.state)
        running = now - card.entered if card.column == self.run_column(card.board) else None
        job = self.card_job(card)
        job_state = None
        if job is not None:
            job_state = str(job.state)
            running = job.elapsed_s(now)
        elif card.links.get("job"):
            job_state = "not in the queue"
        return LiveState(host=host, log=name, utilization=util, scope=scope, gpus=gpus,
                         last_line=last, running_for=running, log_state=state,
                         job_state=job_state)

    def follow_running_logs(self) -> list[str]:
        """Follow (ad hoc) the logs of cards in a run column that are not followed yet,
        so their alerts can move them. Returns the names newly followed."""
        if self.logs is None:
            return []
        opened = []
        try:
            rows = self.store.query(
                f"{_SELECT} WHERE archived IS NULL AND deleted IS NULL AND links != '{{}}'")
        except sqlite3.Error:
            return []
        for card in map(_card, rows):
            if card.column != self.run_column(card.board):
                continue
            name = self.log_name(card)
            if not name or name in self.logs.tails:
                continue
            host, sep, path = name.partition(":")
            if not sep:
                continue
            try:
                opened.append(self.logs.open_adhoc(host, path))
            except (KeyError, ValueError) as exc:
                log.debug("card #%d: log %s not followed: %s", card.id, name, exc)
        return opened
