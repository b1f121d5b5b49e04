"""Every GPU of every host in one table, updated in place by row key.

Rows: one per host (state, host stats, cost), then one per GPU (utilization bar,
five-minute sparkline, memory, temperature, power, processes). Updates are
coalesced by the bridge and applied with ``update_cell`` only where the text
changed, so a second of new samples repaints only the cells that moved.
"""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable
from textual.widgets.data_table import CellDoesNotExist, RowDoesNotExist, RowKey

from nomadlab.core import fleetview
from nomadlab.core.history import sparkline
from nomadlab.core.model import GpuSample, HostSample, HostState, HostStatus
from nomadlab.ui import render
from nomadlab.ui.services import Services

SPARK_SPAN = 300.0  # seconds of history in the sparkline column


@dataclass(frozen=True, slots=True)
class Columns:
    name: int
    util_bar: int
    hist: int
    mem: int
    mem_bar: int
    temp: int
    power: int
    procs: int  # 0: no column

    @classmethod
    def for_width(cls, width: int) -> Columns:
        """Column widths for a table ``width`` cells wide (each column adds 2 of padding)."""
        usable = width - 2  # vertical scrollbar
        if usable >= 148:
            fixed = cls(24, 14, 30, 12, 8, 5, 10, 0)
        elif usable >= 108:
            fixed = cls(20, 10, 20, 12, 0, 5, 10, 0)
        else:
            hist = max(4, min(16, usable - 16 - 11 - 11 - 5 - 9 - 12))
            return cls(16, 6, hist, 11 if usable >= 76 else 10, 0, 5, 9, 0)
        used = fixed.total_without_procs() + 2  # + padding of the procs column
        return cls(fixed.name, fixed.util_bar, fixed.hist, fixed.mem, fixed.mem_bar, fixed.temp,
                   fixed.power, max(8, usable - used))

    def total_without_procs(self) -> int:
        mem = self.mem + (self.mem_bar + 1 if self.mem_bar else 0)
        return (self.name + self.util_bar + 5 + self.hist + mem + self.temp + self.power
                + 2 * 6)


def short_model(name: str) -> str:
    for prefix in ("NVIDIA ", "GeForce "):
        if name.startswith(prefix):
            name = name[len(prefix):]
    return name


def host_key(name: str) -> str:
    return f"h\x00{name}"


def gpu_key(name: str, index: int) -> str:
    return f"g\x00{name}\x00{index}"


def parse_key(key: str) -> tuple[str, int | None]:
    parts = key.split("\x00")
    if parts[0] == "g" and len(parts) == 3:
        return parts[1], int(parts[2])
    return parts[1] if len(parts) > 1 else key, None


