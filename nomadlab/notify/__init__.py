"""Telling the user: terminal bell and desktop notifications, notify-send, webhooks.

Modules: :mod:`.hub` (:class:`AlertHub`: engine, log and notifier wired together),
:mod:`.notifier` (:class:`Notifier`: channels, holding, retries), :mod:`.channels` (the
channel names, :data:`Sink`), :mod:`.terminal` (bell, OSC, tmux), :mod:`.desktop`
(notify-send), :mod:`.webhooks` (payloads and requests), :mod:`.redaction` (secrets
kept out of failure texts). Import names from those modules: the package itself
imports none of them, so that loading one (the hub, for the TUI) does not load webhooks,
notify-send and the rest.

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
