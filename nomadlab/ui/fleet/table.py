"""Every GPU of every host in one table, repainting only the cells that changed.

Rows: one per host (state, host stats, cost), then one per GPU (utilization bar,
five-minute sparkline, memory, temperature, power, processes). It is a Line API
widget (``render_line``) rather than a DataTable: a DataTable repaints the whole
visible table for any changed cell, which at one frame per sample costs a third of
a core and ~200 KB/s of terminal output at 10 hosts. Here a flush (coalesced, at
most one per ``FLUSH_WINDOW``) recomputes only the rows of hosts that changed and
are on screen, and asks Textual to repaint only the changed cells' region of each
of those lines. Rows off screen are recomputed when they scroll into view.

What a row shows is in cells.py, the column layout in columns.py, the row keys in
rows.py, and which hosts are shown in which order in filtering.py; this module
keeps the rows, draws them and moves the cursor.
"""

from __future__ import annotations

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from nomadlab.core.model import HostSample, HostState
from nomadlab.ui.fleet.cells import RowCells
from nomadlab.ui.fleet.columns import Columns
from nomadlab.ui.fleet.filtering import HostFilter
from nomadlab.ui.fleet.rows import gpu_rows, host_key, parse_key
from nomadlab.ui.services import Services

FLUSH_WINDOW = 0.1  # seconds: samples arriving together are painted together
PREFETCH_BATCH = 6  # rows drawn ahead per idle turn after the cursor moved
CURSOR_FOCUSED = Style(bgcolor="#264f78")
CURSOR_BLURRED = Style(bgcolor="grey23")
HEADER = Style(bold=True)


def _runs(before: str, after: str, gap: int = 3) -> list[tuple[int, int]]:
    """[start, stop) runs where two equally long strings differ; runs closer than
    ``gap`` characters are merged (a cursor move costs about that much)."""
    runs: list[tuple[int, int]] = []
    for i, (a, b) in enumerate(zip(before, after, strict=True)):
        if a == b:
            continue
        if runs and i - runs[-1][1] < gap:
            runs[-1] = (runs[-1][0], i + 1)
        else:
            runs.append((i, i + 1))
    return runs


def _line(cells: list[Text], widths: list[int]) -> Text:
    """Cells padded/cut to their column widths, one space either side, as one line."""
    line = Text(no_wrap=True, end="")
    for cell, width in zip(cells, widths, strict=False):
        fitted = cell.copy()
        fitted.truncate(width, overflow="ellipsis", pad=True)
        line.append(" ")
        line.append_text(fitted)
        line.append(" ")
    return line


