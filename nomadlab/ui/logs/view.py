"""A log viewer that stays smooth while a log grows fast.

Only visible lines are rendered (the Line API: ``render_line``), rendered lines are
cached, and arriving lines are indexed at once but repainted at most every 50 ms.
Follows the end like ``tail -f``; scrolling up pauses and counts new lines. Search
(with highlights, next/previous), a regex filter that hides other lines, wrap,
top/bottom, copy a line.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Iterator

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from nomadlab.core import patterns
from nomadlab.core.logs import LogBuffer, LogLine
from nomadlab.ui import logtext

CACHE_LINES = 4000
CURSOR = Style(bgcolor="grey27")
MATCH = Style(bgcolor="dark_goldenrod", color="black")


QUERY_TIMEOUT = 0.05  # seconds one line's search may take before the query is given up


class Query:
    """A search/filter pattern typed into the log view, run with a time limit.

    A pattern such as ``(a|aa)+$`` can backtrack for minutes on one short line; run on
    the event loop it would freeze the TUI. Each search gets :data:`QUERY_TIMEOUT`;
    past it the query is marked ``too_slow`` and matches nothing from then on, and the
    view's header says so.
    """

    def __init__(self, compiled: patterns.Pattern, text: str) -> None:
        self.compiled = compiled
        self.pattern = text
        self.too_slow = False

    def search(self, text: str, pos: int = 0) -> patterns.Match | None:
        if self.too_slow:
            return None
        try:
            return patterns.search(self.compiled, text, pos, timeout=QUERY_TIMEOUT)
        except patterns.PatternTimeout:
            self.too_slow = True
            return None

    def finditer(self, text: str) -> Iterator[patterns.Match]:
        """The matches in ``text`` (for highlighting); none once the query is too slow."""
        pos = 0
        while pos <= len(text):
            match = self.search(text, pos)
            if match is None:
                return
            yield match
            pos = match.end() if match.end() > match.start() else match.end() + 1


def compile_query(text: str) -> Query | None:
    """A search/filter query; case-insensitive unless it has capitals (smart case).

    Text that is not a valid regex is searched for literally.
    """
    if not text:
        return None
    import regex  # on the first query, not at start (6 ms of the TUI's first frame)

    flags = 0 if any(c.isupper() for c in text) else regex.IGNORECASE
    try:
        compiled = regex.compile(text, flags | regex.VERSION0)
    except (regex.error, TypeError, ValueError, OverflowError, RecursionError):
        compiled = regex.compile(regex.escape(text), flags | regex.VERSION0)
    return Query(compiled, text)


class LogView(ScrollView, can_focus=True):
    DEFAULT_CSS = """
    LogView {
        background: $surface;
        color: $text;
    }
    """

    BINDINGS = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home,g", "top", "Top", show=False),
        Binding("end,G", "bottom", "Bottom/follow"),
        Binding("n", "next_match(1)", "Next match", show=False),
        Binding("N", "next_match(-1)", "Previous match", show=False),
        Binding("w", "toggle_wrap", "Wrap"),
        Binding("y", "copy_line", "Copy line"),
    ]

    class Changed(Message):
        """Follow state, counts or queries changed: headers should redraw."""

        def __init__(self, view: LogView) -> None:
            super().__init__()
            self.view = view

        @property
        def control(self) -> LogView:
            """The view that changed (without it, handlers matching on ``control``
            never saw a change: the border said "following" while paused)."""
            return self.view

    def __init__(self, *, compact: bool = False, id: str | None = None) -> None:
        super().__init__(id=id)
        self.compact = compact
        self.buffer: LogBuffer | None = None
        self.log_name: str | None = None
        self.rows: deque[tuple[int, int]] = deque()  # (line seq, wrapped part)
        self.follow = True
        self.paused_new = 0
        self.wrap = False
        self.filter_text = ""
        self.search_text = ""
        self._filter: Query | None = None
        self._search: Query | None = None
        self.cursor_seq: int | None = None
        self._cache: OrderedDict[tuple[int, int, str], Strip] = OrderedDict()
        self._width_seen = 0
        self._dirty = False
        self._rows_width = 0  # the width rows were wrapped for
        self._stale = False  # lines arrived while off screen

    # ------------------------------------------------------------------ source

    def show(self, name: str | None, buffer: LogBuffer | None) -> None:
        self.log_name = name
        self.buffer = buffer
        self.cursor_seq = None
        self.follow = True
        self.paused_new = 0
        self.rebuild()

    def _width(self) -> int:
        return max(10, self.scrollable_content_region.width or self.size.width or 80)

    def _parts(self, line: LogLine, width: int) -> int:
        if not self.wrap:
            return 1
        text = line.text
        length = len(text) if text.isascii() and "\x1b" not in text else \
            logtext.to_text(text).cell_len
        length = min(length, logtext.MAX_CHARS + 40)
        return max(1, -(-length // width))

    def _keep(self, line: LogLine) -> bool:
        return self._filter is None or self._filter.search(line.text) is not None

    def catch_up(self) -> None:
        """Back on screen: index what arrived meanwhile."""
        if self._stale:
            self.rebuild()

    def rebuild(self) -> None:
        """Re-index every buffered line (after a filter, wrap or width change)."""
        self._stale = False
        self.rows.clear()
        self._cache.clear()
        self._width_seen = 0
        width = self._width()
        self._rows_width = width
        if self.buffer is not None:
            for line in self.buffer:
                if self._keep(line):
                    for part in range(self._parts(line, width)):
                        self.rows.append((line.seq, part))
                    self._width_seen = max(self._width_seen, min(len(line.text), 10_050))
        self._apply(scroll=True)

    def add_lines(self, lines: list[LogLine]) -> None:
        """New lines of the shown log (called by the screen for each batch)."""
        if not self.screen.is_current:  # off screen: catch up when shown again
            self._stale = True
            if not self.follow:
                self.paused_new += len(lines)
            return
        width = self._rows_width or self._width()
        added = 0
        for line in lines:
            if self._keep(line):
                for part in range(self._parts(line, width)):
                    self.rows.append((line.seq, part))
                added += 1
                if len(line.text) > self._width_seen:
                    self._width_seen = min(len(line.text), 10_050)
        if self.buffer is not None:  # forget rows of lines the buffer dropped
            first = self.buffer.first_seq
            while self.rows and self.rows[0][0] < first:
                self.rows.popleft()
        if added and not self.follow:
            self.paused_new += added
        if added and not self._dirty:
            self._dirty = True
            self.set_timer(0.05, self._apply)

    def _apply(self, scroll: bool = False) -> None:
        self._dirty = False
        width = 0 if self.wrap else self._width_seen + 2
        self.virtual_size = Size(width, len(self.rows))
        if self.follow:
            self._to_end()
            # The size (and a horizontal scrollbar) may change with this layout:
            # once more after it, so the last line never hides under the scrollbar.
            self.call_after_refresh(self._to_end)
        self.refresh()
        self.post_message(self.Changed(self))

    def _to_end(self) -> None:
        if self.follow:
            # force: before the first layout Textual has not decided that the view
            # scrolls, and would ignore the scroll (the view stayed at the top).
            end = max(0, len(self.rows) - self._page())
            if self.container_size.height:  # laid out: mind the horizontal scrollbar
                end = max(end, self.max_scroll_y)
            self.scroll_to(y=end, animate=False, immediate=True, force=True)

    def on_show(self) -> None:
        self._to_end()

    def _page(self) -> int:
        """Rows visible at once (without a horizontal scrollbar's row)."""
        return max(1, self.scrollable_content_region.height or self.size.height)

    # ------------------------------------------------------------------ rendering

    def _strip(self, seq: int, line: LogLine) -> Strip:
        key = (seq, id(self._search), self.search_text)
        strip = self._cache.get(key)
        if strip is not None:
            self._cache.move_to_end(key)
            return strip
        text = logtext.to_text(line.text)
        base = logtext.severity_style(line.text)
        if base:
            text.stylize(base, 0, len(text))
        if line.cut:
            text.append(f" … [{line.cut:,} bytes cut]", style="bold magenta")
        if self._search is not None:
            for match in self._search.finditer(text.plain):
                text.stylize(MATCH, match.start(), match.end())
        segments = list(text.render(self.app.console))
        # The widget's own colours under the line's: no dark boxes behind the text.
        strip = Strip(segments, text.cell_len).apply_style(self.rich_style)
        self._cache[key] = strip
        if len(self._cache) > CACHE_LINES:
            self._cache.popitem(last=False)
        return strip

    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        index = scroll_y + y
        width = self.size.width
        style = self.rich_style
        if self.buffer is None or index >= len(self.rows):
            return Strip.blank(width, style)
        seq, part = self.rows[index]
        position = self.buffer.index_of(seq)
        if position is None:
            return Strip.blank(width, style)
        strip = self._strip(seq, self.buffer[position])
        if self.wrap:
            start = part * self._rows_width
            strip = strip.crop_extend(start, start + width, style)
        else:
            strip = strip.crop_extend(scroll_x, scroll_x + width, style)
        if seq == self.cursor_seq:
            strip = Strip(Segment.apply_style(strip, post_style=CURSOR), strip.cell_length)
        return strip

    def on_resize(self) -> None:
        if self.wrap and self._width() != self._rows_width:
            self.rebuild()
        elif self.follow:
            self.call_after_refresh(self._to_end)

    # ------------------------------------------------------------------ follow

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        at_end = new_value >= self.max_scroll_y - 0.5
        if new_value < old_value and not at_end and self.follow:
            self.follow = False
            self.post_message(self.Changed(self))
        elif at_end and not self.follow and self.cursor_seq is None:
            self.resume()

    def resume(self) -> None:
        self.follow = True
        self.paused_new = 0
        self.cursor_seq = None
        self._apply()

    def _row_of(self, seq: int) -> int | None:
        for i, (s, _part) in enumerate(self.rows):
            if s == seq:
                return i
        return None

    def _visible_seq(self) -> int | None:
        if not self.rows:
            return None
        index = min(len(self.rows) - 1, int(self.scroll_y) + self._page() - 1)
        return self.rows[index][0]

    def _move_cursor_to_row(self, index: int) -> None:
        if not self.rows:
            return
        index = max(0, min(len(self.rows) - 1, index))
        self.cursor_seq = self.rows[index][0]
        self.follow = False
        if index < self.scroll_y:
            self.scroll_to(y=index, animate=False, immediate=True, force=True)
        elif index >= self.scroll_y + self._page():
            self.scroll_to(y=index - self._page() + 1, animate=False, immediate=True,
                           force=True)
        self.refresh()
        self.post_message(self.Changed(self))

    def pause_on(self, seq: int) -> None:
        """Paused, with the cursor on line ``seq`` (e.g. the line an alert fired on)."""
        index = self._row_of(seq)
        if index is None:
            return
        self._move_cursor_to_row(index)
        # The size may not be known yet: place it again once laid out.
        self.call_after_refresh(self._place_cursor)

    def _place_cursor(self) -> None:
        if self.cursor_seq is not None and (index := self._row_of(self.cursor_seq)) is not None:
            page = self._page()
            if not self.scroll_y <= index < self.scroll_y + page:
                self.scroll_to(y=max(0, index - page // 2), animate=False, immediate=True,
                               force=True)

    def action_cursor(self, step: int) -> None:
        if self.cursor_seq is None:
            seq = self._visible_seq()
            index = self._row_of(seq) if seq is not None else None
            if index is None:
                return
            self._move_cursor_to_row(index)
            return
        index = self._row_of(self.cursor_seq)
        if index is None:  # the line left the buffer (a flood): start from the top
            self._move_cursor_to_row(0)
            return
        # skip the other wrapped parts of the same line
        while 0 <= index + step < len(self.rows) and self.rows[index + step][0] == self.cursor_seq:
            index += step
        self._move_cursor_to_row(index + step)

    def action_page(self, step: int) -> None:
        current = self._row_of(self.cursor_seq) if self.cursor_seq is not None else None
        if current is None:
            current = int(self.scroll_y) + (self._page() - 1 if step > 0 else 0)
        self._move_cursor_to_row(current + step * max(1, self._page() - 1))

    def action_top(self) -> None:
        self._move_cursor_to_row(0)

    def action_bottom(self) -> None:
        self.resume()

    def action_toggle_wrap(self) -> None:
        self.wrap = not self.wrap
        keep = self.cursor_seq
        self.rebuild()
        if keep is not None:
            index = self._row_of(keep)
            if index is not None:
                self._move_cursor_to_row(index)

    # ------------------------------------------------------------------ queries

    def set_filter(self, text: str) -> None:
        self.filter_text = text
        self._filter = compile_query(text)
        keep = self.cursor_seq
        self.rebuild()
        if keep is not None and (index := self._row_of(keep)) is not None:
            self._move_cursor_to_row(index)

    def set_search(self, text: str) -> None:
        self.search_text = text
        self._search = compile_query(text)
        self._cache.clear()
        self.refresh()
        self.post_message(self.Changed(self))

    def action_next_match(self, step: int) -> None:
        if self._search is None or self.buffer is None or not self.rows:
            return
        seqs = []
        for seq, part in self.rows:
            if part == 0:
                seqs.append(seq)
        if not seqs:
            return
        start_seq = self.cursor_seq if self.cursor_seq is not None else (
            seqs[-1] if step > 0 else seqs[0])
        try:
            start = seqs.index(start_seq)
        except ValueError:
            start = len(seqs) - 1 if step < 0 else 0
        count = len(seqs)
        for offset in range(1, count + 1):
            seq = seqs[(start + step * offset) % count]
            position = self.buffer.index_of(seq)
            if position is not None and self._search.search(self.buffer[position].text):
                row = self._row_of(seq)
                if row is not None:
                    self._move_cursor_to_row(row)
                return
        self.notify(f"No line matches {self.search_text!r}", severity="warning", timeout=3)

    def match_count(self) -> int:
        if self._search is None or self.buffer is None:
            return 0
        search = self._search.search
        return sum(1 for line in self.buffer if search(line.text))

    def current_line(self) -> LogLine | None:
        if self.buffer is None:
            return None
        seq = self.cursor_seq if self.cursor_seq is not None else (
            self.rows[-1][0] if self.rows else None)
        if seq is None:
            return None
        position = self.buffer.index_of(seq)
        return self.buffer[position] if position is not None else None

    def action_copy_line(self) -> None:
        line = self.current_line()
        if line is None:
            return
        self.app.copy_to_clipboard(logtext.plain(line.text))
        self.notify("Line copied (OSC 52).", timeout=2)

    def header(self) -> Text:
        """One line for the pane title area: follow state, counts, queries."""
        text = Text()
        if self.follow:
            text.append("following", style="green")
        else:
            text.append("paused", style="yellow")
            if self.paused_new:
                text.append(f" · {self.paused_new:,} new (End to follow)", style="bold yellow")
        if self.filter_text:
            text.append(" · filter ", style="dim")
            text.append(self.filter_text[:40], style="cyan")
            shown = len({seq for seq, _ in self.rows})
            text.append(f" ({shown:,} lines)", style="dim")
        if self.search_text:
            text.append(" · search ", style="dim")
            text.append(self.search_text[:40], style="cyan")
        for query in (self._filter, self._search):
            if query is not None and query.too_slow:
                text.append(f" · {query.pattern[:20]!r} too slow: turned off", style="bold red")
        if self.wrap:
            text.append(" · wrap", style="dim")
        return text
