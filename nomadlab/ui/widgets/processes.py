"""The processes of the selected GPU (or of every GPU of the selected host)."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from nomadlab.ui import render
from nomadlab.ui.services import Services


class ProcessTable(DataTable[Text]):
    def __init__(self, services: Services, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", show_cursor=False)
        self.services = services
        self.host: str | None = None
        self.gpu: int | None = None
        self._shown: list[tuple[object, ...]] = []

    def on_mount(self) -> None:
        self._add_columns()
        self.services.bridge.subscribe(self._changed)

    def _add_columns(self) -> None:
        fixed = 3 + 8 + 10 + 8 + 2 * 5 + 2  # widths, padding, scrollbar
        self.add_column("GPU", width=3, key="gpu")
        self.add_column("PID", width=8, key="pid")
        self.add_column("User", width=10, key="user")
        self.add_column("GPU mem", width=8, key="mem")
        self.add_column("Command", width=max(10, self.size.width - fixed), key="cmd")

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

    def refresh_rows(self) -> None:
        sample = self.services.fleet.latest.get(self.host) if self.host else None
        rows: list[tuple[object, ...]] = []
        if sample is not None:
            for gpu in sample.gpus:
                if self.gpu is not None and gpu.index != self.gpu:
                    continue
                for p in sorted(gpu.processes, key=lambda p: -(p.memory_mib or 0)):
                    rows.append((gpu.index, p.pid, p.user, p.memory_mib, p.command))
        if rows == self._shown:
            return
        self._shown = rows
        self.clear()
        for index, pid, user, mem, command in rows:
            self.add_row(
                Text(str(index)), Text(str(pid)), render.safe(str(user), "cyan", 10),
                Text(render.gib(mem) if isinstance(mem, int | float) else "?"),
                render.safe(str(command)),
            )
        where = self.host or ""
        if self.gpu is not None:
            where += f" GPU {self.gpu}"
        self.border_title = f"Processes · {render.clean(where)}" if where else "Processes"
        if not rows and sample is not None:
            self.border_subtitle = "none running"
        else:
            self.border_subtitle = ""
