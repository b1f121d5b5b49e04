"""The processes of the selected GPU (or of every GPU of the selected host).

``T`` shows them as a tree of their parents (from the agent's /proc reading); ``k``
on a process asks to signal it (handled by the screen).
"""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from nomadlab.core.durations import compact
from nomadlab.core.model import GpuProcess
from nomadlab.ui import render
from nomadlab.ui.services import Services

Row = tuple[object, ...]


def container_text(proc: GpuProcess) -> str:
    info = proc.info
    if info is None or info.container is None:
        return ""
    return info.container.label


def tree_rows(procs: list[tuple[int, GpuProcess]]) -> list[tuple[int, int | None, str,
                                                                tuple[int, GpuProcess] | None]]:
    """(depth, pid, name, process or None) in tree order: parents first, shared once."""
    children: dict[int, list[int]] = {}
    names: dict[int, str] = {}
    roots: list[int] = []
    leaf: dict[int, tuple[int, GpuProcess]] = {}
    for gpu, proc in procs:
        chain = list(reversed(proc.info.parents)) if proc.info is not None else []
        path = [*chain, (proc.pid, proc.command)]
        leaf[proc.pid] = (gpu, proc)
        parent: int | None = None
        for pid, name in path:
            names.setdefault(pid, name)
            siblings = roots if parent is None else children.setdefault(parent, [])
            if pid not in siblings:
                siblings.append(pid)
            parent = pid
    out: list[tuple[int, int | None, str, tuple[int, GpuProcess] | None]] = []
    seen: set[int] = set()

    def walk(pid: int, depth: int) -> None:
        if pid in seen or depth > 64:
            return
        seen.add(pid)
        out.append((depth, pid, names[pid], leaf.get(pid)))
        for child in children.get(pid, []):
            walk(child, depth + 1)

    for root in roots:
        walk(root, 0)
    return out


