"""The terminal channels: bell and desktop notifications as OSC escape sequences
(wrapped for tmux passthrough), and the sink that writes them."""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping

from nomadlab.core.alerts import (
    Alert,
)
from nomadlab.notify.channels import Sink, plain

OSC_ENV = "NOMADLAB_OSC"
OSC_STYLES = ("777", "9", "both", "off")


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
    title = plain(title, 100)
    body = plain(body, 500)
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


