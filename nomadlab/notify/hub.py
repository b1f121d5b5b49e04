"""The alert hub: the alert engine, the alert log and the notifier, wired together."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from functools import cached_property
from typing import TYPE_CHECKING

from nomadlab.core.alert_store import AlertLog
from nomadlab.core.alerts import Alert, rules_for
from nomadlab.core.clock import SYSTEM_CLOCK, Clock
from nomadlab.core.config import AlertRule, Config
from nomadlab.core.logs import LogLine, LogStatus
from nomadlab.core.model import HostSample, HostStatus
from nomadlab.core.store import Store, StoreError
from nomadlab.core.tasks import BackgroundTask
from nomadlab.notify.notifier import Notifier

if TYPE_CHECKING:
    from nomadlab.core.alert_engine import AlertEngine

log = logging.getLogger(__name__)


class AlertHub:
    """The alert engine, the alert log and the notifier, wired together.

    Listens to the fleet (``fleet_status``/``fleet_sample``) and to log tails
    (``log_lines``/``log_status``); ``start()`` ticks the duration rules every
    ``tick_every`` seconds. Every new alert is stored (when there is a store), handed
    to each subscriber (the UI, ``nomadlab watch``) and delivered by the notifier.
    Monitoring never breaks because of an alert: every step swallows and logs its own
    errors.
    """

    def __init__(self, config: Config, store: Store | None = None, *,
                 clock: Clock = SYSTEM_CLOCK, notifier: Notifier | None = None,
                 hold: Callable[[], bool] | None = None,
                 rules: Iterable[AlertRule] | None = None,
                 costs: Mapping[str, float | None] | None = None,
                 hosts_of_logs: Mapping[str, str] | None = None,
                 tick_every: float = 1.0, keep_days: float | None = 90.0) -> None:
        self.config = config
        self.clock = clock
        self.rules = list(rules) if rules is not None else rules_for(config)
        if costs is None:
            costs = {**config.hosts_cost,
                     **{h.name: h.hourly_cost for h in config.hosts if h.hourly_cost is not None}}
            costs.update({h.name: None for h in config.hosts if h.name not in costs})
        self._costs = costs
        self.log = AlertLog(store, clock) if store is not None else None
        self.notifier = notifier if notifier is not None else Notifier(
            config.notify, self.rules, hold=hold, clock=clock)
        if hold is not None and self.notifier.hold is None:
            self.notifier.hold = hold
        if self.notifier.on_failure is None:
            self.notifier.on_failure = self._delivery_failed
        self.hosts_of_logs: dict[str, str] = (
            dict(hosts_of_logs) if hosts_of_logs is not None
            else {lc.name: lc.host for lc in config.logs})
        self.tick_every = tick_every
        self.keep_days = keep_days
        self._subscribers: list[Callable[[Alert], None]] = []
        self._annotators: list[Callable[[Alert], None]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._pending: list[Alert] = []  # raised before an event loop ran: sent on start()
        self._ticker = BackgroundTask("alert hub ticker")

    @cached_property
    def engine(self) -> AlertEngine:
        """The rules' state, made at the first event (its module, and the health
        rules', are imported then: the TUI paints its first frame without them)."""
        from nomadlab.core.alert_engine import AlertEngine

        return AlertEngine(self.rules, self.clock, self._costs,
                           {s.name: s.hourly_cost for s in self.config.sources})

    # ------------------------------------------------------------------ wiring

    def subscribe(self, callback: Callable[[Alert], None]) -> Callable[[], None]:
        """``callback(alert)`` for every new alert; returns the unsubscribe function."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._subscribers.remove(callback)

        return unsubscribe

    def add_annotator(self, callback: Callable[[Alert], None]) -> Callable[[], None]:
        """``callback(alert)`` for every new alert BEFORE it is stored, told and
        delivered: it may add to ``message`` and ``extra`` (the board names the card
        whose run an alert is about). Returns the function that removes it."""
        self._annotators.append(callback)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self._annotators.remove(callback)

        return remove

    def set_log_host(self, log_name: str, host: str) -> None:
        self.hosts_of_logs[log_name] = host

    # FleetListener
    def fleet_status(self, status: HostStatus) -> None:
        self._run(lambda: self.engine.on_status(status))

    def fleet_sample(self, sample: HostSample) -> None:
        self._run(lambda: self.engine.on_sample(sample))

    # log listener
    def log_lines(self, name: str, lines: list[LogLine]) -> None:
        lines = [line for line in lines if not line.history]  # old lines are not news
        if not lines:
            return
        host = self.hosts_of_logs.get(name, "")
        self._run(lambda: self.engine.on_log_lines(name, host, lines))

    def log_status(self, status: LogStatus) -> None:
        self.hosts_of_logs[status.name] = status.host

    def tick(self) -> list[Alert]:
        return self._run(self.engine.tick)

    def _run(self, step: Callable[[], list[Alert]]) -> list[Alert]:
        try:
            alerts = step()
        except Exception:
            log.exception("alert engine failed")
            return []
        self.emit(alerts)
        return alerts

    # ------------------------------------------------------------------ output

    def emit(self, alerts: Iterable[Alert]) -> None:
        """Store, tell subscribers, deliver: what happens to every new alert."""
        for alert in alerts:
            for annotate in list(self._annotators):
                try:
                    annotate(alert)
                except Exception:
                    log.exception("alert annotator failed")
            self._record(alert)
            self._tell(alert)
            self._schedule(alert)

    def _record(self, alert: Alert) -> None:
        if self.log is None:
            return
        try:
            self.log.insert(alert)
        except (sqlite3.Error, StoreError) as exc:  # a locked or full disk: still deliver
            log.warning("alert not stored: %s", exc)

    def _tell(self, alert: Alert) -> None:
        for callback in list(self._subscribers):
            try:
                callback(alert)
            except Exception:
                log.exception("alert subscriber failed")

    def _schedule(self, alert: Alert) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._pending.append(alert)
            return
        task = loop.create_task(self.notifier.deliver(alert))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _delivery_failed(self, failure: Alert) -> None:
        self.emit([failure])  # the notifier keeps it off the webhooks

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self.log is not None and self.keep_days is not None:
            try:
                self.log.prune(self.clock.time() - self.keep_days * 86400)
            except (sqlite3.Error, StoreError) as exc:
                log.warning("old alerts not pruned: %s", exc)
        pending, self._pending = self._pending, []
        for alert in pending:
            self._schedule(alert)
        self._ticker.start(self._tick_forever)

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.tick_every)
            self.tick()

    async def drain(self, timeout: float = 10.0) -> bool:
        """Wait (bounded) for deliveries in flight; True when none is left."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._tasks:
            left = deadline - loop.time()
            if left <= 0:
                return False
            await asyncio.wait(set(self._tasks), timeout=left)
        return True

    async def stop(self, timeout: float = 5.0) -> None:
        """Stop ticking; give deliveries in flight ``timeout`` seconds, then cancel them."""
        await self._ticker.stop(timeout)
        if not await self.drain(timeout):
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
