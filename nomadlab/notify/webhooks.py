"""Webhook requests: the payload of each kind (generic JSON, Slack, Discord, ntfy,
Telegram) and sending one, every failure a :class:`DeliveryError`."""

from __future__ import annotations

import base64
import contextlib
import json
import re
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from nomadlab.core.alerts import (
    Alert,
)
from nomadlab.core.config import WebhookConfig
from nomadlab.notify.channels import plain
from nomadlab.notify.redaction import redact

TELEGRAM_API = "https://api.telegram.org"
TELEGRAM_API_ENV = "NOMADLAB_TELEGRAM_API"


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
    text = plain(text, 200)
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
        raise DeliveryError(plain(redact(str(exc), secrets), 300), retry=exc.retry,
                            retry_after=exc.retry_after) from None


def _send_request(request: HttpRequest, timeout: float) -> int:
    # Here, not at import: the TUI loads this module before its first frame, and these
    # (with email, under http.client) cost more than the rest of it.
    import http.client
    import urllib.error
    import urllib.request

    req = urllib.request.Request(request.url, data=request.body, headers=request.headers,
                                 method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            response.read(65536)
            return int(response.status)
    except urllib.error.HTTPError as exc:
        try:
            detail = plain(exc.read(2048).decode("utf-8", "replace"), 4096)
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


