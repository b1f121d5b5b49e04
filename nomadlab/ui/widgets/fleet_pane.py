"""The fleet at a glance for the workspace: one line per host, the worst GPU first."""

from __future__ import annotations

from rich.text import Text
from textual.message import Message
from textual.widgets import DataTable

from nomadlab.core import fleetview
from nomadlab.core.history import BARS
from nomadlab.core.model import HostState, HostStatus
from nomadlab.ui import render
from nomadlab.ui.services import Services


def mini_bars(utils: list[float | None]) -> Text:
    text = Text()
    for util in utils:
        if util is None:
            text.append("·", style="dim")
            continue
        level = max(0.0, min(1.0, util / 100))
        text.append(BARS[1 + round(level * (len(BARS) - 2))], style=render.util_style(util))
    return text


class FleetPane(DataTable[Text]):
    """Hosts ordered by what needs a look: problems first, then the worst GPU."""

    class Open(Message):
        def __init__(self, host: str | None) -> None:
            super().__init__()
            self.host = host

    def __init__(self, services: Services, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", show_header=False)
        self.services = services
        self._pending = False
        self._rows: list[tuple[str, ...]] = []

    def on_mount(self) -> None:
        self.add_column("host", key="host")
        self.add_column("state", key="state")
        self.add_column("gpus", key="gpus")
        self.add_column("busy", key="busy")
        self.add_column("worst", key="worst")
        self.add_column("cost", key="cost")
        self.services.bridge.subscribe(self._poke)
        self.set_interval(1.0, self.refresh_rows)
        self.refresh_rows()

    def on_unmount(self) -> None:
        self.services.bridge.unsubscribe(self._poke)

    def _poke(self) -> None:
        if not self._pending:
            self._pending = True
            self.set_timer(0.1, self.refresh_rows)

    def ordered(self) -> list[str]:
        fleet = self.services.fleet
        th = self.services.config.fleet.thresholds

        def key(name: str) -> tuple[float, float, str]:
            status = fleet.statuses.get(name) or HostStatus(name, HostState.CONNECTING, 0)
            paid = fleet.costs.get(name) is not None
            worst = fleetview.worst_gpu(fleet.latest.get(name), th, paid)
            rank = fleetview.STATE_ORDER.get(status.state, 9)
            return (rank, -(worst.score if worst else 0), name)

        return sorted(fleet.names(), key=key)

    def refresh_rows(self) -> None:
        self._pending = False
        if not self.screen.is_current:
            return
        fleet = self.services.fleet
        th = self.services.config.fleet.thresholds
        now = self.services.clock.time()
        rows: list[tuple[str, ...]] = []
        cells: list[tuple[Text, ...]] = []
        # name, state, 8 bars, busy, cost and padding take about 60 cells
        room = max(12, self.size.width - 62)
        for name in self.ordered():
            status = fleet.statuses[name]
            sample = fleet.latest.get(name)
            gpus = sample.gpus if sample is not None else []
            worst = fleetview.worst_gpu(sample, th, fleet.costs.get(name) is not None)
            bars = mini_bars([g.utilization for g in gpus])
            reason = render.no_gpu_reason(status)
            if status.state is HostState.LIVE and reason:
                detail = render.safe(reason, "yellow", room)
            elif status.state is HostState.LIVE and worst is not None:
                detail = render.safe(worst.text, "yellow" if worst.score >= 2 else "dim", room)
            elif status.state is HostState.LIVE:
                detail = render.host_stats(sample)
                detail.truncate(room, overflow="ellipsis")
            else:
                detail = render.safe(status.error or "", "dim", room)
            label = render.safe(name, "bold", 24)
            state = render.state_text(status, now)
            busy_count = sum(1 for g in gpus
                             if not g.is_free(th.free_utilization, th.free_memory_mib))
            busy = Text(f"{busy_count}/{len(gpus)}" if gpus else "", style="dim")
            cost_value = fleet.costs.get(name)
            cost = Text(f"${cost_value:.2f}/h" if cost_value is not None else "", style="dim")
            row = (label, state, bars, busy, detail, cost)
            rows.append((name, *(c.plain for c in row[1:])))
            cells.append(row)
        if rows == self._rows:
            return
        keep = self.cursor_row
        self._rows = rows
        self.clear()
        for (name, *_), cell_row in zip(rows, cells, strict=True):
            self.add_row(*cell_row, key=name)
        if rows:
            self.move_cursor(row=min(keep, len(rows) - 1), animate=False)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.post_message(self.Open(str(event.row_key.value) if event.row_key.value else None))
