"""Telling the user: terminal bell and desktop notifications, notify-send, webhooks.

Channels, by name (the names ``[[alerts]] channels`` may list):

- ``toast``, ``bell``, ``desktop``: UI channels. The :class:`Notifier` hands the alert to
  the sinks registered with :meth:`Notifier.add_sink`; the TUI shows a toast, and
  :func:`terminal_sink` writes :func:`bell` / :func:`terminal_notification` through
  whatever writes to the terminal (Textual's driver, or /dev/tty for ``nomadlab watch``).
- ``notify_send``: ``notify-send`` on this machine, where it exists and a display does.
- every ``[[notify.webhooks]]`` by its name: generic JSON, Slack, Discord, ntfy, Telegram.

Terminal notifications are OSC escape sequences, ended with BEL (accepted by every
terminal that knows them): OSC 777 (``ESC ] 777;notify;TITLE;BODY BEL``: foot, VTE
terminals, urxvt, WezTerm, Ghostty) or OSC 9 (``ESC ] 9;TEXT BEL``: iTerm2, kitty,
WezTerm, Ghostty, ConEmu). :func:`terminal_style` picks one from the environment
(``NOMADLAB_OSC=777|9|both|off`` overrides); they travel over SSH like any output. In
tmux they are wrapped for passthrough, which tmux 3.3+ only lets through with
``set -g allow-passthrough on``.

Webhook URLs and bot tokens are secrets (:mod:`nomadlab.core.secrets`), read at send
time and never written to a log or a message: failure texts are redacted. The Telegram
API base is ``https://api.telegram.org``; ``NOMADLAB_TELEGRAM_API`` (or
``Notifier(telegram_api=...)``) points it elsewhere: a self-hosted Bot API server, or a
test server on 127.0.0.1.

Delivery never blocks the caller and never raises into it: webhooks go out with urllib
in worker threads, with a timeout per request and retries with exponential backoff; a
webhook that still fails is reported as an alert of its own (rule "delivery failed"),
which goes to the local channels only, so a broken webhook cannot loop.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import html
import http.client
import json
import logging
import os
import re
import shutil
import sqlite3
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from nomadlab.core.alerts import (
    DELIVERY_FAILED,
    Alert,
    AlertEngine,
    AlertLog,
    rules_for,
    severity_at_least,
)
from nomadlab.core.clock import SYSTEM_CLOCK, Clock
from nomadlab.core.config import AlertRule, Config, NotifySettings, WebhookConfig
from nomadlab.core.logs import LogLine, LogStatus
from nomadlab.core.model import HostSample, HostStatus
from nomadlab.core.secrets import get_secret, how_to_set
from nomadlab.core.store import Store, StoreError

log = logging.getLogger(__name__)

TELEGRAM_API = "https://api.telegram.org"
TELEGRAM_API_ENV = "NOMADLAB_TELEGRAM_API"
OSC_ENV = "NOMADLAB_OSC"
OSC_STYLES = ("777", "9", "both", "off")
LOCAL_CHANNELS = ("toast", "bell", "desktop", "notify_send")
SINK_CHANNELS = ("toast", "bell", "desktop")

Sink = Callable[[str, Alert], None]
"""A UI channel: called with the channel name ("toast", "bell", "desktop") and the alert."""


# --------------------------------------------------------------------------- terminal

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


def _plain(text: str, limit: int) -> str:
    """One line of printable text: every control character (ESC, BEL, C1 ...) a space."""
    text = " ".join(_CONTROL.sub(" ", text).split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def bell() -> str:
    return "\x07"


def tmux_wrap(sequence: str) -> str:
    """tmux passthrough: DCS tmux; the sequence with every ESC doubled; ST."""
    return "\x1bPtmux;" + sequence.replace("\x1b", "\x1b\x1b") + "\x1b\\"


def terminal_notification(title: str, body: str, tmux: bool = False, *,
                          style: str = "777") -> str:
    """The escape sequence(s) for a desktop notification through the terminal.

    Title and body are made one printable line each (no ESC, BEL or other control
    characters, so nothing can end the sequence early); the OSC 777 title has no ``;``
    (it separates the fields). OSC 9 has one field: "title: body", never starting with
    "digits;" (which ConEmu reads as a command). ``style`` is "777", "9" or "both".
    """
    title = _plain(title, 100)
    body = _plain(body, 500)
    parts: list[str] = []
    if style in ("777", "both"):
        parts.append(f"\x1b]777;notify;{title.replace(';', ',')};{body}\x07")
    if style in ("9", "both"):
        text = f"{title}: {body}" if title and body else title or body
        text = re.sub(r"^(\d+);", r"\1,", text)
        parts.append(f"\x1b]9;{text}\x07")
    if tmux:
        return "".join(tmux_wrap(p) for p in parts)
    return "".join(parts)


def terminal_style(environ: Mapping[str, str] | None = None) -> str:
    """Which OSC the terminal (probably) understands: "777", "9", "both" or "off".

    iTerm2 sets LC_TERMINAL, which ssh forwards by default (SendEnv LC_*), so it is
    recognised on a remote host too; unknown terminals get OSC 777.
    """
    env = os.environ if environ is None else environ
    chosen = env.get(OSC_ENV, "").strip().lower()
    if chosen in OSC_STYLES:
        return chosen
    if env.get("LC_TERMINAL") == "iTerm2" or env.get("TERM_PROGRAM") == "iTerm.app":
        return "9"
    if env.get("KITTY_WINDOW_ID") or env.get("ConEmuANSI"):
        return "9"
    return "777"


def terminal_sink(write: Callable[[str], None],
                  environ: Mapping[str, str] | None = None) -> Sink:
    """A sink for the "bell" and "desktop" channels that writes escape sequences.

    ``write`` puts text on the terminal: ``app._driver.write`` in the TUI, a /dev/tty
    file for ``nomadlab watch``. Errors from ``write`` are swallowed (a closed tty must
    not stop the alerts).
    """
    env = os.environ if environ is None else environ
    tmux = bool(env.get("TMUX"))
    style = terminal_style(env)

    def sink(channel: str, alert: Alert) -> None:
        try:
            if channel == "bell":
                write(bell())
            elif channel == "desktop" and style != "off":
                write(terminal_notification(alert.title, alert.message, tmux, style=style))
        except (OSError, ValueError):
            pass

    return sink


# --------------------------------------------------------------------------- notify-send

NOTIFY_SEND_URGENCY = {"info": "low", "warning": "normal", "error": "critical"}


def notify_send_available(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    has_display = bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))
    return has_display and shutil.which("notify-send", path=env.get("PATH")) is not None


async def notify_send(title: str, body: str, severity: str = "info", *,
                      timeout: float = 5.0, environ: Mapping[str, str] | None = None) -> bool:
    """Run notify-send (no shell; arguments as a list, after ``--``). True when it worked."""
    env = os.environ if environ is None else environ
    exe = shutil.which("notify-send", path=env.get("PATH"))
    if exe is None:
        return False
    args = [exe, "--app-name=nomadlab",
            f"--urgency={NOTIFY_SEND_URGENCY.get(severity, 'normal')}", "--",
            _plain(title, 100), html.escape(_plain(body, 500), quote=False)]
    try:
        proc = await asyncio.create_subprocess_exec(
            *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL, env=dict(env))
    except OSError:
        return False
    try:
        await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        return False
    return proc.returncode == 0


# --------------------------------------------------------------------------- webhooks


@dataclass(slots=True, frozen=True)
class HttpRequest:
    url: str
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)


class DeliveryError(Exception):
    """A request that did not succeed; ``retry`` says whether trying again may help."""

    def __init__(self, message: str, *, retry: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry = retry
        self.retry_after = retry_after


def iso_time(when: float) -> str:
    return datetime.fromtimestamp(when, UTC).isoformat().replace("+00:00", "Z")


def alert_payload(alert: Alert) -> dict[str, Any]:
    """The generic JSON webhook's body."""
    return {
        "title": alert.title, "message": alert.message, "severity": alert.severity,
        "rule": alert.rule, "host": alert.host, "log": alert.log,
        "time": iso_time(alert.time), "outcome": alert.outcome,
        "line": alert.line, "extra": alert.extra,
    }


