"""Small fixes to Textual: crop partial screen updates on the left too, write screen
updates in fewer bytes, and keep keys in order in text inputs.

Textual (8.2.8, pinned) writes a partial update of a line from the left edge of the
widget's fragment up to the right end of the changed region: refreshing the ten
cells of a power reading at column 110 re-sends the 110 cells before it as well.
Over SSH on a poor link that is most of what a live table costs. This crops each
fragment to the changed span on both sides. Applied only to the Textual version
it was written against; anything else runs unpatched (correct, just chattier).

Fewer bytes: partial (``ChopsUpdate``) and full (``LayoutUpdate``) updates are written
by :class:`nomadlab.ui.compact_output.Writer`, which sends an SGR sequence only where
the style changes and the shortest cursor move (none where the cursor already is),
instead of a full style, a reset and an absolute move around every run of cells.

Keys out of order: a focused Input (or TextArea) inserts a printable key at once, in
its own message queue, but its own key bindings (home, end, arrows, enter...) run
only after the Key event has bubbled through every ancestor's queue up to the App.
When keys arrive in one burst (a laggy SSH link coalesces them), the characters
typed after `end` are inserted before `end` runs: `End Q` on `(FA3)Z` gave
`Q(FA3)Z`, and `abc<enter>d` submitted `abcd`. The fix runs the widget's own
bindings for a key in its own ``_on_key``, in arrival order; the result is the
same binding, found the same way (the focused widget's bindings come first).

Start-up: :func:`css_is_current` spares a new mode screen with no CSS of its own
Textual's two re-parses of the whole stylesheet on the first switch to its mode (the
app calls it for each mode screen it makes); the app's first screen (made at the app's
Compose) gets the theme's variables and a styled App at once, and its first resume
does not restyle the widgets styled as they mounted a moment before; no frame is
rendered while the app holds a batch (Textual would drop it), the screen is refreshed
when the batch ends instead.

Nothing happens on import: the app calls :func:`apply` when it starts
(``NomadApp.__init__``); :func:`remove` puts Textual's own code back (the tests render
the same frames both ways). docs/textual-patch.md describes the render fix as the
upstream change it should become.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

import textual
from rich.console import Console
from rich.segment import Segment
from textual import events
from textual._compositor import ChopsUpdate, LayoutUpdate
from textual.app import App
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Input

from nomadlab.ui.compact_output import Writer

PATCHED_FOR = "8.2.8"


def _render_segments(self: Any, console: Console) -> str:
    """ChopsUpdate.render_segments, cropping to [x1, x2) on both sides, written by
    :class:`~nomadlab.ui.compact_output.Writer` (only the SGR and cursor changes the
    terminal needs; no line feeds between lines, each starts with a move)."""
    chops = self.chops
    chop_ends = self.chop_ends
    width = max((ends[-1] for ends in chop_ends if ends), default=0)
    writer = Writer(console._color_system, width)
    for y, x1, x2 in self.spans:
        line = chops[y]
        ends = chop_ends[y]
        fill = _filler(line, ends)
        for end, (x, strip) in zip(ends, line.items(), strict=False):
            if strip is None:
                continue
            if x > x2 or end <= x1:
                continue
            if x2 > x >= x1 and end <= x2:
                writer.move_to(x, y, fill)
                writer.segments(strip)
                continue
            left, right = _whole_cells(strip, max(x, x1) - x, min(end, x2) - x)
            writer.move_to(x + left, y, fill)
            writer.segments(strip.crop(left, right))
    return writer.finish()


def _filler(line: Any, ends: list[int]) -> Any:
    """``fill(x1, x2)`` for :meth:`Writer.move_to`: the segments of cells [x1, x2) of
    a line of chops, or none where a chop is missing or a wide character is cut."""

    def fill(x1: int, x2: int) -> list[Segment]:
        out: list[Segment] = []
        for end, (x, strip) in zip(ends, line.items(), strict=False):
            if end <= x1 or x >= x2:
                continue
            if strip is None:
                return []
            left, right = max(x, x1) - x, min(end, x2) - x
            if _whole_cells(strip, left, right) != (left, right):
                return []
            out.extend(strip.crop(left, right))
        return out

    return fill


def _render_layout(self: Any, console: Console) -> str:
    """LayoutUpdate.render_segments (a full repaint of a region), written by
    :class:`~nomadlab.ui.compact_output.Writer`."""
    x = self.region.x
    writer = Writer(console._color_system, self.region.right)
    for y, line in enumerate(self.strips, self.region.y):
        writer.move_to(x, y)
        for strip in line:
            writer.segments(strip)
    return writer.finish()


def _whole_cells(strip: Any, left: int, right: int) -> tuple[int, int]:
    """[left, right) widened so that it cuts no double-width character in half:
    writing half of one (a space, as a cut leaves) erases all of it on a terminal."""
    if all(segment.text.isascii() for segment in strip):
        return left, right  # one cell per character: any cut is whole
    from rich.cells import get_character_cell_size

    position = 0
    for segment in strip:
        if segment.control:
            continue
        for char in segment.text:
            width = get_character_cell_size(char)
            after = position + width
            if position < left < after:
                left = position
            if position < right < after:
                right = after
            position = after
            if position >= right:
                return left, right
    return left, right


def css_is_current(app: App[Any], screen: Screen[Any], *, first: bool = False) -> None:
    """Tell Textual that a new mode screen with no CSS of its own needs no re-parse of
    the stylesheet. Textual 8.2.8 re-parses every CSS source twice on the first switch
    to a mode (``App._init_mode`` and ``App.switch_mode`` compare the screen's CSS
    update count, -1 for a new screen, with the app's): about a third of the TUI's
    start-up after its imports, for rules that were parsed a moment before. The new
    screen's widgets get their styles when they mount, as on any screen; a theme
    change still re-parses (it moves the app's count on). Only on the release the
    patches are for; elsewhere nothing changes.

    ``first``: the app's first screen (its initial mode, Textual's DEFAULT_MODE), made
    at the app's Compose, before the refresh that the theme queued has run. That
    refresh would re-parse the stylesheet with the theme's variables and style the
    App node, from which the screen's widgets inherit (their text colour); here the
    variables are set and the App node styled at once, so the screen's widgets, styled
    as they mount, inherit the theme's colours (the snapshots are the same pixels as
    with a default screen first) and the stylesheet is parsed once, not three times."""
    if applied() and not screen.CSS and not screen.css_path:
        if first:
            app.stylesheet.set_variables(app.get_css_variables())
            app.stylesheet.update(app, animate=False)
            screen._nomadlab_styled_at_mount = True  # type: ignore[attr-defined]
        screen._css_update_count = app._css_update_count


def _no_render_in_a_batch(original: Any) -> Any:
    """``Screen._compositor_refresh`` that does not render an update while the app holds
    a batch (``App._display`` drops what is rendered then): it asks for one refresh
    when the batch ends instead (:func:`_end_batch_refreshes`). At start the app's
    Compose, Resize and Mount run in a batch and the first screen lays itself out
    inside it, so Textual rendered the whole first frame (a third of the Textual work
    before the first paint) and threw it away; the same on every mode switch
    (``delay_update``)."""

    def _compositor_refresh(self: Screen[Any]) -> None:
        app = self.app
        if app._batch_count and not app.is_inline and self is app.screen:
            app._nomadlab_refresh_after_batch = self  # type: ignore[attr-defined]
            return
        original(self)

    _compositor_refresh._nomadlab = True  # type: ignore[attr-defined]
    return _compositor_refresh


def _end_batch_refreshes(original: Any) -> Any:
    """``App._end_batch`` that, when the last batch ends, refreshes the screen whose
    refresh :func:`_no_render_in_a_batch` held back (in the screen's own task)."""

    def _end_batch(self: App[Any]) -> None:
        original(self)
        if not self._batch_count:
            screen = self.__dict__.pop("_nomadlab_refresh_after_batch", None)
            if screen is not None and screen is self.screen:
                screen.call_later(screen._compositor_refresh)

    _end_batch._nomadlab = True  # type: ignore[attr-defined]
    return _end_batch


def _first_resume_keeps_styles(original: Any) -> Any:
    """``Screen._on_screen_resume`` that, for the app's first screen (marked by
    :func:`css_is_current`), does not restyle every node on that first resume: the
    screen was made at the app's Compose and each of its widgets was styled as it
    mounted, a moment before, with the same stylesheet (a third of the CSS work
    before the first frame). Later resumes, and every other screen, restyle as
    Textual does."""

    def _on_screen_resume(self: Screen[Any], event: events.ScreenResume) -> None:
        if self.__dict__.pop("_nomadlab_styled_at_mount", False):
            event.refresh_styles = False
        original(self, event)

    _on_screen_resume._nomadlab = True  # type: ignore[attr-defined]
    return _on_screen_resume


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


_ORIGINALS: dict[tuple[type, str], Any] = {}


def _replace(owner: type, name: str, new: Any) -> None:
    if (owner, name) not in _ORIGINALS:
        _ORIGINALS[(owner, name)] = owner.__dict__[name]
    setattr(owner, name, new)


def textual_version() -> str | None:
    """The installed Textual's version. ``textual.__version__`` asks
    ``importlib.metadata``, which costs about 15 ms of CPU at start-up (it imports and
    runs the email parser on the package's METADATA); the name of the package's
    ``textual-X.Y.Z.dist-info`` directory next to it says the same. Falls back to
    ``textual.__version__`` where there is not exactly one."""
    root = Path(textual.__file__).resolve().parent.parent
    found: list[str] = []
    with contextlib.suppress(OSError), os.scandir(root) as entries:
        found = [entry.name[len("textual-"):-len(".dist-info")] for entry in entries
                 if entry.name.startswith("textual-") and entry.name.endswith(".dist-info")]
    if len(found) == 1:
        return found[0]
    version: str | None = getattr(textual, "__version__", None)
    return version


def applies() -> bool:
    """True when the installed Textual is the release the fixes were written for."""
    return textual_version() == PATCHED_FOR


def applied() -> bool:
    return getattr(ChopsUpdate.render_segments, "_nomadlab", False) is True


def apply(*, text_area: bool = True) -> bool:
    """Install the fixes; True when they were (the Textual version matched). With
    ``text_area=False`` the key fix leaves TextArea (and its import, ~10 ms) for a
    later call: the app makes that call just after its first frame, before any
    TextArea can be shown."""
    if not applies():
        return False
    if not applied():
        _render_segments._nomadlab = True  # type: ignore[attr-defined]
        _replace(ChopsUpdate, "render_segments", _render_segments)
        _replace(LayoutUpdate, "render_segments", _render_layout)
        _replace(Screen, "_on_screen_resume",
                 _first_resume_keeps_styles(Screen.__dict__["_on_screen_resume"]))
        _replace(Screen, "_compositor_refresh",
                 _no_render_in_a_batch(Screen.__dict__["_compositor_refresh"]))
        _replace(App, "_end_batch", _end_batch_refreshes(App.__dict__["_end_batch"]))
    widgets: list[type[Widget]] = [Input]
    if text_area:
        from textual.widgets import TextArea

        widgets.append(TextArea)
    for widget in widgets:
        if not getattr(widget._on_key, "_nomadlab", False):
            _replace(widget, "_on_key", _bindings_first(widget.__dict__["_on_key"]))
    return True


def remove() -> None:
    """Textual's own code back (for comparing the two; the app never calls this)."""
    for (owner, name), original in _ORIGINALS.items():
        setattr(owner, name, original)
    _ORIGINALS.clear()
