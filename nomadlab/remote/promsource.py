"""A ``[[sources]]`` entry of kind prometheus: the hosts one Prometheus knows, kept fresh.

One refresh is a handful of instant queries for the whole fleet, run together: one
per GPU counter that moves, by host and GPU only (no metric name, no identity labels:
the fewest series, bytes to move and parse, and Prometheus's own time at a thousand
hosts), node stats, node CPU and ``up``. On the first refresh, and when a GPU or a
target shows up that the last full one did not know, two more before anything is
shown: the other counters (clocks, power limit, free memory, ...) and each GPU's
identity (UUID, model, target) once, not once per counter. Every ``FULL_EVERY``-th
refresh asks those two (and the used memory, for the total) in the background once
its lean answers are shown: its frame does not wait for them, and the hosts where they
changed something are published again when they come. Only hosts whose state changed
have their status published again. Hosts seen for the
first time get their sparklines from a range query. A failure of the source as a
whole (unreachable, 401, a PromQL error) is the source's state, with the reason;
the hosts it fed turn stale, and nothing else stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from nomadlab.core.clock import SYSTEM_CLOCK, Clock
from nomadlab.core.config import SourceConfig
from nomadlab.core.model import HostSample, HostStatus
from nomadlab.core.promfleet import PromFleet, Refresh, SlowRefresh, history_points
from nomadlab.core.promql import FULL_EVERY, queries
from nomadlab.core.secrets import get_secret, how_to_set
from nomadlab.core.source import UNHEARD, Source, SourceListener, SourceState, SourceStatus
from nomadlab.core.tasks import BackgroundTask
from nomadlab.remote.prometheus import PrometheusClient, PrometheusError

BACKFILL_SECONDS = 300.0  # the fleet table's sparkline span
BACKFILL_STEP = 10.0
PUBLISH_BATCH = 50  # hosts published between two turns of the event loop
BACKGROUND_DELAY = 1.0  # seconds, at most: see PrometheusSource.background_delay


__all__ = ["PrometheusSource", "SourceState", "SourceStatus"]

P = ParamSpec("P")
T = TypeVar("T")

Backfill = Callable[[str, int, list[tuple[float, float]], list[tuple[float, float]]], None]


class PrometheusSource(Source):
    kind = "prometheus"

    def __init__(self, config: SourceConfig, *, clock: Clock = SYSTEM_CLOCK,
                 on_status: Callable[[HostStatus], None] = UNHEARD.host_status,
                 on_sample: Callable[[HostSample], None] = UNHEARD.host_sample,
                 on_backfill: Backfill | None = None,
                 on_source: Callable[[SourceStatus], None] | None = None) -> None:
        self.config = config
        self.clock = clock
        self.on_status = on_status
        self.on_sample = on_sample
        self.on_backfill = on_backfill
        self.on_source = on_source
        self.model = PromFleet(config.name, config.host_label)
        self.queries = queries(config.selector, config.host_label)
        self.status = SourceStatus(config.name, config.kind)
        self.client: PrometheusClient | None = None
        self.interval = config.refresh
        self._task = BackgroundTask(f"prometheus {config.name}")
        self.first_refresh = asyncio.Event()
        self._refreshes = 0  # good refreshes since the last full: every full_every-th
        self.full_every = FULL_EVERY  # ... reads the identities and slow counters again
        self._full_due = False  # the background read met a GPU or target not known
        # the identities and slow counters being read after a lean refresh, if any
        self.background: asyncio.Task[SlowRefresh | None] | None = None
        self.background_error: str | None = None  # why the last one failed, if it did
        # seconds between a scheduled full refresh's publishing and its slow half's
        # queries: the table paints what was published meanwhile
        self.background_delay = min(BACKGROUND_DELAY, self.interval / 4)
        # the model is updated in worker threads: one at a time
        self._model_lock = threading.Lock()

    # ------------------------------------------------------------------ as a Source

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def source_status(self) -> SourceStatus:
        return self.status

    def attach(self, listener: SourceListener) -> None:
        self.on_status = listener.host_status
        self.on_sample = listener.host_sample
        self.on_backfill = listener.host_history
        self.on_source = listener.source_status

    async def ready(self) -> None:
        await self.first_refresh.wait()

    def hourly_cost(self, host: str) -> float | None:
        return self.config.hourly_cost

    def _client(self) -> PrometheusClient:
        if self.client is None:
            token = None
            if self.config.secret:
                token = get_secret(self.config.secret)
                if token is None:
                    raise PrometheusError(f"secret {self.config.secret!r} is not set: "
                                          + how_to_set(self.config.secret), kind="auth")
            self.client = PrometheusClient(self.config.url, token=token,
                                           timeout=self.config.timeout)
        return self.client

    def _set_source(self, state: SourceState, error: str | None) -> None:
        self.status.state = state
        self.status.error = error
        self.status.hosts = sorted(self.model.statuses)
        if state is SourceState.LIVE:
            self.status.refreshed = self.clock.time()
        if self.on_source is not None:
            self.on_source(self.status)

    async def refresh(self) -> Refresh | None:
        """One refresh: query, publish samples and statuses. None when the source failed.

        A scheduled full refresh is shown from its lean answers; the identities and slow
        counters come in :attr:`background`, published when they arrive."""
        now = self.clock.time()
        q = self.queries
        full = self._refreshes == 0 or self._full_due
        scheduled = not full and self._refreshes % self.full_every == 0
        try:
            client = self._client()

            async def ask(full: bool) -> Refresh:
                # every query at once: Prometheus answers one while this side reads
                # another. A full refresh adds the slow counters and the identities.
                lean = q.lean_any if full or self.model.hostless else q.lean
                names = list(lean)
                more = [q.identity, q.slow] if full else []
                *answers, node, cpu, up = await asyncio.gather(
                    *(client.query(x) for x in (*more, *(lean[n] for n in names))),
                    client.query(q.node), client.query(q.cpu), client.query(q.up))
                identity, slow = answers[:2] if full else ([], [])
                gpus = dict(zip(names, answers[len(more):], strict=True))
                # Building the samples is pure and only this source touches its model:
                # in a thread, so that keys and frames go on being handled meanwhile.
                return await asyncio.to_thread(self._locked, self.model.update, now, gpus,
                                               node, cpu, up, full=full,
                                               identity=identity, slow=slow)

            result = await ask(full)
            if result.unknown_gpus:  # a GPU or target the last full refresh did not know
                full = True
                result = await ask(full)
        except PrometheusError as exc:
            for status in self.model.fail_all(now, str(exc)).values():
                self.on_status(status)
            self._set_source(SourceState.FAILED, str(exc))
            self.first_refresh.set()
            return None
        background = (scheduled and not full
                      and (self.background is None or self.background.done()))
        self._refreshes = 1 if full or background else self._refreshes + 1
        if full:
            self._full_due = False
        await self._publish(result.statuses, result.samples, result.changed)
        self._set_source(SourceState.LIVE, None)
        self.first_refresh.set()
        if background:
            # once this refresh is published (and painted: background_delay): its
            # frame does not share the CPU with the reading of the slow half
            self.background = asyncio.get_running_loop().create_task(self._read_slow(client))
        if result.new_hosts and self.on_backfill is not None:
            # after the samples: the first screen does not wait for the history
            await self._backfill(set(result.new_hosts), now)
        return result

    def _locked(self, update: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        with self._model_lock:
            return update(*args, **kwargs)

    async def _publish(self, statuses: dict[str, HostStatus], samples: dict[str, HostSample],
                       changed: set[str]) -> None:
        for count, (host, status) in enumerate(statuses.items(), 1):
            if host in changed:
                self.on_status(status)
            sample = samples.get(host)
            if sample is not None:
                self.on_sample(sample)
            if count % PUBLISH_BATCH == 0:
                await asyncio.sleep(0)  # let a keypress in between

    async def _read_slow(self, client: PrometheusClient) -> SlowRefresh | None:
        """The other half of a scheduled full refresh, off the path to the frame: the
        identities and slow counters (and the used memory, for the total), applied to
        the model when they come; the hosts they changed are published again. A failure
        leaves them as they were (the source's state is the lean refreshes' to say)."""
        await asyncio.sleep(self.background_delay)
        q = self.queries
        used = (q.lean_any if self.model.hostless else q.lean)["DCGM_FI_DEV_FB_USED"]
        try:
            identity, slow, used_now = await asyncio.gather(
                client.query(q.identity), client.query(q.slow), client.query(used))
        except PrometheusError as exc:
            self.background_error = str(exc)
            return None
        self.background_error = None
        result = await asyncio.to_thread(self._locked, self.model.update_slow,
                                         identity, slow, used_now)
        if result.unknown_gpus:
            self._full_due = True
        if self.status.state is not SourceState.LIVE:
            return result  # the hosts are stale now: the next good refresh shows it all
        for count, sample in enumerate(result.samples.values(), 1):
            self.on_sample(sample)
            if count % PUBLISH_BATCH == 0:
                await asyncio.sleep(0)  # let a keypress in between
        return result

    async def _backfill(self, hosts: set[str], now: float) -> None:
        assert self.on_backfill is not None and self.client is not None
        # the sparkline's span at its resolution (300 s, 30 columns): more points
        # than that would only cost memory and parsing at a thousand hosts
        start = now - BACKFILL_SECONDS
        step = max(self.interval, BACKFILL_STEP)
        try:
            util = await self.client.query_range(self.queries.util_range, start, now, step)
        except PrometheusError:
            return  # sparklines fill up as samples come; the refresh itself succeeded
        u = history_points(((s.labels, s.points) for s in util), hosts, self.model)
        for key in sorted(u):
            # the newest point is the sample just published: it is in the history
            self.on_backfill(key[0], key[1], [p for p in u[key] if p[0] < now], [])

    async def _run(self) -> None:
        while True:
            started = self.clock.monotonic()
            await self.refresh()
            spent = self.clock.monotonic() - started
            await asyncio.sleep(max(0.0, self.interval - spent))

    def start(self) -> None:
        self._task.start(self._run)

    async def stop(self) -> None:
        if self.background is not None:
            self.background.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.background
            self.background = None
        await self._task.stop()