def alert_text(alert: Alert) -> str:
    """Plain text for chat services: the severity as a word, the title, the message."""
    return f"[{alert.severity.upper()}] {alert.title}\n{alert.message}"


def _slack_escape(text: str) -> str:
    # Slack's three control characters; this also defuses <!channel> from a log line.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


NTFY_PRIORITY = {"info": "3", "warning": "4", "error": "5"}
NTFY_TAGS = {"info": "information_source", "warning": "warning", "error": "rotating_light"}


def _header_text(text: str) -> str:
    """A header value http.client can send: ASCII as is, else RFC 2047 (ntfy decodes it)."""
    text = _plain(text, 200)
    if text.isascii():
        return text
    return "=?UTF-8?B?" + base64.b64encode(text.encode()).decode("ascii") + "?="


_TOKEN = re.compile(r"[A-Za-z0-9:_-]+")


def _check_url(url: str, hook: WebhookConfig) -> str:
    parts = urllib.parse.urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise DeliveryError(f"secret {hook.secret!r} does not hold an http(s) URL", retry=False)
    return url.strip()


def build_request(hook: WebhookConfig, alert: Alert, secret: str, *,
                  telegram_api: str = TELEGRAM_API) -> HttpRequest:
    """The POST for one webhook kind. ``secret`` is the URL, or the bot token (telegram).

    Raises DeliveryError (not retried) when the secret cannot be what the kind needs.
    """
    json_headers = {"Content-Type": "application/json", "User-Agent": "nomadlab"}
    if hook.kind == "telegram":
        token = secret.strip()
        if not _TOKEN.fullmatch(token):
            raise DeliveryError(f"secret {hook.secret!r} does not look like a bot token",
                                retry=False)
        body = {"chat_id": hook.chat_id, "text": f"{alert.title}\n{alert.message}",
                "disable_web_page_preview": True}
        return HttpRequest(f"{telegram_api.rstrip('/')}/bot{token}/sendMessage",
                           json.dumps(body).encode(), json_headers)
    url = _check_url(secret, hook)
    if hook.kind == "slack":
        payload: dict[str, Any] = {"text": _slack_escape(alert_text(alert))}
    elif hook.kind == "discord":
        payload = {"content": alert_text(alert)[:2000], "allowed_mentions": {"parse": []}}
    elif hook.kind == "ntfy":
        headers = {
            "Title": _header_text(alert.title),
            "Priority": NTFY_PRIORITY.get(alert.severity, "3"),
            "Tags": ",".join(t for t in (NTFY_TAGS.get(alert.severity), "nomadlab") if t),
            "Content-Type": "text/plain; charset=utf-8",
            "User-Agent": "nomadlab",
        }
        return HttpRequest(url, alert.message.encode(), headers)
    else:  # json
        payload = alert_payload(alert)
    return HttpRequest(url, json.dumps(payload, default=str).encode(), json_headers)


