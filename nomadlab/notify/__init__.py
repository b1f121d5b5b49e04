"""Telling the user: terminal bell and desktop notifications, notify-send, webhooks.

Modules: :mod:`.hub` (:class:`AlertHub`: engine, log and notifier wired together),
:mod:`.notifier` (:class:`Notifier`: channels, holding, retries), :mod:`.channels` (the
channel names, :data:`Sink`), :mod:`.terminal` (bell, OSC, tmux), :mod:`.desktop`
(notify-send), :mod:`.webhooks` (payloads and requests), :mod:`.redaction` (secrets
kept out of failure texts). The names below are re-exported as the package's API.

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

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nomadlab.notify.channels import LOCAL_CHANNELS, SINK_CHANNELS, Sink
    from nomadlab.notify.desktop import notify_send, notify_send_available
    from nomadlab.notify.hub import AlertHub
    from nomadlab.notify.notifier import Notifier
    from nomadlab.notify.redaction import redact, secret_forms
    from nomadlab.notify.terminal import (
        bell,
        terminal_notification,
        terminal_sink,
        terminal_style,
        tmux_wrap,
    )
    from nomadlab.notify.webhooks import (
        TELEGRAM_API,
        TELEGRAM_API_ENV,
        DeliveryError,
        HttpRequest,
        alert_payload,
        alert_text,
        build_request,
        iso_time,
        send_request,
    )

# The names below are imported on first use (PEP 562): importing one module of the
# package (the hub, for the TUI) does not import webhooks, notify-send and the rest.
_WHERE = {
    "AlertHub": "nomadlab.notify.hub",
    "DeliveryError": "nomadlab.notify.webhooks",
    "HttpRequest": "nomadlab.notify.webhooks",
    "LOCAL_CHANNELS": "nomadlab.notify.channels",
    "Notifier": "nomadlab.notify.notifier",
    "SINK_CHANNELS": "nomadlab.notify.channels",
    "Sink": "nomadlab.notify.channels",
    "TELEGRAM_API": "nomadlab.notify.webhooks",
    "TELEGRAM_API_ENV": "nomadlab.notify.webhooks",
    "alert_payload": "nomadlab.notify.webhooks",
    "alert_text": "nomadlab.notify.webhooks",
    "bell": "nomadlab.notify.terminal",
    "build_request": "nomadlab.notify.webhooks",
    "iso_time": "nomadlab.notify.webhooks",
    "notify_send": "nomadlab.notify.desktop",
    "notify_send_available": "nomadlab.notify.desktop",
    "redact": "nomadlab.notify.redaction",
    "secret_forms": "nomadlab.notify.redaction",
    "send_request": "nomadlab.notify.webhooks",
    "terminal_notification": "nomadlab.notify.terminal",
    "terminal_sink": "nomadlab.notify.terminal",
    "terminal_style": "nomadlab.notify.terminal",
    "tmux_wrap": "nomadlab.notify.terminal",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value

__all__ = [
    "LOCAL_CHANNELS",
    "SINK_CHANNELS",
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
    "iso_time",
    "notify_send",
    "notify_send_available",
    "redact",
    "secret_forms",
    "send_request",
    "terminal_notification",
    "terminal_sink",
    "terminal_style",
    "tmux_wrap",
]
