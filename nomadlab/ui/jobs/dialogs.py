"""The jobs screen's dialogs: a job's ``scontrol show job`` and its GPUs, live."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Label, Static

from nomadlab.core.jobs.model import Job
from nomadlab.core.model import AgentInfo, HostSample
from nomadlab.remote.slurm import SlurmError
from nomadlab.ui import render

if TYPE_CHECKING:
    from nomadlab.remote.jobs_service import JobsService


DETAIL_LIMIT = 20_000  # characters of scontrol output shown


class JobDetail(ModalScreen[None]):
    """``scontrol show job`` as plain text (untrusted: no markup, no escapes)."""

    BINDINGS = [Binding("escape,q,enter", "close", "Close")]

    def __init__(self, title: str, body: str) -> None:
        super().__init__()
        self.title_text = title
        self.body = body

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Label(Text(self.title_text, style="bold"), classes="title")
            lines = [render.clean(line) for line in self.body[:DETAIL_LIMIT].splitlines()]
            with VerticalScroll():
                yield Static(Text("\n".join(lines)), classes="body")

    def action_close(self) -> None:
        self.dismiss(None)


class JobGpus(ModalScreen[None]):
    """The job's own GPUs, live: the fleet agent inside its allocation."""

    BINDINGS = [Binding("escape,q,g", "close", "Close")]

    def __init__(self, service: JobsService, job: Job) -> None:
        super().__init__()
        self.service = service
        self.job = job
        self.samples = 0

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Label(Text(f"GPUs of {self.job.key} {render.clean(self.job.name, 50)}",
                             style="bold"), classes="title")
            yield Static(Text("starting the agent inside the job (srun --overlap)…",
                              style="dim"), id="gpu-status")
            yield DataTable(id="gpu-table", cursor_type="none")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        for column in ("GPU", "model", "util", "memory", "temp", "power"):
            table.add_column(column, key=column)
        self._stream()

    # SessionSink
    def on_info(self, info: AgentInfo) -> None:
        self.query_one("#gpu-status", Static).update(
            Text(f"{render.clean(info.hostname, 40)}: {info.gpu_count} GPUs"))

    def on_sample(self, sample: HostSample) -> None:
        self.samples += 1
        table = self.query_one(DataTable)
        table.clear()
        for gpu in sample.gpus:
            table.add_row(Text(str(gpu.index)), render.safe(gpu.name, limit=30),
                          Text(render.percent(gpu.utilization)),
                          Text(f"{render.gib(gpu.memory_used_mib)}/"
                               f"{render.gib(gpu.memory_total_mib)}"),
                          Text(f"{gpu.temperature_c:.0f}°C" if gpu.temperature_c is not None
                               else "-"),
                          Text(f"{gpu.power_w:.0f}W" if gpu.power_w is not None else "-"))

    def on_garbage(self, total: int) -> None:
        pass

    @work(exclusive=True, group="job-gpus")
    async def _stream(self) -> None:
        try:
            why = await self.service.job_gpus(self.job, self)
        except SlurmError as exc:
            why = str(exc)
        self.query_one("#gpu-status", Static).update(
            Text(f"stream ended: {render.clean(why, 120)}", style="yellow"))

    def action_close(self) -> None:
        self.workers.cancel_group(self, "job-gpus")
        self.dismiss(None)
