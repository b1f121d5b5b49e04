"""Rows of cells with a row cursor, drawn with Textual's Line API: the workspace fleet
pane's table, looking and keyed like the headerless DataTable it replaces.

A DataTable re-renders every cell of the visible table through Rich's Padding and
Styled renderables whenever it is cleared and filled again (about 0.03 s of CPU for
the 44 rows of a 160x48 workspace, in its first frame). Here a row's line is built
from its cells' segments directly, cached per row, cursor and hover state, and a new
set of rows repaints only the lines that changed (all of them when a column's width
changed). The cells look as the DataTable's did (same cell padding, same component
styles), so the screen is the same; the mouse meta is one per row (``row``, all a
click or a hover asks), so a row's styles are combined once, not once per cell.
"""

from __future__ import annotations

from functools import lru_cache
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

PADDING = 1  # cells of padding either side of a cell, as DataTable's cell_padding


@lru_cache(maxsize=4096)
def _row_meta(row: int) -> Style:
    """The meta of a row's cells: a click or a hover says which row it was on."""
    return Style.from_meta({"row": row})


class RowKey:
    """A row's key, as DataTable's (``.value`` is the string it was added with)."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __hash__(self) -> int:
        return hash(self.value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RowKey) and other.value == self.value

    def __repr__(self) -> str:
        return f"RowKey({self.value!r})"


class PaneTable(ScrollView, can_focus=True):
    """Headerless rows of cells, a row cursor; Enter (or a click on the cursor's row)
    posts ``RowSelected``."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Select", show=False),
        Binding("up", "cursor_up", "Cursor up", show=False),
        Binding("down", "cursor_down", "Cursor down", show=False),
        Binding("right", "scroll_right", "Scroll right", show=False),
        Binding("left", "scroll_left", "Scroll left", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("ctrl+home,home", "first_row", "Top", show=False),
        Binding("ctrl+end,end", "last_row", "Bottom", show=False),
    ]
    COMPONENT_CLASSES: ClassVar[set[str]] = {"pane-table--cursor", "pane-table--hover"}

    class RowSelected(Message):
        def __init__(self, key: str) -> None:
            super().__init__()
            self.key = key

    def __init__(self, labels: tuple[str, ...], *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.labels = labels  # column labels: not shown, but a column is as wide as its label
        self._keys: list[str] = []
        self._cells: list[tuple[Text, ...]] = []
        self._widths: list[int] = []
        self.cursor_row = 0
        self._hover_row = -1
        self._show_hover = False
        # (row, cursor?, hover?, base style) -> the row's line
        self._lines: dict[tuple[int, bool, bool, Style], Strip] = {}

    # ------------------------------------------------------------------ rows

    @property
    def row_count(self) -> int:
        return len(self._keys)

    @property
    def rows(self) -> dict[RowKey, int]:
        """Row keys in order (``.value`` is the key string), as DataTable's ``rows``."""
        return {RowKey(key): i for i, key in enumerate(self._keys)}

    def get_row(self, key: str) -> list[Text]:
        return list(self._cells[self._keys.index(key)])

    def set_rows(self, rows: list[tuple[str, tuple[Text, ...]]]) -> None:
        """Show these rows; repaint the lines that differ from what is shown."""
        keys = [key for key, _cells in rows]
        cells = [row for _key, row in rows]
        columns = max((len(row) for row in cells), default=len(self.labels))
        widths = []
        for i in range(columns):
            label = self.labels[i] if i < len(self.labels) else ""
            content = max((row[i].cell_len for row in cells if i < len(row)), default=0)
            widths.append(max(len(label), content) + 2 * PADDING)
        whole = widths != self._widths or len(keys) != len(self._keys)
        changed = [y for y, (row, key) in enumerate(zip(cells, keys, strict=True))
                   if whole or key != self._keys[y] or row != self._cells[y]]
        self._keys, self._cells, self._widths = keys, cells, widths
        self._lines.clear()
        self.virtual_size = Size(sum(widths), len(keys))
        if whole:
            self.refresh()
        else:
            for y in changed:
                self._refresh_row(y)

    # ------------------------------------------------------------------ drawing

    def _refresh_row(self, y: int) -> None:
        if 0 <= y < len(self._keys):
            self.refresh(Region(0, y - int(self.scroll_y), self.size.width, 1))

    def _row_line(self, y: int, cursor: bool, hover: bool, base: Style) -> Strip:
        key = (y, cursor, hover, base)
        line = self._lines.get(key)
        if line is not None:
            return line
        component = Style()
        if hover:
            component += self.get_component_rich_style("pane-table--hover")
        if cursor:
            component += self.get_component_rich_style("pane-table--cursor")
        post = Style.from_color(color=component.color)  # the cursor's colour wins
        console = self.app.console
        segments: list[Segment] = []
        pre = base + _row_meta(y) + component
        pad = pre + post
        for cell, width in zip(self._cells[y], self._widths, strict=False):
            segments.append(Segment(" " * PADDING, pad))
            if not cell.spans:  # one run in the text's own style (most cells)
                style = console.get_style(cell.style) if cell.style else None
                if cell.plain:
                    segments.append(Segment(cell.plain, pre + style + post if style else pad))
            else:
                text = Text("\n").join([cell])  # its own style as a span, as Rich renders it
                for segment in text.render(console):
                    segments.append(Segment(segment.text, pre + segment.style + post
                                            if segment.style else pad))
            room = width - 2 * PADDING - cell.cell_len
            if room > 0:
                segments.append(Segment(" " * room, pad))
            segments.append(Segment(" " * PADDING, pad))
        rest = max(0, self.size.width - sum(self._widths))
        segments.append(Segment(" " * rest, base + component + Style.from_meta(
            {"row": y, "column": 0, "out_of_bounds": True})))
        line = Strip(segments)
        self._lines[key] = line
        return line

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        scroll_x, scroll_y = self.scroll_offset
        row = y + scroll_y
        base = self.rich_style
        if not 0 <= row < len(self._keys):
            return Strip.blank(width, base)
        line = self._row_line(row, row == self.cursor_row,
                              self._show_hover and row == self._hover_row, base)
        return line.crop(scroll_x, scroll_x + width).adjust_cell_length(width, base).simplify()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._lines.clear()

    # ------------------------------------------------------------------ cursor

    def move_cursor(self, *, row: int, animate: bool = False) -> None:
        if not self._keys:
            self.cursor_row = 0
            return
        row = max(0, min(row, len(self._keys) - 1))
        if row != self.cursor_row:
            old, self.cursor_row = self.cursor_row, row
            self._refresh_row(old)
            self._refresh_row(row)
        self.scroll_to_region(Region(0, row, 1, 1), animate=animate, immediate=True,
                              force=True)

    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height)

    def action_cursor_up(self) -> None:
        self._set_hover(False)
        self.move_cursor(row=self.cursor_row - 1)

    def action_cursor_down(self) -> None:
        self._set_hover(False)
        self.move_cursor(row=self.cursor_row + 1)

    def action_page_up(self) -> None:
        self._set_hover(False)
        self.move_cursor(row=self.cursor_row - self._page())

    def action_page_down(self) -> None:
        self._set_hover(False)
        self.move_cursor(row=self.cursor_row + self._page())

    def action_first_row(self) -> None:
        self._set_hover(False)
        self.move_cursor(row=0)

    def action_last_row(self) -> None:
        self._set_hover(False)
        self.move_cursor(row=len(self._keys) - 1)

    def action_select_cursor(self) -> None:
        self._set_hover(False)
        if 0 <= self.cursor_row < len(self._keys):
            self.post_message(self.RowSelected(self._keys[self.cursor_row]))

    # ------------------------------------------------------------------ mouse

    def _set_hover(self, show: bool) -> None:
        if show != self._show_hover:
            self._show_hover = show
            self._refresh_row(self._hover_row)

    def on_mouse_move(self, event: events.MouseMove) -> None:
        row = event.style.meta.get("row")
        self._show_hover = True
        if isinstance(row, int) and row != self._hover_row:
            old, self._hover_row = self._hover_row, row
            self._refresh_row(old)
            self._refresh_row(row)

    def on_leave(self, event: events.Leave) -> None:
        self._set_hover(False)

    def on_click(self, event: events.Click) -> None:
        row = event.style.meta.get("row")
        if not isinstance(row, int) or not 0 <= row < len(self._keys):
            return
        event.stop()
        again = row == self.cursor_row
        self.move_cursor(row=row)
        if again:
            self.action_select_cursor()
