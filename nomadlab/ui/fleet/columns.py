"""The fleet table's columns: which fit a width, how wide each is, their titles, and
how a row's cells spread over them."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text

# Importance order: what gives way last comes first. Each column is added at its
# smallest useful width while the table has room; the room left then widens them.
# (Cost is shown in host rows across the Memory and Temp cells, so it stands with
# memory.) The five-minute sparkline is the first to go, then the processes.
IMPORTANCE = ("name", "util_bar", "mem", "health", "temp", "power", "procs", "hist")
MIN_WIDTH = {"name": 16, "util_bar": 4, "mem": 13, "health": 4, "temp": 5, "power": 10,
             "procs": 12, "hist": 4}
# (column, width to grow to), applied in order with what room is left.
GROWTH = (("procs", 24), ("hist", 16), ("name", 20), ("util_bar", 10), ("health", 14),
          ("procs", 36), ("hist", 30),
          ("name", 24), ("util_bar", 14), ("mem_bar", 8), ("health", 24))


@dataclass(frozen=True, slots=True)
class Columns:
    """The fleet table's column widths for a terminal width (0: the column is left out)."""
    name: int
    util_bar: int
    hist: int  # 0: no column
    mem: int
    mem_bar: int
    temp: int
    power: int
    procs: int  # 0: no column
    health: int = 0  # 0: no column; 4: ok/warn/FAIL; wider: and the first reason

    @classmethod
    def for_width(cls, width: int) -> Columns:
        """Column widths for a table ``width`` cells wide (each column adds 2 of padding).

        Columns come in the order of :data:`IMPORTANCE` while they fit, then grow
        (:data:`GROWTH`); whatever is left widens the processes column (or the
        sparkline when there is none), so no wide gap stays at the right.
        """
        room = width - 2  # vertical scrollbar
        sizes = dict.fromkeys((*IMPORTANCE, "mem_bar"), 0)
        for column in IMPORTANCE:
            need = MIN_WIDTH[column] + 2 + (5 if column == "util_bar" else 0)
            if need <= room or column == "name":
                sizes[column] = MIN_WIDTH[column]
                room -= need
        for column, target in GROWTH:
            if room <= 0:
                break
            if not sizes[column] and column != "mem_bar":
                continue
            extra = 1 if column == "mem_bar" and not sizes[column] else 0  # its space
            grow = min(room - extra, target - sizes[column])
            if grow > (2 if column == "mem_bar" else 0):
                sizes[column] += grow
                room -= grow + extra
        if room > 0:
            last = "procs" if sizes["procs"] else "hist" if sizes["hist"] else "name"
            sizes[last] += room
        return cls(sizes["name"], sizes["util_bar"], sizes["hist"], sizes["mem"],
                   sizes["mem_bar"], sizes["temp"], sizes["power"], sizes["procs"],
                   sizes["health"])

    def total_without_procs(self) -> int:
        return sum(self.widths()[:6]) + 2 * 6

    def widths(self) -> list[int]:
        mem = self.mem + (self.mem_bar + 1 if self.mem_bar else 0)
        out = [self.name, self.util_bar + 5]
        if self.hist:
            out.append(self.hist)
        out += [mem, self.temp, self.power]
        if self.health:
            out.append(self.health)
        if self.procs:
            out.append(self.procs)
        return out

    def titles(self) -> list[str]:
        out = ["Host / GPU", "Util"]
        if self.hist:
            out.append("Last 5 min" if self.hist >= 10 else "5 min" if self.hist >= 5 else "5m")
        out += ["Memory", "Temp", "Power"]
        if self.health:
            out.append("Health" if self.health >= 6 else "Hlth")
        if self.procs:
            out.append("Processes")
        return out

    def pick(self, cells: list[Text]) -> list[Text]:
        """A row's cells (host/GPU, util, sparkline, memory, temp, power, then health and
        processes where the spec has them) less those of the columns left out."""
        absent = {i for i, width in ((2, self.hist), (4, self.temp), (5, self.power))
                  if not width}
        return [cell for i, cell in enumerate(cells) if i not in absent]

    def fit(self, cells: list[Text]) -> tuple[list[Text], list[int], list[tuple[int, int]]]:
        """(cells, widths, spans) of one row: a cell wider than its column takes the
        columns after it that are empty in this row (a host's cost runs over the
        Temp column), so a figure is not cut while the room beside it is unused."""
        widths = self.widths()
        spans = self.spans()
        out_cells: list[Text] = []
        out_widths: list[int] = []
        out_spans: list[tuple[int, int]] = []
        i = 0
        while i < len(cells) and i < len(widths):
            cell, width, (x, span) = cells[i], widths[i], spans[i]
            i += 1
            while (cell.cell_len > width and i < len(cells) and i < len(widths)
                   and not cells[i].plain):
                width += widths[i] + 2
                span += spans[i][1]
                i += 1
            out_cells.append(cell)
            out_widths.append(width)
            out_spans.append((x, span))
        return out_cells, out_widths, out_spans

    def spans(self) -> list[tuple[int, int]]:
        """(x, width) of each column's cells, padding included."""
        out = []
        x = 0
        for width in self.widths():
            out.append((x, width + 2))
            x += width + 2
        return out