class ProcessTable(DataTable[Text]):
    BINDINGS = [
        Binding("k", "signal", "Signal"),
        Binding("T", "tree", "Tree"),
    ]

    class SignalAsked(Message):
        def __init__(self, host: str, gpu: int, process: GpuProcess) -> None:
            super().__init__()
            self.host = host
            self.gpu = gpu
            self.process = process

    def __init__(self, services: Services, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", show_cursor=False)
        self.services = services
        self.host: str | None = None
        self.gpu: int | None = None
        self.as_tree = False
        self._shown: list[Row] = []
        self._targets: list[tuple[int, GpuProcess] | None] = []  # per row

    def on_mount(self) -> None:
        self._add_columns()
        self.services.bridge.subscribe(self._changed)

    def on_focus(self) -> None:
        self.show_cursor = True

    def on_blur(self) -> None:
        self.show_cursor = False

    def _add_columns(self) -> None:
        fixed = 3 + 8 + 10 + 8 + 6 + 7 + 7 + 12 + 2 * 9 + 2  # widths, padding, scrollbar
        self.add_column("GPU", width=3, key="gpu")
        self.add_column("PID", width=8, key="pid")
        self.add_column("User", width=10, key="user")
        self.add_column("GPU mem", width=8, key="mem")
        self.add_column("Command", width=max(10, self.size.width - fixed), key="cmd")
        self.add_column("CPU", width=6, key="cpu")
        self.add_column("RSS", width=7, key="rss")
        self.add_column("Time", width=7, key="time")
        self.add_column("Container", width=12, key="ctr")

    def on_resize(self) -> None:
        self.clear(columns=True)
        self._add_columns()
        self._shown = []
        self.refresh_rows()

    def on_unmount(self) -> None:
        self.services.bridge.unsubscribe(self._changed)

    def show(self, host: str | None, gpu: int | None) -> None:
        self.host, self.gpu = host, gpu
        self.refresh_rows()

    def _changed(self) -> None:
        if self.host is not None and self.screen.is_current:
            self.refresh_rows()

    def _process_cells(self, gpu: int, p: GpuProcess, command: Text) -> tuple[Text, ...]:
        info = p.info
        cpu = info.cpu_percent if info is not None else None
        rss = info.rss_mib if info is not None else None
        age = info.age_s if info is not None else None
        return (
            Text(str(gpu)), Text(str(p.pid)), render.safe(p.user, "cyan", 10),
            Text(render.gib(p.memory_mib) if p.memory_mib is not None else "?"),
            command,
            Text(f"{cpu:.0f}%" if cpu is not None else "", style="dim" if cpu is None else ""),
            Text(render.gib(rss) if rss is not None else ""),
            Text(compact(age) if age is not None else ""),
            render.safe(container_text(p), "magenta", 12),
        )

    def refresh_rows(self) -> None:
        sample = self.services.fleet.latest.get(self.host) if self.host else None
        procs: list[tuple[int, GpuProcess]] = []
        if sample is not None:
            for sample_gpu in sample.gpus:
                if self.gpu is not None and sample_gpu.index != self.gpu:
                    continue
                for p in sorted(sample_gpu.processes, key=lambda p: -(p.memory_mib or 0)):
                    procs.append((sample_gpu.index, p))
        hint = self._empty_hint(sample.gpus == []) if not procs and sample is not None else ""
        rows: list[Row] = [(self.as_tree, g, p) for g, p in procs] or [(hint, self.host)]
        if rows == self._shown:
            return
        self._shown = rows
        keep = self.cursor_row
        self.clear()
        self._targets = []
        if self.as_tree:
            for depth, pid, name, target in tree_rows(procs):
                indent = "\u00a0\u00a0" * (depth - 1) + "└ " if depth else ""  # nbsp: kept
                if target is None:
                    blank = [Text("") for _ in range(9)]
                    blank[1] = Text(str(pid), style="dim")
                    blank[4] = Text(indent + render.clean(name), style="dim")
                    self.add_row(*blank)
                else:
                    index, p = target
                    command = Text(indent, style="dim")
                    command.append_text(render.safe(p.command))
                    self.add_row(*self._process_cells(index, p, command))
                self._targets.append(target)
        else:
            for index, p in procs:
                self.add_row(*self._process_cells(index, p, render.safe(p.command)))
                self._targets.append((index, p))
        if hint:
            cells = [Text("") for _ in range(9)]
            cells[4] = Text(hint, style="dim italic")
            self.add_row(*cells)
            self._targets.append(None)
        if any(self._targets):
            self.move_cursor(row=min(max(0, keep), len(self._targets) - 1), animate=False)
        where = self.host or ""
        if self.gpu is not None:
            where += f" GPU {self.gpu}"
        title = f"Processes · {render.clean(where)}" if where else "Processes"
        self.border_title = title + (" · tree" if self.as_tree else "")
        if not procs and sample is not None:
            self.border_subtitle = "none running"
        else:
            self.border_subtitle = ""

    def _empty_hint(self, no_gpu: bool) -> str:
        """What an empty list means: no GPU here (and why), or nothing running."""
        status = self.services.fleet.statuses.get(self.host or "")
        if no_gpu:
            reason = render.no_gpu_reason(status) or "no GPU reported"
            return render.clean(f"This host has no GPU to list processes of: {reason}")
        sample = self.services.fleet.latest.get(self.host or "")
        if sample is not None and not sample.processes_known:
            return "This host does not report GPU processes (DCGM)."
        where = f"GPU {self.gpu}" if self.gpu is not None else "any GPU of this host"
        return f"No process is using {where}."

    def selected_process(self) -> tuple[int, GpuProcess] | None:
        row = self.cursor_row
        if 0 <= row < len(self._targets):
            return self._targets[row]
        return None

    def action_tree(self) -> None:
        self.as_tree = not self.as_tree
        self._shown = []
        self.refresh_rows()

    def action_signal(self) -> None:
        target = self.selected_process()
        if self.host is None or target is None:
            self.notify("Select a process first.", severity="warning")
            return
        self.post_message(self.SignalAsked(self.host, target[0], target[1]))
