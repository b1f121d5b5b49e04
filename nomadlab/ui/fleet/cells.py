"""What each row of the fleet table shows: a host's cells (state, host stats, cost,
power, health, hints), a GPU's (utilization bar, sparkline, memory, temperature,
power, health, top process) and a MIG instance's."""

from __future__ import annotations

from rich.text import Text

from nomadlab.core.model import GpuSample, HostState, HostStatus
from nomadlab.ui import render
from nomadlab.ui.fleet import health_view
from nomadlab.ui.fleet.columns import Columns
from nomadlab.ui.fleet.rows import parse_key
from nomadlab.ui.services import Services

SPARK_SPAN = 300.0  # seconds of history in the sparkline column


def money_text(busy: int | None, gpus: int, cost: float | None, room: int) -> Text:
    """'6/8 busy $23.92/h' in ``room`` cells: the words give way, never the cost."""
    price = f"${cost:.2f}/h" if cost is not None else ""
    count = f"{busy}/{gpus}" if busy is not None else ""
    for words in (f"{count} busy" if count else "", count, ""):
        text = " ".join(part for part in (words, price) if part)
        if len(text) <= room or not words:
            return Text(text, style="dim")
    return Text(price, style="dim")


def short_model(name: str) -> str:
    for prefix in ("NVIDIA ", "GeForce "):
        if name.startswith(prefix):
            name = name[len(prefix):]
    return name


class RowCells:
    """The cells of the table's rows, from the fleet's latest samples; mixed into
    :class:`~nomadlab.ui.fleet.table.FleetTable`, which draws them."""

    services: Services
    columns_spec: Columns | None
    collapsed: set[str]

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
        reason = render.no_gpu_reason(status)
        if reason:  # 'live · no GPU' says why, like `nomadlab status` (runs over empty cells)
            state.append("  ")
            state.append_text(render.safe(reason, "yellow"))
        if status.state in (HostState.LIVE, HostState.STALE):
            middle = render.host_stats(sample)
            if (sample is not None and sample.source is not None and sample.cpu_percent is None
                    and sample.memory_total_mib is None):
                middle = Text("no node_exporter figures", style="dim")
        else:
            middle = render.safe(status.error or "", "red" if status.state.waits_for_user else "")
        cost = fleet.costs.get(name)
        gpus = sample.gpus if sample is not None else []
        th = self.services.config.fleet.thresholds
        busy = sum(1 for g in gpus if not g.is_free(th.free_utilization, th.free_memory_mib))
        money = money_text(busy if gpus else None, len(gpus), cost,
                           spec.widths()[3 if spec.hist else 2] + 2 + spec.temp)
        power = sum(g.power_w or 0 for g in gpus)
        # The state runs over the Util and sparkline columns, the cost over Memory and
        # Temp (see Columns.fit); the host's figures or its error go in the processes
        # column, or after the state when there is none.
        if middle.plain and not spec.procs:
            state.append("  ")
            state.append_text(middle)
        cells = [label, state, Text(""), money, Text(""),
                 Text(f"{power / 1000:.1f}kW" if power >= 1000 else
                      (f"{power:.0f}W" if power else ""), style="dim")]
        if spec.health:
            cells.append(health_view.host_cell(gpus, spec.health))
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
            cell = Text(hint, style="italic dim") if hint else Text("")
            if middle.plain:
                cell.append("  " if hint else "")
                cell.append_text(middle)
            source = fleet.via(name)
            if source is not None:
                cell = render.safe(f"via {source} ", "dim").append_text(cell)
            cells.append(cell)
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
            hist = render.spark_text(values)
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
        if spec.health:
            cells.append(health_view.gpu_cell(gpu, spec.health))
        if spec.procs:
            if gpu.processes:
                first = max(gpu.processes, key=lambda p: p.memory_mib or 0)
                text = render.safe(first.user, "cyan")
                text.append(" ")
                text.append_text(render.safe(first.command, limit=200))
                if len(gpu.processes) > 1:
                    text.append(f" +{len(gpu.processes) - 1}", style="dim")
                cells.append(text)
            elif not self._processes_known(name):
                cells.append(Text("processes not reported (DCGM)", style="dim italic"))
            else:
                cells.append(Text("—", style="dim"))
        if status is not None and status.state is not HostState.LIVE:
            for cell in cells:
                cell.stylize("dim")
        return cells

    def _processes_known(self, name: str) -> bool:
        sample = self.services.fleet.latest.get(name)
        return sample is None or sample.processes_known

    def _cells_for(self, key: str) -> list[Text]:
        name, gpu_index = parse_key(key)
        if gpu_index is None:
            return self._host_cells(name)
        sample = self.services.fleet.latest.get(name)
        gpu = next((g for g in sample.gpus if g.index == gpu_index), None) if sample else None
        if gpu is None:
            return [Text("")]
        if key.startswith("m"):
            return self._mig_cells(gpu, int(key.rsplit("\x00", 1)[1]))
        return self._gpu_cells(name, gpu)

    def _mig_cells(self, gpu: GpuSample, instance: int) -> list[Text]:
        """A MIG instance under its GPU: profile, memory and processes."""
        spec = self.columns_spec or Columns.for_width(120)
        mig = gpu.health.mig if gpu.health is not None else None
        if not mig or instance >= len(mig):
            return [Text("")]
        m = mig[instance]
        label = Text("      └ ", style="dim")
        label.append_text(render.safe(f"MIG {m.profile}"))
        memory = Text(f"{render.gib(m.memory_used_mib)}/{render.gib(m.memory_total_mib)}",
                      style="cyan")
        cells = [label, Text(""), Text(""), memory, Text(""), Text("")]
        if spec.health:
            cells.append(Text(""))
        if spec.procs:
            pids = ", ".join(str(p) for p in m.processes[:4])
            more = len(m.processes) - 4
            cells.append(Text(f"pids {pids}" + (f" +{more}" if more > 0 else ""), style="dim")
                         if m.processes else Text("—", style="dim"))
        return cells