def send_request(request: HttpRequest, timeout: float, secrets: Sequence[str] = ()) -> int:
    """POST it (blocking: call from a worker thread). The status, or DeliveryError.

    Error texts are redacted of ``secrets`` here, before anything is cut short: a
    server's error body may echo the URL, and half a token is still a leak."""
    try:
        return _send_request(request, timeout)
    except DeliveryError as exc:
        raise DeliveryError(_plain(redact(str(exc), secrets), 300), retry=exc.retry,
                            retry_after=exc.retry_after) from None


def _send_request(request: HttpRequest, timeout: float) -> int:
    req = urllib.request.Request(request.url, data=request.body, headers=request.headers,
                                 method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            response.read(65536)
            return int(response.status)
    except urllib.error.HTTPError as exc:
        try:
            detail = _plain(exc.read(2048).decode("utf-8", "replace"), 4096)
        except (OSError, http.client.HTTPException):
            detail = ""
        finally:
            exc.close()
        retry_after: float | None = None
        header = exc.headers.get("Retry-After") if exc.headers is not None else None
        if header:
            with contextlib.suppress(ValueError):
                retry_after = float(header)
        code = exc.code
        retry = code >= 500 or code in (408, 425, 429)
        message = f"HTTP {code} {exc.reason}" + (f": {detail}" if detail else "")
        raise DeliveryError(message, retry=retry, retry_after=retry_after) from None
    except urllib.error.URLError as exc:
        raise DeliveryError(f"cannot connect: {exc.reason}", retry=True) from None
    except (OSError, http.client.HTTPException) as exc:  # timeouts, resets, bad replies
        raise DeliveryError(f"{type(exc).__name__}: {exc}", retry=True) from None
    except ValueError as exc:
        raise DeliveryError(f"invalid request: {exc}", retry=False) from None


def _encodings(piece: str) -> set[str]:
    """``piece`` as it may appear in an error text: raw, percent-encoded (path or form
    style, "/" kept or not) and decoded."""
    return {piece, urllib.parse.quote(piece), urllib.parse.quote(piece, safe=""),
            urllib.parse.quote_plus(piece), urllib.parse.quote(piece, safe="/:?=&"),
            urllib.parse.unquote(piece), urllib.parse.unquote_plus(piece)}


def secret_forms(secret: str) -> list[str]:
    """Every text that would give the secret (or the part of it that is secret) away,
    longest first: the value, and for a URL its path, query, credentials and token-like
    path segments, each in its URL-encoded and decoded forms. A server that echoes the
    request's path in its error body, or a URL with a space that Python quotes in its
    error message, then gives nothing away."""
    pieces = {secret, secret.strip()}
    value = secret.strip()
    parts = urllib.parse.urlsplit(value)
    if parts.scheme and parts.netloc:
        pieces.update(p for p in (parts.path, parts.query, parts.fragment, parts.password,
                                  parts.path + ("?" + parts.query if parts.query else ""))
                      if p and p != "/")
        for segment in [*parts.path.split("/"), *parts.query.replace("&", "=").split("=")]:
            if len(segment) >= 16 or (len(segment) >= 8 and any(c.isdigit() for c in segment)):
                pieces.add(segment)
    forms: set[str] = set()
    for piece in pieces:
        forms.update(_encodings(piece))
    return sorted((f for f in forms if len(f) >= 4), key=len, reverse=True)


def redact(text: str, secrets: Iterable[str]) -> str:
    """Every form of every secret (see :func:`secret_forms`) replaced by <secret>."""
    forms: set[str] = set()
    for secret in secrets:
        if secret:
            forms.update(secret_forms(secret))
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, "<secret>")
    return text


# --------------------------------------------------------------------------- the notifier


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


# --------------------------------------------------------------------------- the hub


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
        self.engine = AlertEngine(self.rules, clock, costs,
                                  {s.name: s.hourly_cost for s in config.sources})
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
        self._ticker: asyncio.Task[None] | None = None

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
        if self._ticker is None:
            self._ticker = asyncio.get_running_loop().create_task(self._tick_forever())

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
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        if not await self.drain(timeout):
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)


__all__ = [
    "LOCAL_CHANNELS",
    "TELEGRAM_API",
    "TELEGRAM_API_ENV",
    "AlertHub",
    "DeliveryError",
    "HttpRequest",
    "Notifier",
    "Sink",
    "alert_payload",
    "alert_text",
    "bell",
    "build_request",
    "notify_send",
    "notify_send_available",
    "redact",
    "send_request",
    "terminal_notification",
    "terminal_sink",
    "terminal_style",
    "tmux_wrap",
]