class FleetTable(DataTable[Text]):
    """The fleet: host rows and GPU rows."""

    BINDINGS = [
        Binding("space", "toggle_host", "Fold", show=False),
        Binding("home,g", "first_row", "Top", show=False),
        Binding("end,G", "last_row", "Bottom", show=False),
    ]

    class Selected(Message):
        def __init__(self, host: str, gpu: int | None) -> None:
            super().__init__()
            self.host = host
            self.gpu = gpu

    def __init__(self, services: Services, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False, show_cursor=True)
        self.services = services
        self.sort_key = services.config.fleet.sort
        self.query_text = ""
        self.collapsed: set[str] = set()
        self.columns_spec: Columns | None = None
        self.rendered: dict[str, int] = {}  # host -> bridge version shown
        self.cells: dict[tuple[str, str], str] = {}  # (row, column) -> plain text shown
        self.order: list[str] = []
        self._gpu_rows: dict[str, list[str]] = {}
        self._flush_pending = False

    # ------------------------------------------------------------------ lifecycle

    def on_mount(self) -> None:
        self.services.bridge.subscribe(self._poke)
        self.set_interval(1.0, self._tick)  # ages ("stale 12s", "retry in 4s") move on

    def on_unmount(self) -> None:
        self.services.bridge.unsubscribe(self._poke)

    def on_resize(self, event: events.Resize) -> None:
        spec = Columns.for_width(self.size.width)  # inside the border
        if spec != self.columns_spec:
            self.columns_spec = spec
            self.rebuild(columns=True)

    def _poke(self) -> None:
        if not self._flush_pending:
            self._flush_pending = True
            self.set_timer(0.05, self.flush)

    def _tick(self) -> None:
        statuses = self.services.fleet.statuses
        labels = [n for n in self.order if statuses.get(n) is not None
                  and statuses[n].state in (HostState.STALE, HostState.RECONNECTING)]
        if labels and self.screen.is_current:
            for name in labels:
                self._update_host(name)

    # ------------------------------------------------------------------ structure

    def visible_hosts(self) -> list[str]:
        fleet = self.services.fleet
        tags = {h.name: h.tags for h in self.services.config.hosts}
        names = fleetview.order_hosts(fleet.names(), fleet.statuses, fleet.latest,
                                      fleet.costs, self.sort_key)
        return [n for n in names
                if fleetview.host_matches(self.query_text, n, fleet.latest.get(n),
                                          tags.get(n, ()), fleet.statuses.get(n))]

    def rebuild(self, columns: bool = False) -> None:
        spec = self.columns_spec or Columns.for_width(self.size.width or 120)
        self.columns_spec = spec
        keep = self._cursor_key()
        self.clear(columns=columns)
        if columns:
            self.add_column("Host / GPU", width=spec.name, key="name")
            self.add_column("Util", width=spec.util_bar + 5, key="util")
            self.add_column("Last 5 min", width=spec.hist, key="hist")
            self.add_column("Memory", width=spec.mem + (spec.mem_bar + 1 if spec.mem_bar else 0),
                            key="mem")
            self.add_column("Temp", width=spec.temp, key="temp")
            self.add_column("Power", width=spec.power, key="power")
            if spec.procs:
                self.add_column("Processes", width=spec.procs, key="procs")
        self.cells.clear()
        self.rendered.clear()
        self._gpu_rows.clear()
        self.order = self.visible_hosts()
        fleet = self.services.fleet
        for name in self.order:
            self.add_row(*self._host_cells(name), key=host_key(name))
            sample = fleet.latest.get(name)
            rows: list[str] = []
            if sample is not None and name not in self.collapsed:
                for gpu in sample.gpus:
                    key = gpu_key(name, gpu.index)
                    self.add_row(*self._gpu_cells(name, gpu), key=key)
                    rows.append(key)
            self._gpu_rows[name] = rows
            self.rendered[name] = self.services.bridge.host_versions.get(name, 0)
        if keep is not None:
            self._move_to(keep)

    def _cursor_key(self) -> str | None:
        if self.row_count == 0:
            return None
        try:
            row_key, _ = self.coordinate_to_cell_key(self.cursor_coordinate)
        except CellDoesNotExist:
            return None
        return str(row_key.value)

    def _move_to(self, key: str) -> None:
        try:
            index = self.get_row_index(RowKey(key))
        except RowDoesNotExist:
            name, _ = parse_key(key)
            try:
                index = self.get_row_index(RowKey(host_key(name)))
            except RowDoesNotExist:
                return
        self.move_cursor(row=index, animate=False)

    # ------------------------------------------------------------------ cells

    def _host_cells(self, name: str) -> list[Text]:
        spec = self.columns_spec or Columns.for_width(120)
        fleet = self.services.fleet
        status = fleet.statuses.get(name) or HostStatus(name, HostState.CONNECTING, 0.0)
        sample = fleet.latest.get(name)
        now = self.services.clock.time()
        fold = "▸ " if name in self.collapsed else "▾ "
        label = Text(fold, style="dim")
        label.append_text(render.safe(name, "bold"))
        state = render.state_text(status, now)
        if status.state in (HostState.LIVE, HostState.STALE):
            middle = render.host_stats(sample, load=not spec.procs)
        else:
            middle = render.safe(status.error or "", "red" if status.state.waits_for_user else "")
        cost = fleet.costs.get(name)
        gpus = sample.gpus if sample is not None else []
        th = self.services.config.fleet.thresholds
        busy = sum(1 for g in gpus if not g.is_free(th.free_utilization, th.free_memory_mib))
        money = Text()
        if gpus:
            money.append(f"{busy}/{len(gpus)} busy", style="dim")
        if cost is not None:
            money.append(f" ${cost:.2f}/h", style="dim")
        power = sum(g.power_w or 0 for g in gpus)
        cells = [label, state, middle, money, Text(""),
                 Text(f"{power / 1000:.1f}kW" if power >= 1000 else
                      (f"{power:.0f}W" if power else ""), style="dim")]
        if spec.procs:
            hint = ""
            if status.state is HostState.HOSTKEY_UNKNOWN:
                hint = "t: trust this key"
            elif status.state is HostState.HOSTKEY_CHANGED:
                hint = "t: what to do"
            elif status.state is HostState.PASSPHRASE:
                hint = "p: enter passphrase"
            elif status.state in (HostState.AUTH_FAILED, HostState.RECONNECTING):
                hint = "r: retry now"
            if hint:
                cells.append(Text(hint, style="italic dim"))
            else:
                cells.append(render.load_text(sample))
        return cells

    def _gpu_cells(self, name: str, gpu: GpuSample) -> list[Text]:
        spec = self.columns_spec or Columns.for_width(120)
        th = self.services.config.fleet.thresholds
        fleet = self.services.fleet
        status = fleet.statuses.get(name)
        now = self.services.clock.time()
        series = fleet.history.util.get((name, gpu.index))
        hist = Text("")
        if series is not None:
            values = series.buckets(now, spec.hist, SPARK_SPAN)
            hist = Text(sparkline(values), style=render.util_style(gpu.utilization))
        label = Text(f"  {gpu.index:>2} ", style="dim")
        label.append_text(render.safe(short_model(gpu.name)))
        cells = [
            label,
            render.util_cell(gpu, spec.util_bar),
            hist,
            render.memory_cell(gpu, th, spec.mem_bar),
            render.temp_cell(gpu, th),
            render.power_cell(gpu, th),
        ]
        if spec.procs:
            if gpu.processes:
                first = max(gpu.processes, key=lambda p: p.memory_mib or 0)
                text = render.safe(first.user, "cyan")
                text.append(" ")
                text.append_text(render.safe(first.command, limit=200))
                if len(gpu.processes) > 1:
                    text.append(f" +{len(gpu.processes) - 1}", style="dim")
                cells.append(text)
            else:
                cells.append(Text("—", style="dim"))
        if status is not None and status.state is not HostState.LIVE:
            for cell in cells:
                cell.stylize("dim")
        return cells

    def _set_row(self, key: str, cells: list[Text]) -> None:
        for column, cell in zip(self.columns, cells, strict=False):
            plain = cell.plain + "\x00" + str(cell.spans)
            if self.cells.get((key, str(column.value))) == plain:
                continue
            self.cells[(key, str(column.value))] = plain
            try:
                self.update_cell(key, column, cell)
            except CellDoesNotExist:
                return

    def _structure_changed(self, name: str) -> bool:
        """True when the rows of this host no longer match its GPUs (first sample, GPU lost)."""
        if name in self.collapsed:
            return False
        sample = self.services.fleet.latest.get(name)
        wanted = [] if sample is None else [gpu_key(name, g.index) for g in sample.gpus]
        have = self._gpu_rows.get(name, [])
        return wanted != have

    def _update_host(self, name: str) -> None:
        self._set_row(host_key(name), self._host_cells(name))
        sample = self.services.fleet.latest.get(name)
        if sample is None or name in self.collapsed:
            return
        for gpu in sample.gpus:
            self._set_row(gpu_key(name, gpu.index), self._gpu_cells(name, gpu))

    def flush(self) -> None:
        """Apply what changed since the last flush (skipped while off screen)."""
        self._flush_pending = False
        if not self.screen.is_current:
            return
        bridge = self.services.bridge
        changed = [n for n in self.order if bridge.host_versions.get(n, 0) != self.rendered.get(n)]
        if not changed:
            return
        if any(self._structure_changed(n) for n in changed) or (
            self.sort_key != "name" and self.visible_hosts() != self.order
        ):
            self.rebuild()
            return
        with self.app.batch_update():
            for name in changed:
                self._update_host(name)
                self.rendered[name] = bridge.host_versions.get(name, 0)
                if self.services.latency is not None and name in bridge.received:
                    self.services.latency.shown(bridge.received[name])

    def on_show(self) -> None:
        self.flush()

    # ------------------------------------------------------------------ actions

    def selected(self) -> tuple[str, int | None] | None:
        key = self._cursor_key()
        return parse_key(key) if key is not None else None

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            host, gpu = parse_key(str(event.row_key.value))
            self.post_message(self.Selected(host, gpu))

    def action_first_row(self) -> None:
        if self.row_count:
            self.move_cursor(row=0, animate=False)

    def action_last_row(self) -> None:
        if self.row_count:
            self.move_cursor(row=self.row_count - 1, animate=False)

    def action_toggle_host(self) -> None:
        chosen = self.selected()
        if chosen is None:
            return
        host, _ = chosen
        self.collapsed.symmetric_difference_update({host})
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
