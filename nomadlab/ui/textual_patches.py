"""Two small fixes to Textual: crop partial screen updates on the left too, and keep
keys in order in text inputs.

Textual (8.2.8, pinned) writes a partial update of a line from the left edge of the
widget's fragment up to the right end of the changed region: refreshing the ten
cells of a power reading at column 110 re-sends the 110 cells before it as well.
Over SSH on a poor link that is most of what a live table costs. This crops each
fragment to the changed span on both sides. Applied only to the Textual version
it was written against; anything else runs unpatched (correct, just chattier).

Keys out of order: a focused Input (or TextArea) inserts a printable key at once, in
its own message queue, but its own key bindings (home, end, arrows, enter...) run
only after the Key event has bubbled through every ancestor's queue up to the App.
When keys arrive in one burst (a laggy SSH link coalesces them), the characters
typed after `end` are inserted before `end` runs: `End Q` on `(FA3)Z` gave
`Q(FA3)Z`, and `abc<enter>d` submitted `abcd`. The fix runs the widget's own
bindings for a key in its own ``_on_key``, in arrival order; the result is the
same binding, found the same way (the focused widget's bindings come first).
"""

from __future__ import annotations

from typing import Any

import textual
from rich.console import Console
from textual import events
from textual._compositor import ChopsUpdate
from textual.widget import Widget
from textual.widgets import Input, TextArea

PATCHED_FOR = "8.2.8"


def _render_segments(self: Any, console: Console) -> str:
    """ChopsUpdate.render_segments, cropping to [x1, x2) on both sides."""
    from rich.control import Control

    sequences: list[str] = []
    append = sequences.append
    move_to = Control.move_to
    chops = self.chops
    chop_ends = self.chop_ends
    last_y = self.spans[-1][0]
    for y, x1, x2 in self.spans:
        line = chops[y]
        ends = chop_ends[y]
        for end, (x, strip) in zip(ends, line.items(), strict=False):
            if strip is None:
                continue
            if x > x2 or end <= x1:
                continue
            if x2 > x >= x1 and end <= x2:
                append(move_to(x, y).segment.text)
                append(strip.render(console))
                continue
            start = max(x, x1)
            part = strip.crop(start - x, min(end, x2) - x)
            append(move_to(start, y).segment.text)
            append(part.render(console))
        if y != last_y:
            append("\n")
    return "".join(sequences)


def _bindings_first(original: Any) -> Any:
    """``_on_key`` that runs the widget's own (non-priority) binding for the key
    first, before any later key is handled, then falls back to ``original``."""

    async def _on_key(self: Widget, event: events.Key) -> None:
        for binding in self._bindings.key_to_bindings.get(event.key, ()):
            if not binding.priority and await self.app.run_action(binding.action, self):
                event.stop()
                event.prevent_default()
                return
        await original(self, event)

    _on_key._nomadlab = True  # type: ignore[attr-defined]
    return _on_key


def apply() -> bool:
    """Install the fixes; True when they were (the Textual version matched)."""
    if getattr(textual, "__version__", None) != PATCHED_FOR:
        return False
    if getattr(ChopsUpdate.render_segments, "_nomadlab", False):
        return True
    _render_segments._nomadlab = True  # type: ignore[attr-defined]
    ChopsUpdate.render_segments = _render_segments  # type: ignore[method-assign]
    for widget in (Input, TextArea):
        if not getattr(widget._on_key, "_nomadlab", False):
            widget._on_key = _bindings_first(widget._on_key)  # type: ignore[method-assign]
    return True
