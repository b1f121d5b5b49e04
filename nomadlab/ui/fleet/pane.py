"""The fleet at a glance for the workspace: hosts worst first, and with room each
host's GPUs under it (utilization bar, memory, temperature, the top process), worst
first; where the pane is short, hosts that do not fit expanded stay one line each.

With more hosts than the pane has lines (a Prometheus source's thousand), it holds
the worst hosts that fit and a last line that says how many more there are (Enter
opens the fleet table): an update builds rows for what is on screen only, and each
host's worst GPU is worked out again only when that host's data changed."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.message import Message

from nomadlab.core import fleetview
from nomadlab.core.config import Thresholds
from nomadlab.core.history import BARS
from nomadlab.core.model import GpuSample, HostSample, HostState, HostStatus
from nomadlab.ui import render
from nomadlab.ui.fleet.pane_table import PaneTable
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


GPU_SEP = "\x00"  # row keys: "host" for a host, "host\x00index" for one of its GPUs
MORE_KEY = "\x00more"  # the last row when not every host fits: how many more
BAR = 8  # cells of a GPU's utilization bar
UNSIZED_LINES = 40  # lines assumed before the pane knows its height


def gpus_worst_first(sample: HostSample | None, th: Thresholds,
                     paid: bool) -> list[tuple[fleetview.Concern, GpuSample]]:
    """A host's GPUs, the one that most needs a look first (failing, hot, full, ...)."""
    gpus = sample.gpus if sample is not None else []
    concerns = [(fleetview.gpu_concern(g, th, paid), g) for g in gpus]
    return sorted(concerns, key=lambda c: (-c[0].score, c[1].index))


def expanded_hosts(sizes: list[tuple[str, int]], lines: int) -> set[str]:
    """Which hosts get their GPUs listed in ``lines`` rows: one line per host first,
    then, in the hosts' order (worst first), each host whose GPUs all fit."""
    room = lines - len(sizes)
    out: set[str] = set()
    for name, count in sizes:
        if 0 < count <= room:
            out.add(name)
            room -= count
    return out


def gpu_row(gpu: GpuSample, concern: fleetview.Concern, th: Thresholds,
            dim: bool) -> tuple[Text, ...]:
    """One GPU under its host: label, util bar, memory, temperature, (no cost), top
    process; the columns of the host rows above it."""
    label = Text(f"  {gpu.index:>2} ", style="dim")
    label.append_text(render.safe(gpu.name.removeprefix("NVIDIA ").removeprefix("GeForce "),
                                  "", 12))
    detail = Text()
    if concern.score >= 3 and not concern.text.endswith("°C"):  # health, memory full
        detail.append_text(render.safe(concern.text.removeprefix(f"GPU{gpu.index} "), "yellow"))
        detail.append("  ")
    if gpu.processes:
        top = max(gpu.processes, key=lambda p: p.memory_mib or 0)
        detail.append_text(render.safe(top.user, "cyan"))
        detail.append(" ")
        detail.append_text(render.safe(top.command, limit=200))
        if len(gpu.processes) > 1:
            detail.append(f" +{len(gpu.processes) - 1}", style="dim")
    elif gpu.is_free(th.free_utilization, th.free_memory_mib):
        detail.append("idle", style="dim")
    cells = (label, render.util_cell(gpu, BAR), render.memory_cell(gpu, th),
             render.temp_cell(gpu, th), Text(""), detail)
    if dim:
        for cell in cells:
            cell.stylize("dim")
    return cells


