"""The notifier: an alert fanned out to the channels its rule allows, info alerts held
during deep work, webhooks retried with backoff, failures reported once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Iterable, Mapping

from nomadlab.core.alerts import (
    DELIVERY_FAILED,
    Alert,
    severity_at_least,
)
from nomadlab.core.clock import SYSTEM_CLOCK, Clock
from nomadlab.core.config import AlertRule, NotifySettings, WebhookConfig
from nomadlab.notify.channels import LOCAL_CHANNELS, SINK_CHANNELS, Sink

# notify-send, webhooks (urllib), secrets (keyring) and redaction are imported when an
# alert first goes out that way: the TUI paints its first frame without them.

log = logging.getLogger(__name__)


class Notifier:
    """Fans an alert out to the channels its rule allows and its severity reaches.

    ``hold``: while it returns True (a deep-work session), "info" alerts wait in a
    queue; :meth:`release` sends them in order (so does the next ``deliver`` once
    ``hold`` is False). Warnings and errors always go at once. ``on_failure`` hears of
    every webhook that could not be reached, as a "delivery failed" alert (at most one
    per webhook per ``failure_cooldown``); without it, that alert goes to the local
    channels directly.
    """

    def __init__(self, settings: NotifySettings | None = None,
                 rules: Iterable[AlertRule] = (), *,
                 hold: Callable[[], bool] | None = None,
                 on_failure: Callable[[Alert], None] | None = None,
                 base_delay: float = 1.0, max_delay: float = 30.0,
                 failure_cooldown: float = 600.0,
                 clock: Clock = SYSTEM_CLOCK,
                 telegram_api: str | None = None,
                 environ: Mapping[str, str] | None = None) -> None:
        self.settings = settings if settings is not None else NotifySettings()
        self.rules = {r.name: r for r in rules}
        self.hold = hold
        self.on_failure = on_failure
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.failure_cooldown = failure_cooldown
        self.clock = clock
        self.telegram_api = telegram_api
        self.environ = environ
        self.sinks: list[Sink] = []
        self._held: list[Alert] = []
        self._last_failure: dict[str, float] = {}
        self._suppressed: dict[str, int] = {}

    # ------------------------------------------------------------------ setup

    def add_sink(self, sink: Sink) -> Callable[[], None]:
        """Register a UI channel; returns a function that removes it again."""
        self.sinks.append(sink)

        def remove() -> None:
            with contextlib.suppress(ValueError):
                self.sinks.remove(sink)

        return remove

    @property
    def held(self) -> list[Alert]:
        return list(self._held)

    def _env(self) -> Mapping[str, str]:
        return os.environ if self.environ is None else self.environ

    def _telegram_api(self) -> str:
        from nomadlab.notify.webhooks import TELEGRAM_API, TELEGRAM_API_ENV

        return self.telegram_api or self._env().get(TELEGRAM_API_ENV) or TELEGRAM_API

    def _holding(self) -> bool:
        if self.hold is None:
            return False
        try:
            return bool(self.hold())
        except Exception:
            log.exception("the hold predicate failed; not holding")
            return False

    # ------------------------------------------------------------------ channels

    def channels_for(self, alert: Alert) -> list[str]:
        """Channel names this alert goes to: local channels, then webhook names."""
        s = self.settings
        if not severity_at_least(alert.severity, s.min_severity):
            return []
        rule = self.rules.get(alert.rule)
        allowed = rule.channels if rule is not None else None

        def ok(name: str) -> bool:
            return allowed is None or name in allowed

        out = [name for name, on in zip(LOCAL_CHANNELS,
                                        (s.toast, s.bell, s.desktop, s.notify_send), strict=True)
               if on and ok(name)]
        if alert.rule != DELIVERY_FAILED:  # a failure report never goes to a webhook
            out.extend(h.name for h in s.webhooks
                       if ok(h.name) and severity_at_least(alert.severity, h.min_severity))
        return out

    # ------------------------------------------------------------------ delivery

    async def deliver(self, alert: Alert) -> None:
        """Send the alert everywhere it should go. Never raises (except cancellation)."""
        try:
            holding = self._holding()
            if holding and alert.severity == "info":
                self._held.append(alert)
                return
            if self._held and not holding:
                await self.release()
            await self._send(alert)
        except Exception:
            log.exception("alert delivery failed unexpectedly")

    async def release(self) -> None:
        """Send the held alerts, oldest first (a deep-work session ended)."""
        while self._held:
            alert = self._held.pop(0)
            try:
                await self._send(alert)
            except Exception:
                log.exception("alert delivery failed unexpectedly")

    async def _send(self, alert: Alert) -> None:
        channels = self.channels_for(alert)
        if not channels:
            return
        for channel in SINK_CHANNELS:
            if channel in channels:
                for sink in list(self.sinks):
                    try:
                        sink(channel, alert)
                    except Exception:
                        log.exception("alert sink %r failed", channel)
        from nomadlab.notify.desktop import notify_send, notify_send_available

        jobs = []
        if "notify_send" in channels and notify_send_available(self._env()):
            jobs.append(notify_send(alert.title, alert.message, alert.severity,
                                    environ=self._env()))
        hooks = {h.name: h for h in self.settings.webhooks}
        for name in channels:
            hook = hooks.get(name)
            if hook is not None and name not in LOCAL_CHANNELS:
                jobs.append(self.send_webhook(hook, alert))
        if jobs:
            for result in await asyncio.gather(*jobs, return_exceptions=True):
                if isinstance(result, BaseException) and not isinstance(result, Exception):
                    raise result
                if isinstance(result, Exception):
                    log.error("alert channel failed: %s", type(result).__name__)

    async def send_webhook(self, hook: WebhookConfig, alert: Alert) -> bool:
        """One webhook, with retries. True when it was delivered; failures are reported."""
        from nomadlab.core.secrets import get_secret, how_to_set
        from nomadlab.notify.redaction import redact
        from nomadlab.notify.webhooks import DeliveryError, build_request, send_request

        env = self._env()
        secret = await asyncio.to_thread(get_secret, hook.secret, env)
        if secret is None:
            await self._failed(hook, alert, f"secret {hook.secret!r} is not set; "
                               f"{how_to_set(hook.secret)}", [])
            return False
        secrets = [secret, secret.strip()]
        try:
            request = build_request(hook, alert, secret, telegram_api=self._telegram_api())
        except DeliveryError as exc:
            await self._failed(hook, alert, str(exc), secrets)
            return False
        attempts = max(0, self.settings.retries) + 1
        error: DeliveryError | None = None
        tried = 0
        for attempt in range(attempts):
            tried = attempt + 1
            try:
                await asyncio.to_thread(send_request, request, hook.timeout, secrets)
            except DeliveryError as exc:
                error = exc
                if not exc.retry or attempt + 1 >= attempts:
                    break
                delay = min(self.max_delay, self.base_delay * (2 ** attempt))
                if exc.retry_after is not None:
                    delay = min(self.max_delay, max(delay, exc.retry_after))
                log.info("webhook %s: attempt %d failed (%s); retrying in %.2gs", hook.name,
                         tried, redact(str(exc), secrets), delay)
                await asyncio.sleep(delay)
            else:
                return True
        why = str(error) if error is not None else "unknown error"
        await self._failed(hook, alert, f"gave up after {tried} attempt"
                           f"{'s' if tried != 1 else ''}: {why}", secrets)
        return False

    async def _failed(self, hook: WebhookConfig, alert: Alert, reason: str,
                      secrets: list[str]) -> None:
        from nomadlab.notify.redaction import redact

        reason = redact(reason, secrets)
        log.warning("alert %r not delivered to %s: %s", alert.title, hook.name, reason)
        now = self.clock.time()
        last = self._last_failure.get(hook.name)
        if last is not None and now - last < self.failure_cooldown:
            self._suppressed[hook.name] = self._suppressed.get(hook.name, 0) + 1
            return
        self._last_failure[hook.name] = now
        suppressed = self._suppressed.pop(hook.name, 0)
        message = (f"\u201c{alert.title}\u201d was not sent to {hook.name} ({hook.kind}): "
                   f"{reason}")
        if suppressed:
            message += f" ({suppressed} earlier failure{'s' if suppressed != 1 else ''} "
            message += "of this webhook not reported)"
        failure = Alert(
            time=now, rule=DELIVERY_FAILED, severity="warning",
            title=f"not delivered: {hook.name}", message=message, host=alert.host,
            log=alert.log,
            extra={"webhook": hook.name, "kind": hook.kind, "alert_rule": alert.rule,
                   "alert_id": alert.id, "reason": reason, "suppressed": suppressed},
        )
        if self.on_failure is not None:
            try:
                self.on_failure(failure)
            except Exception:
                log.exception("the delivery-failure callback failed")
        else:
            await self._send(failure)


