"""A small Textual app that draws a fixed sequence of frames, each a partial update of
a few cells in the middle of lines, with wide (CJK, emoji) characters on both sides.

Run on a terminal as ``python textual_frames.py patched|plain``: with or without
nomadlab's render fix (nomadlab/ui/textual_patches.py). Each ``n`` draws the next
frame; the table's last row then says ``frame  K/N``. tests/test_textual_patch.py reads the
screens through pyte and compares the two runs frame by frame.
"""

from __future__ import annotations

import sys

from rich.segment import Segment
from rich.style import Style
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.geometry import Region
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import DataTable

HOSTS = ["gpu-東京-1", "gpu-大阪-2", "lab-🚀-3", "plain-4"]
# Frame k: (row, column key, new value) cell updates of the table, and (index, char)
# for the wide line (one double-width character replaced, its refresh region starting
# in the middle of the character before it).
FRAMES: list[tuple[list[tuple[int, str, str]], tuple[int, str]]] = [
    ([(0, "power", "612 W 电")], (3, "火")),
    ([(1, "power", "88 W"), (2, "util", "百分之九十")], (7, "水")),
    ([(0, "util", "42 %"), (3, "power", "🔥 700 W")], (0, "木")),
    ([(2, "power", "1 W"), (1, "util", "ｘｙｚ")], (12, "金")),
    ([(3, "util", "—"), (0, "power", "5 W")], (19, "土")),
    ([(1, "power", "漢字漢字漢字"), (2, "util", "ok")], (5, "日")),
]
WIDE = "一二三四五六七八九十百千万亿兆京垓秭穰沟"  # 20 characters, 40 cells


class WideLine(Widget):
    """One line of double-width characters, refreshed a few cells at a time."""

    DEFAULT_CSS = "WideLine { height: 3; width: 60; }"

    def __init__(self) -> None:
        super().__init__()
        self.text = list(WIDE)
        self.power = 0
        self.counts = [0, 0, 0, 0]

    def render_line(self, y: int) -> Strip:
        if y == 0:
            segments = [Segment("[" + "".join(self.text) + "]")]
        elif y == 1:  # styled segments, the middle one changing
            segments = [Segment("電源 gpu0 ", Style(bold=True)),
                        Segment(f"{self.power:>5} W", Style(color="red", bgcolor="blue")),
                        Segment(" 全部 ok", Style(color="green", italic=True))]
        elif y == 2:  # numbers in runs of styles: short gaps, attributes, a link
            a, b, c, d = (f"{n:>2}" for n in self.counts)
            ink = Style(color="yellow", bgcolor="grey23")
            segments = [Segment("load ", Style(dim=True)), Segment(a, ink),
                        Segment(" | ", ink), Segment(b, ink), Segment("漢", ink),
                        Segment(c, Style(color="yellow", bgcolor="grey23", reverse=True,
                                         underline=True)),
                        Segment(" x "), Segment(d, Style(link="https://example.com/", bold=True)),
                        Segment(" end", Style(bgcolor="grey23"))]
        else:
            segments = []
        return Strip(segments).extend_cell_length(self.size.width).crop(0, self.size.width)

    def replace(self, index: int, char: str) -> None:
        self.text[index] = char
        x = 1 + 2 * index  # the character's first cell ("[" is one cell)
        # from the middle of the character before (or "[") to the end of the new one
        self.refresh(Region(max(0, x - 1), 0, 3, 1))
        self.power += 111
        self.refresh(Region(12, 1, 3, 1))  # the last digits of the power
        # Each number of the third line in a region of its own: between a and b three
        # cells of the same style, between b and c a wide character, c and d 3 cells.
        self.counts = [(n + 7 * (i + 1)) % 100 for i, n in enumerate(self.counts)]
        for x in (5, 10, 14, 19):
            self.refresh(Region(x, 2, 2, 1))


class Frames(App[None]):
    BINDINGS = [Binding("n", "next", "next frame"), Binding("q", "quit", "quit")]

    def __init__(self) -> None:
        super().__init__()
        self.frame = 0

    def compose(self) -> ComposeResult:
        yield DataTable(cursor_type="none", zebra_stripes=False)
        yield WideLine()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_column("host", key="host")
        table.add_column("名前 name", key="name")
        table.add_column("power", key="power", width=14)
        table.add_column("util", key="util", width=12)
        table.add_column("note 注意", key="note")
        for i, host in enumerate(HOSTS):
            table.add_row(host, "テスト" * (i + 1), "0 W", "0 %", "ｎｏｔｅ ✓", key=str(i))
        # the frame counter, a cell too (a Static's update would repaint everything)
        table.add_row("frame", f"0/{len(FRAMES)}", "", "", "", key="marker")

    def action_next(self) -> None:
        if self.frame >= len(FRAMES):
            return
        cells, (index, char) = FRAMES[self.frame]
        table = self.query_one(DataTable)
        for row, column, value in cells:
            table.update_cell(str(row), column, value)
        self.query_one(WideLine).replace(index, char)
        self.frame += 1
        table.update_cell("marker", "name", f"{self.frame}/{len(FRAMES)}")


def main(mode: str) -> None:
    if mode == "patched":
        from nomadlab.ui import textual_patches

        if not textual_patches.apply():
            raise SystemExit("the patch does not apply to this Textual")
    elif mode != "plain":
        raise SystemExit("usage: textual_frames.py patched|plain")
    Frames().run()


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "plain")
