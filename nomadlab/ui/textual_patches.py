"""One small fix to Textual's screen updates: crop partial lines on the left too.

Textual (8.2.8, pinned) writes a partial update of a line from the left edge of the
widget's fragment up to the right end of the changed region: refreshing the ten
cells of a power reading at column 110 re-sends the 110 cells before it as well.
Over SSH on a poor link that is most of what a live table costs. This crops each
fragment to the changed span on both sides. Applied only to the Textual version
it was written against; anything else runs unpatched (correct, just chattier).
"""

from __future__ import annotations

from typing import Any

import textual
from rich.console import Console
from textual._compositor import ChopsUpdate

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


def apply() -> bool:
    """Install the fix; True when it was (the Textual version matched)."""
    if getattr(textual, "__version__", None) != PATCHED_FOR:
        return False
    if getattr(ChopsUpdate.render_segments, "_nomadlab", False):
        return True
    _render_segments._nomadlab = True  # type: ignore[attr-defined]
    ChopsUpdate.render_segments = _render_segments  # type: ignore[method-assign]
    return True