class FleetPane(PaneTable):
    """Hosts ordered by what needs a look: problems first, then the worst GPU."""

    class Open(Message):
        def __init__(self, host: str | None) -> None:
            super().__init__()
            self.host = host

    def __init__(self, services: Services, *, id: str | None = None) -> None:
        super().__init__(("host", "state", "gpus", "busy", "cost", "worst"), id=id)
        self.services = services
        self._pending = False
        self._rows: list[tuple[str, ...]] = []
        # host -> (bridge version, its worst GPU then): recomputed when the host changed
        self._worst: dict[str, tuple[int, fleetview.Concern | None]] = {}

    def on_mount(self) -> None:
        self.services.bridge.subscribe(self._poke)
        self.set_interval(1.0, self.refresh_rows)
        if self.size.area:
            self.refresh_rows()

    def on_resize(self, event: events.Resize) -> None:
        # The detail column fits the pane's width, and the room for GPU rows its height:
        # fill (at start: once, not at mount with size 0 and then again) or refit as
        # soon as the size is known, not at the next tick of the 1 s refresh. Rows that
        # come out the same are not repainted.
        self.refresh_rows()

    def on_unmount(self) -> None:
        self.services.bridge.unsubscribe(self._poke)

    def _poke(self) -> None:
        if not self._pending:
            self._pending = True
            self.set_timer(0.1, self.refresh_rows)

    def worst(self, name: str) -> fleetview.Concern | None:
        """The host's GPU that most needs a look, as of the host's last change."""
        version = self.services.bridge.host_versions.get(name, 0)
        known = self._worst.get(name)
        if known is not None and known[0] == version:
            return known[1]
        fleet = self.services.fleet
        worst = fleetview.worst_gpu(fleet.latest.get(name), self.services.config.fleet.thresholds,
                                    fleet.costs.get(name) is not None)
        self._worst[name] = (version, worst)
        return worst

    def ordered(self) -> list[str]:
        fleet = self.services.fleet

        def key(name: str) -> tuple[float, float, str]:
            status = fleet.statuses.get(name) or HostStatus(name, HostState.CONNECTING, 0)
            worst = self.worst(name)
            rank = fleetview.STATE_ORDER.get(status.state, 9)
            return (rank, -(worst.score if worst else 0), name)

        names = fleet.names()
        if len(self._worst) > len(names):  # hosts that went
            self._worst = {n: self._worst[n] for n in names if n in self._worst}
        return sorted(names, key=key)

    def _host_row(self, name: str, now: float) -> tuple[Text, ...]:
        fleet = self.services.fleet
        th = self.services.config.fleet.thresholds
        status = fleet.statuses[name]
        sample = fleet.latest.get(name)
        gpus = sample.gpus if sample is not None else []
        worst = self.worst(name)
        bars = mini_bars([g.utilization for g in gpus])
        room = 200  # cut again to the width the pane has
        reason = render.no_gpu_reason(status)
        if status.state is HostState.LIVE and reason:
            detail = render.safe(reason, "yellow", room)
        elif status.state is HostState.LIVE and worst is not None:
            detail = render.safe(worst.text, "yellow" if worst.score >= 2 else "dim", room)
        elif status.state is HostState.LIVE:
            detail = render.host_stats(sample)
        else:
            detail = render.safe(status.error or "", "dim", room)
        label = render.safe(name, "bold", 24)
        state = render.state_text(status, now)
        busy_count = sum(1 for g in gpus if not g.is_free(th.free_utilization, th.free_memory_mib))
        busy = Text(f"{busy_count}/{len(gpus)}" if gpus else "", style="dim")
        cost_value = fleet.costs.get(name)
        cost = Text(f"${cost_value:.2f}/h" if cost_value is not None else "", style="dim")
        return (label, state, bars, busy, cost, detail)

    def _gpu_rows(self, name: str) -> list[tuple[str, tuple[Text, ...]]]:
        fleet = self.services.fleet
        th = self.services.config.fleet.thresholds
        dim = fleet.statuses[name].state is not HostState.LIVE
        paid = fleet.costs.get(name) is not None
        return [(f"{name}{GPU_SEP}{gpu.index}", gpu_row(gpu, concern, th, dim=dim))
                for concern, gpu in gpus_worst_first(fleet.latest.get(name), th, paid)]

    def refresh_rows(self) -> None:
        self._pending = False
        if not self.screen.is_current:
            return
        fleet = self.services.fleet
        now = self.services.clock.time()
        ordered = self.ordered()
        lines = self.size.height or UNSIZED_LINES
        more: tuple[Text, ...] | None = None
        if len(ordered) > lines:  # the worst that fit, and a line for the others
            rest = ordered[max(0, lines - 1):]
            ordered = ordered[:max(0, lines - 1)]
            more = self._more_row(rest)
        hosts = {name: self._host_row(name, now) for name in ordered}
        shown = [(n, len(fleet.latest[n].gpus) if n in fleet.latest and fleet.statuses[n].state
                  in (HostState.LIVE, HostState.STALE) else 0) for n in ordered]
        expand = expanded_hosts(shown, lines - (1 if more else 0))
        under = {name: self._gpu_rows(name) for name in expand}

        def others(rows: list[tuple[Text, ...]]) -> int:
            """Cells taken by every column but the last, padding and scrollbar included."""
            return sum(max((r[i].cell_len for r in rows), default=0) for i in range(5)) + 14

        gpu_cells = [cells for rows in under.values() for _key, cells in rows]
        if self.size.width - others([*hosts.values(), *gpu_cells]) < 16:
            under = {}  # too narrow for GPU rows and their process: one line per host
        keyed: list[tuple[str, tuple[Text, ...]]] = []
        for name in ordered:
            keyed.append((name, hosts[name]))
            keyed.extend(under.get(name, []))
        if more is not None:
            keyed.append((MORE_KEY, more))
        # The detail column (the last) takes the width the others leave, so the pane
        # does not scroll sideways; what is cut there is text, never a figure.
        room = max(8, self.size.width - others([cells for _key, cells in keyed]))
        for _key, cells in keyed:
            cells[5].truncate(room, overflow="ellipsis")
        rows = [(key, *(c.plain for c in cells)) for key, cells in keyed]
        if rows == self._rows and len(rows) == self.row_count:
            return
        keep = self.cursor_row
        self._rows = rows
        self.set_rows(keyed)
        if rows:
            self.move_cursor(row=min(keep, len(rows) - 1), animate=False)

    def _more_row(self, rest: list[str]) -> tuple[Text, ...]:
        """The last line when not every host fits: how many more, and in what state."""
        statuses = self.services.fleet.statuses
        counts: dict[str, int] = {}
        for name in rest:
            status = statuses.get(name)
            state = str(status.state) if status is not None else "connecting"
            counts[state] = counts.get(state, 0) + 1
        label = Text(f"+{len(rest)} more", style="bold")
        detail = Text(", ".join(f"{n} {state}" for state, n in
                                sorted(counts.items(), key=lambda c: -c[1])), style="dim")
        detail.append("  enter: the fleet table", style="dim italic")
        return (label, Text(""), Text(""), Text(""), Text(""), detail)

    def on_pane_table_row_selected(self, event: PaneTable.RowSelected) -> None:
        event.stop()
        key: str | None = event.key or None
        if key == MORE_KEY:
            key = None  # the fleet table, where every host is
        self.post_message(self.Open(key.split(GPU_SEP)[0] if key else None))

