"""Screen 6: Slurm jobs of every configured cluster, live.

``enter`` shows ``scontrol show job``; ``o`` follows the job's stdout in the log
viewer (the tail agent, over the login node's connection); ``c`` cancels after
asking, ``h`` / ``r`` hold and release. Only the user's own jobs can be acted on.
"""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Input, Static

from nomadlab.core.jobs.model import Job
from nomadlab.remote.slurm import SlurmError
from nomadlab.ui import render
from nomadlab.ui.confirm import ConfirmScreen
from nomadlab.ui.footer import Footer
from nomadlab.ui.jobs.dialogs import JobDetail, JobGpus
from nomadlab.ui.jobs.table import JobsTable, partitions_text
from nomadlab.ui.navigate import navigator
from nomadlab.ui.services import Services
from nomadlab.ui.statusbar import StatusBar

NO_CLUSTERS = ("No Slurm cluster is configured: add a [[clusters]] table with the login "
               "node's host (README, \"Clusters\"), and its jobs show here.")


class JobsScreen(Screen[None]):
    TITLE = "Jobs"
    BINDINGS = [
        Binding("enter", "detail", "Detail"),
        Binding("o", "follow", "Follow stdout"),
        Binding("g", "gpus", "Job GPUs"),
        Binding("c", "cancel", "Cancel"),
        Binding("h", "hold", "Hold"),
        Binding("r", "release", "Release"),
        Binding("s", "cycle_sort", "Sort"),
        Binding("slash", "filter", "Filter"),
        Binding("space", "fold", "Fold cluster", show=False),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services
        self._parts: str | None = None

    def compose(self) -> ComposeResult:
        yield StatusBar(self.services, "Jobs")
        yield Input(placeholder="filter: id, name, state, partition, node",
                    id="filter", classes="hidden")
        yield Static("", id="partitions", markup=False)
        yield JobsTable(id="jobs-table")
        yield Footer()

    @property
    def table(self) -> JobsTable:
        return self.query_one(JobsTable)

    def on_mount(self) -> None:
        jobs = self.services.jobs
        if jobs is not None:
            jobs.subscribe(self._poke)
        self.set_interval(1.0, self.refresh_rows)
        self.refresh_rows()
        self.table.focus()

    def on_unmount(self) -> None:
        if self.services.jobs is not None:
            self.services.jobs.unsubscribe(self._poke)

    def _poke(self) -> None:
        self.call_after_refresh(self.refresh_rows)

    def refresh_rows(self) -> None:
        jobs = self.services.jobs
        table = self.table
        if jobs is None or not jobs.snapshots:
            table.border_title = "No [[clusters]] configured"
            if self._parts != NO_CLUSTERS:
                self._parts = NO_CLUSTERS
                self.query_one("#partitions", Static).update(NO_CLUSTERS)
            return
        snapshots = list(jobs.snapshots.values())
        table.show(snapshots, self.services.clock.time(), jobs.version)
        # Widgets are only touched when their text changed: a Static's update lays the
        # screen out again, which costs ~0.2 s with 2,000 rows in the table.
        parts = partitions_text(snapshots)
        if parts.plain != self._parts:
            self._parts = parts.plain
            self.query_one("#partitions", Static).update(parts)
        bits = [f"sort: {table.sort_key}"]
        if table.query_text:
            bits.append(f"filter: {render.clean(table.query_text, 30)}")
        subtitle = " · ".join(bits)
        if table.border_subtitle != subtitle:
            table.border_title = "Slurm jobs"
            table.border_subtitle = subtitle

    # ------------------------------------------------------------------ view keys

    def action_cycle_sort(self) -> None:
        self.table.cycle_sort()
        self.refresh_rows()

    def action_fold(self) -> None:
        self.table.toggle_fold()
        self.refresh_rows()

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.remove_class("hidden")
        box.focus()

    def on_input_changed(self, event: Input.Changed) -> None:
        self.table.query_text = event.value
        self.refresh_rows()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.table.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value = ""
        box.add_class("hidden")
        self.table.query_text = ""
        self.refresh_rows()
        self.table.focus()

    # ------------------------------------------------------------------ actions

    def _mine(self, verb: str) -> Job | None:
        job = self.table.selected_job()
        if job is None:
            self.notify("Select a job first.", severity="warning")
            return None
        jobs = self.services.jobs
        if jobs is None or not jobs.is_mine(job):
            self.notify(f"Cannot {verb} {render.clean(job.key, 60)}: it belongs to "
                        f"{render.clean(job.user, 40)}, not to you.", severity="error")
            return None
        return job

    def action_detail(self) -> None:
        job = self.table.selected_job()
        if job is not None:
            self._detail(job)

    @work(exclusive=True, group="jobs-detail")
    async def _detail(self, job: Job) -> None:
        assert self.services.jobs is not None
        try:
            text = await self.services.jobs.detail(job)
        except SlurmError as exc:
            self.notify(render.clean(str(exc), 200), severity="error")
            return
        await self.app.push_screen(JobDetail(f"{job.key} {render.clean(job.name, 60)}", text))

    def action_cancel(self) -> None:
        job = self._mine("cancel")
        if job is None:
            return
        body = Text(f"Cancel Slurm job {job.key} ({render.clean(job.name, 60)}), "
                    f"{job.state.lower()}?")

        def answered(yes: bool | None) -> None:
            if yes:
                self._act("cancel", job)

        self.app.push_screen(ConfirmScreen("Cancel job", body, yes="Cancel it"), answered)

    def action_hold(self) -> None:
        job = self._mine("hold")
        if job is not None:
            self._act("hold", job)

    def action_release(self) -> None:
        job = self._mine("release")
        if job is not None:
            self._act("release", job)

    @work(group="jobs-act")
    async def _act(self, action: str, job: Job) -> None:
        assert self.services.jobs is not None
        try:
            message = await self.services.jobs.act(action, job)
        except SlurmError as exc:
            self.notify(render.clean(str(exc), 200), severity="error")
            return
        self.notify(render.clean(message, 200))

    def action_gpus(self) -> None:
        job = self._mine("watch the GPUs of")
        if job is None:
            return
        if job.state != "RUNNING":
            self.notify(f"{render.clean(job.key, 60)} is not running.", severity="warning")
            return
        assert self.services.jobs is not None
        self.app.push_screen(JobGpus(self.services.jobs, job))

    def action_follow(self) -> None:
        job = self.table.selected_job()
        if job is not None:
            self._follow(job)

    @work(exclusive=True, group="jobs-follow")
    async def _follow(self, job: Job) -> None:
        jobs = self.services.jobs
        logs = self.services.logs
        assert jobs is not None
        host = jobs.login_host(job.cluster)
        try:
            path = await jobs.output_path(job) or job.stdout
        except SlurmError:
            path = job.stdout
        if logs is None or host is None or not path:
            self.notify(f"No stdout path known for {render.clean(job.key, 60)}.",
                        severity="warning")
            return
        try:
            name = logs.open_adhoc(host, path)
        except (KeyError, ValueError) as exc:
            self.notify(render.clean(f"Cannot follow {path}: {exc} (the login node must be a "
                                     "[[hosts]] entry)", 200), severity="error")
            return
        nav = navigator(self.app)
        if nav is not None:
            await nav.open_log(name)