class FleetTable(HostFilter, RowCells, ScrollView, can_focus=True):
    """The fleet: host rows and GPU rows, header pinned on the first line."""

    BINDINGS = [
        Binding("up,k", "cursor(-1)", "Up", show=False),
        Binding("down,j", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home,g", "first_row", "Top", show=False),
        Binding("end,G", "last_row", "Bottom", show=False),
        Binding("space", "toggle_host", "Fold", show=False),
    ]

    class Selected(Message):
        def __init__(self, host: str, gpu: int | None) -> None:
            super().__init__()
            self.host = host
            self.gpu = gpu

    def __init__(self, services: Services, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.services = services
        self.sort_key = services.config.fleet.sort
        self.query_text = ""
        self.collapsed: set[str] = set()
        self.columns_spec: Columns | None = None
        self.order: list[str] = []  # hosts shown, in order
        self.keys: list[str] = []  # row keys, in order
        self.index: dict[str, int] = {}  # row key -> position
        self.cells: dict[str, list[Text]] = {}  # row key -> its cells (current, whole)
        self.shown: dict[str, list[Text]] = {}  # row key -> cells as drawn (cut, padded)
        self.plain: dict[str, list[str]] = {}  # row key -> what each cell showed
        self.strips: dict[str, Strip] = {}  # row key -> rendered line
        self.dirty: set[str] = set()  # rows whose cells must be recomputed
        self.rendered: dict[str, int] = {}  # host -> bridge version shown
        self._gpu_rows: dict[str, list[str]] = {}
        self.cursor_row = 0
        self._flush_pending = False
        self._prefetch_pending = False
        self._header: Strip | None = None
        self._hosts_known = 0  # len(fleet.statuses) at the last rebuild
        self.row_version: dict[str, int] = {}  # row key -> host data version it shows
        # Filter results per host: (host data version tested, matched), for the
        # normalized query in _match_query. Typing a key narrows the filter: a host
        # that failed before still fails; a backspace widens it: a host that matched
        # still matches. Only the others are tested again.
        self._match_query = ""
        self._matches: dict[str, tuple[int, bool]] = {}

    # ------------------------------------------------------------------ lifecycle

    def on_mount(self) -> None:
        self.services.bridge.subscribe(self._poke)
        self.set_interval(1.0, self._tick)  # ages ("stale 12s", "retry in 4s") move on

    def on_unmount(self) -> None:
        self.services.bridge.unsubscribe(self._poke)

    def on_resize(self, event: events.Resize) -> None:
        spec = Columns.for_width(self.size.width)
        if spec != self.columns_spec:
            self.columns_spec = spec
            self._header = None
            self.forget_rows()
            self.rebuild()

    def on_focus(self) -> None:
        self._refresh_row(self.cursor_row)

    def on_blur(self) -> None:
        self._refresh_row(self.cursor_row)

    def _poke(self) -> None:
        if not self._flush_pending:
            self._flush_pending = True
            self.set_timer(FLUSH_WINDOW, self.flush)

    def _tick(self) -> None:
        statuses = self.services.fleet.statuses
        moving = [n for n in self.order if statuses.get(n) is not None
                  and statuses[n].state in (HostState.STALE, HostState.RECONNECTING)]
        if moving and self.screen.is_current:
            for name in moving:
                self._update_row(host_key(name))

    # ------------------------------------------------------------------ structure

    @property
    def row_count(self) -> int:
        return len(self.keys)

    def rebuild(self) -> None:
        """Recompute the row list (order, filter, folds, GPU sets changed)."""
        self.columns_spec = self.columns_spec or Columns.for_width(self.size.width or 120)
        keep = self._cursor_key()
        fleet = self.services.fleet
        self._hosts_known = len(fleet.statuses)
        self.order = self.visible_hosts()
        keys: list[str] = []
        # Rows are cached by the host's data version: a filter, a sort or a fold
        # re-renders only rows whose host changed since they were drawn.
        versions = self.services.bridge.host_versions
        drawn = self.row_version
        dirty: set[str] = set()
        gpu_rows_of = self._gpu_rows
        latest = fleet.latest
        collapsed = self.collapsed
        rendered = self.rendered
        for name in self.order:
            head = host_key(name)
            keys.append(head)
            version = versions.get(name, 0)
            # a host's GPU rows are kept while its data version and fold are the same
            sample = latest.get(name)
            unfolded = sample is not None and bool(sample.gpus) and name not in collapsed
            rows = gpu_rows_of.get(name)
            if rows is None or rendered.get(name) != version or bool(rows) != unfolded:
                rows = gpu_rows(name, sample) if unfolded else []
                gpu_rows_of[name] = rows
            keys.extend(rows)
            rendered[name] = version
            if drawn.get(head, -1) != version:
                dirty.add(head)
            dirty.update(k for k in rows if drawn.get(k, -1) != version)
        self.keys = keys
        self.index = {key: i for i, key in enumerate(keys)}
        self.dirty = dirty
        self.virtual_size = Size(self.size.width, len(keys) + 1)
        self.cursor_row = min(self.cursor_row, max(0, len(keys) - 1))
        if keep is not None:
            self._move_to(keep, announce=False)
        self.refresh()

    def forget_rows(self, keys: list[str] | None = None) -> None:
        """Drop rendered rows (all, or ``keys``): they are drawn again when shown."""
        for table in (self.cells, self.shown, self.plain, self.strips, self.row_version):
            if keys is None:
                table.clear()
            else:
                for key in keys:
                    table.pop(key, None)

    def _cursor_key(self) -> str | None:
        if not self.keys:
            return None
        return self.keys[min(self.cursor_row, len(self.keys) - 1)]

    def _move_to(self, key: str, announce: bool = True) -> None:
        index = self.index.get(key)
        if index is None:
            name, _ = parse_key(key)
            index = self.index.get(host_key(name))
        if index is not None:
            self.move_cursor(row=index, announce=announce)

    # ------------------------------------------------------------------ cells

    def _compute(self, key: str) -> list[tuple[int, int]]:
        """Recompute a row; returns the (x, width) spans of the line that changed.

        Within a cell whose text changed only the characters that differ are
        repainted ("616/700W" -> "618/700W" is one cell of output, not a line);
        a cell whose style alone changed is repainted whole.
        """
        spec = self.columns_spec or Columns.for_width(self.size.width or 120)
        self.row_version[key] = self.services.bridge.host_versions.get(parse_key(key)[0], 0)
        cells, widths, columns = spec.fit(spec.pick(self._cells_for(key)))
        shown = []
        for cell, width in zip(cells, widths, strict=False):
            text = cell.copy()
            text.truncate(width, overflow="ellipsis", pad=True)
            shown.append(text)
        plain = [f"{t.plain}\x00{t.spans!r}{t.style}\x00{x}"
                 for t, (x, _w) in zip(shown, columns, strict=False)]
        old = self.plain.get(key)
        old_shown = self.shown.get(key)
        self.dirty.discard(key)
        if old == plain and key in self.strips:
            return []
        spans: list[tuple[int, int]] = []
        for i, signature in enumerate(plain):
            if old is not None and i < len(old) and old[i] == signature:
                continue
            x, width = columns[i] if i < len(columns) else (0, self.size.width)
            before = old_shown[i].plain if old_shown is not None and i < len(old_shown) else None
            after = shown[i].plain
            if (before is None or len(before) != len(after) or before == after
                    or cell_len(before) != len(before) or cell_len(after) != len(after)):
                spans.append((x, width))
                continue
            spans.extend((x + 1 + start, stop - start) for start, stop in _runs(before, after))
        self.cells[key] = cells
        self.shown[key] = shown
        self.plain[key] = plain
        line = Text(no_wrap=True, end="")  # as _line, the cells already cut to width
        for text in shown:
            line.append(" ")
            line.append_text(text)
            line.append(" ")
        segments = list(line.render(self.app.console))
        self.strips[key] = Strip(segments, line.cell_len).apply_style(self.rich_style)
        return spans

    def row_cells(self, key: str) -> list[Text]:
        """The cells a row shows now (tests and the process panel read these)."""
        if key in self.dirty or key not in self.cells:
            self._compute(key)
        return self.cells[key]

    def get_row_index(self, key: str) -> int:
        return self.index[key]

    # ------------------------------------------------------------------ rendering

    def _header_strip(self, width: int) -> Strip:
        if self._header is None or self._header.cell_length != width:
            spec = self.columns_spec or Columns.for_width(width)
            line = _line([Text(t) for t in spec.titles()], spec.widths())
            line.stylize(HEADER)
            strip = Strip(list(line.render(self.app.console)), line.cell_len)
            self._header = strip.apply_style(self.rich_style).crop_extend(0, width,
                                                                          self.rich_style)
        return self._header

    def _page(self) -> int:
        return max(1, (self.scrollable_content_region.height or self.size.height) - 1)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y == 0:
            return self._header_strip(width)
        index = int(self.scroll_y) + y - 1
        if index >= len(self.keys):
            return Strip.blank(width, self.rich_style)
        key = self.keys[index]
        if key in self.dirty or key not in self.strips:
            self._compute(key)
        strip = self.strips[key].crop_extend(0, width, self.rich_style)
        if index == self.cursor_row:
            style = CURSOR_FOCUSED if self.has_focus else CURSOR_BLURRED
            strip = Strip(Segment.apply_style(strip, post_style=style), strip.cell_length)
        return strip

    def _screen_y(self, index: int) -> int | None:
        """Where row ``index`` is drawn, None when scrolled out of view."""
        y = index - int(self.scroll_y) + 1
        return y if 1 <= y <= self._page() else None

    def _refresh_row(self, index: int, spans: list[tuple[int, int]] | None = None) -> None:
        y = self._screen_y(index)
        if y is None:
            return
        if spans:
            self.refresh(*(Region(x, y, max(1, width), 1) for x, width in spans))
        else:
            self.refresh(Region(0, y, self.size.width, 1))

    def _update_row(self, key: str) -> None:
        index = self.index.get(key)
        if index is None:
            return
        if self._screen_y(index) is None:
            self.dirty.add(key)  # recomputed when it scrolls into view
            return
        changed = self._compute(key)
        if changed:
            self._refresh_row(index, changed)

    # ------------------------------------------------------------------ updates

    def _structure_changed(self, name: str) -> bool:
        """True when the rows of this host no longer match its GPUs (first sample, GPU lost)."""
        if name in self.collapsed:
            return False
        sample = self.services.fleet.latest.get(name)
        return gpu_rows(name, sample) != self._gpu_rows.get(name, [])

    def flush(self) -> None:
        """Apply what changed since the last flush (skipped while off screen)."""
        self._flush_pending = False
        if not self.screen.is_current:
            return
        bridge = self.services.bridge
        if len(self.services.fleet.statuses) != self._hosts_known:
            self.rebuild()  # a host appeared (a source found it) or went
            return
        changed = [n for n in self.order if bridge.host_versions.get(n, 0) != self.rendered.get(n)]
        if not changed:
            return
        if any(self._structure_changed(n) for n in changed) or (
            self.sort_key != "name" and self.visible_hosts() != self.order
        ):
            self.rebuild()
            return
        # The visible window once per flush (Textual's region properties are not free:
        # asking them per row cost a second per refresh at 9,000 rows).
        first = int(self.scroll_y)
        last = first + self._page()
        index = self.index
        for name in changed:
            for key in (host_key(name), *self._gpu_rows.get(name, ())):
                at = index.get(key)
                if at is None:
                    continue
                if first <= at < last:
                    spans = self._compute(key)
                    if spans:
                        self._refresh_row(at, spans)
                else:
                    self.dirty.add(key)  # recomputed when it scrolls into view
            self.rendered[name] = bridge.host_versions.get(name, 0)
            if self.services.latency is not None and name in bridge.received:
                self.services.latency.shown(bridge.received[name])

    def on_show(self) -> None:
        self.flush()

    # ------------------------------------------------------------------ cursor

    def move_cursor(self, *, row: int, animate: bool = False, announce: bool = True) -> None:
        if not self.keys:
            return
        row = max(0, min(len(self.keys) - 1, row))
        previous, self.cursor_row = self.cursor_row, row
        if row < self.scroll_y:
            self.scroll_to(y=row, animate=False, immediate=True)
        elif row >= self.scroll_y + self._page():
            self.scroll_to(y=row - self._page() + 1, animate=False, immediate=True)
        self._refresh_row(previous)
        self._refresh_row(row)
        if not self._prefetch_pending:
            self._prefetch_pending = True
            self.call_after_refresh(self._prefetch)
        if announce:
            host, gpu = parse_key(self.keys[row])
            self.post_message(self.Selected(host, gpu))

    def _prefetch(self) -> None:
        """After the cursor moved, draw the page below the window (then the one above)
        ahead, a few rows per turn once the frame is painted, so that paging down
        finds its rows drawn. Only while the user moves: a refresh marks rows dirty
        again and they wait until the next move."""
        self._prefetch_pending = False
        if not self.keys or not self.screen.is_current:
            return
        first = int(self.scroll_y)
        page = self._page()
        count = len(self.keys)
        ahead = [*range(first + page, min(count, first + 2 * page)),
                 *range(max(0, first - page), first)]
        done = 0
        for index in ahead:
            key = self.keys[index]
            if key in self.dirty or key not in self.strips:
                self._compute(key)
                done += 1
                if done >= PREFETCH_BATCH:
                    self._prefetch_pending = True
                    self.set_timer(0.01, self._prefetch)
                    return

    def selected(self) -> tuple[str, int | None] | None:
        key = self._cursor_key()
        return parse_key(key) if key is not None else None

    def action_cursor(self, step: int) -> None:
        self.move_cursor(row=self.cursor_row + step)

    def action_page(self, step: int) -> None:
        self.move_cursor(row=self.cursor_row + step * self._page())

    def action_first_row(self) -> None:
        self.move_cursor(row=0)

    def action_last_row(self) -> None:
        self.move_cursor(row=len(self.keys) - 1)

    def on_click(self, event: events.Click) -> None:
        if event.y >= 1:
            self.move_cursor(row=int(self.scroll_y) + event.y - 1)

    def action_toggle_host(self) -> None:
        chosen = self.selected()
        if chosen is None:
            return
        host, _ = chosen
        self.collapsed.symmetric_difference_update({host})
        self.forget_rows([host_key(host)])  # its fold mark changed
        self.rebuild()
        self._move_to(host_key(host))

    def set_sort(self, key: str) -> None:
        self.sort_key = key
        self.rebuild()

    def set_query(self, text: str) -> None:
        self.query_text = text
        self.rebuild()

    def select_host(self, host: str) -> None:
        self._move_to(host_key(host))

    def sample_of(self, host: str) -> HostSample | None:
        return self.services.fleet.latest.get(host)
