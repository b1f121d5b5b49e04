"""What every channel shares: the names an ``[[alerts]]`` rule may list, what a UI
channel is, and alert text made one plain line."""

from __future__ import annotations

import re
from collections.abc import Callable

from nomadlab.core.alerts import Alert

LOCAL_CHANNELS = ("toast", "bell", "desktop", "notify_send")
SINK_CHANNELS = ("toast", "bell", "desktop")

Sink = Callable[[str, Alert], None]
"""A UI channel: called with the channel name ("toast", "bell", "desktop") and the alert."""


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


def plain(text: str, limit: int) -> str:
    """One line of printable text: every control character (ESC, BEL, C1 ...) a space."""
    text = " ".join(_CONTROL.sub(" ", text).split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text
