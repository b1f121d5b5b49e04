"""Slurm jobs as a table: one header row per cluster (its state and GPUs per
partition), then its jobs; sort, filter, fold per cluster like the fleet."""

from __future__ import annotations

from rich.text import Text
from textual.coordinate import Coordinate
from textual.message import Message
from textual.widgets import DataTable

from nomadlab.core.durations import clock
from nomadlab.core.jobs.model import ClusterSnapshot, ClusterState, Job
from nomadlab.core.jobs.reasons import reason_words
from nomadlab.ui import render

MARGIN = 20  # rows above and below the visible ones kept up to date
SORT_KEYS = ("state", "id", "name", "elapsed", "gpus")
STATE_STYLES = {
    "RUNNING": "bold green", "PENDING": "yellow", "COMPLETED": "dim green",
    "COMPLETING": "green", "FAILED": "bold red", "TIMEOUT": "bold red",
    "OUT_OF_MEMORY": "bold red", "NODE_FAIL": "bold red", "BOOT_FAIL": "bold red",
    "CANCELLED": "magenta", "PREEMPTED": "magenta", "SUSPENDED": "cyan",
}
CLUSTER_STYLES = {ClusterState.LIVE: "green", ClusterState.STALE: "yellow",
                  ClusterState.DOWN: "red", ClusterState.CONNECTING: "dim"}
_ORDER = {"RUNNING": 0, "COMPLETING": 1, "PENDING": 2, "SUSPENDED": 3}


def cluster_key(name: str) -> str:
    return f"c\x00{name}"


def job_key(job: Job) -> str:
    return f"j\x00{job.cluster}\x00{job.id}"


def elapsed_cell(job: Job, now: float, width: int = 8) -> Text:
    elapsed = job.elapsed_s(now)
    limit = job.time_limit_s
    text = Text()
    if elapsed is not None and limit:
        fraction = min(1.0, elapsed / limit)
        style = "red" if fraction > 0.9 else "yellow" if fraction > 0.75 else "cyan"
        text.append_text(render.bar(fraction, width, style))
        text.append(" ")
    text.append(clock(elapsed))
    text.append(f"/{clock(limit) if limit else '∞'}", style="dim")
    return text


def state_cell(job: Job) -> Text:
    text = Text(job.state, style=STATE_STYLES.get(job.state, ""))
    if job.state == "FAILED" and job.exit_code is not None:
        text.append(f" exit {job.exit_code}", style="red")
    if job.signal:
        text.append(f" sig {job.signal}", style="red")
    return text


def partitions_text(snapshots: list[ClusterSnapshot]) -> Text:
    """GPUs idle / allocated / total per partition: where the next job starts soonest."""
    text = Text()
    for snap in snapshots:
        if not snap.partitions:
            continue
        if text:
            text.append(" │ ", style="dim")
        text.append(render.clean(snap.name, 24), style="bold")
        for part in snap.partitions:
            text.append(f" · {render.clean(part.name, 20)} ", style="dim")
            text.append(f"{part.gpus_idle} idle", style="green" if part.gpus_idle else "dim")
            text.append(f"/{part.gpus_alloc} alloc/{part.gpus_total} GPUs", style="dim")
    return text


def cluster_cells(snap: ClusterSnapshot, folded: bool, shown: int, width: int) -> list[Text]:
    """The cluster's header row: name, job count, state, and why it is not live (in the
    reason column)."""
    name = Text("▸ " if folded else "▾ ", style="dim")
    name.append(render.clean(snap.name, 24), style="bold")
    state = Text(str(snap.state), style=CLUSTER_STYLES.get(snap.state, ""))
    count = Text(f"{shown} job{'s' if shown != 1 else ''}", style="dim")
    cells = [name, count, state] + [Text("")] * max(0, width - 3)
    if snap.error and width > 3:
        cells[3] = Text(render.clean(snap.error, 60), style="red")
    return cells[:width]


def matches(job: Job, query: str) -> bool:
    if not query:
        return True
    q = query.lower()
    return any(q in (field or "").lower() for field in (
        job.id, job.name, job.user, job.state, job.reason, job.partition, job.nodes,
        job.cluster))


def sort_jobs(jobs: list[Job], key: str, now: float) -> list[Job]:
    if key == "id":
        return sorted(jobs, key=lambda j: (j.job_id, j.id))
    if key == "name":
        return sorted(jobs, key=lambda j: (j.name.lower(), j.job_id))
    if key == "elapsed":
        return sorted(jobs, key=lambda j: -(j.elapsed_s(now) or 0))
    if key == "gpus":
        return sorted(jobs, key=lambda j: (-(j.gpus or 0), j.job_id))
    return sorted(jobs, key=lambda j: (_ORDER.get(j.state, 9), j.job_id, j.id))


class JobsTable(DataTable[Text]):
    """Rows keyed by cluster and job id, rebuilt only when a snapshot changed."""

    class Selected(Message):
        def __init__(self, job: Job | None) -> None:
            super().__init__()
            self.job = job

    COLUMNS = ("job", "name", "state", "reason", "elapsed / limit", "partition", "nodes",
               "gpus", "stdout")

    COMPACT = (0, 1, 2, 4)  # the pane: job, name, state, elapsed / limit

    def _picks(self) -> tuple[int, ...]:
        return self.COMPACT if self.compact else tuple(range(len(self.COLUMNS)))

    def _columns(self) -> list[str]:
        return [self.COLUMNS[i] for i in self._picks()]

    def __init__(self, *, compact: bool = False, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self.compact = compact
        self.sort_key = "state"
        self.query_text = ""
        self.folded: set[str] = set()
        self.jobs_by_key: dict[str, Job] = {}
        self._signature: tuple[object, ...] = ()
        self._keys: list[str] = []
        self._shown: dict[str, tuple[str, ...]] = {}  # the plain text shown per row

    def on_mount(self) -> None:
        self._ensure_columns()

    def _ensure_columns(self) -> None:
        if not self.columns:
            for column in self._columns():
                self.add_column(column, key=column)

    def show(self, snapshots: list[ClusterSnapshot], now: float, version: int) -> None:
        """Show the snapshots. When the rows are the same jobs in the same order (most
        polls, and the elapsed clock ticking) only the cells that changed are updated,
        in place: a queue of 2,000 jobs is not rebuilt every refresh."""
        self._ensure_columns()
        signature = (version, len(self.columns), self.sort_key, self.query_text,
                     frozenset(self.folded), int(now) // 5)
        if signature == self._signature:
            return
        self._signature = signature
        width = len(self.columns)
        # (key, the job or the cluster's header cells): cells of jobs are made only for
        # the rows that are painted or changed, not for the whole queue every tick.
        rows: list[tuple[str, Job | list[Text]]] = []
        jobs_by_key: dict[str, Job] = {}
        for snap in snapshots:
            jobs = [j for j in snap.jobs if matches(j, self.query_text)]
            folded = snap.name in self.folded
            rows.append((cluster_key(snap.name), cluster_cells(snap, folded, len(jobs), width)))
            if folded:
                continue
            for job in sort_jobs(jobs, self.sort_key, now):
                key = job_key(job)
                jobs_by_key[key] = job
                rows.append((key, job))
        self.jobs_by_key = jobs_by_key
        keys = [key for key, _ in rows]

        def cells_of(item: Job | list[Text]) -> list[Text]:
            if isinstance(item, list):
                return item
            cells = self._cells(item, now)
            if self.compact:  # a pane is narrow: short names
                cells[1] = Text(render.clean(item.name, 18))
            return [cells[i] for i in self._picks()]

        if keys == self._keys and self.row_count == len(keys):
            # Only rows on screen (and a margin) are touched: the elapsed clocks of
            # 2,000 jobs change every tick; off-screen rows catch up once scrolled to.
            top = max(0, int(self.scroll_offset.y) - MARGIN)
            bottom = int(self.scroll_offset.y) + self.size.height + MARGIN
            columns = list(self.columns)
            for key, item in rows[top:bottom]:
                cells = cells_of(item)
                before = self._shown.get(key)
                plain = tuple(cell.plain for cell in cells)
                if before == plain:
                    continue
                self._shown[key] = plain
                for index, cell in enumerate(cells):
                    if before is None or before[index] != plain[index]:
                        self.update_cell(key, columns[index], cell)
            return
        selected = self.selected_key()
        self.clear()
        self._keys = keys
        self._shown = {}
        for key, item in rows:
            cells = cells_of(item)
            self._shown[key] = tuple(cell.plain for cell in cells)
            self.add_row(*cells, key=key)
        if selected is not None and selected in self.rows:
            self.move_cursor(row=self.get_row_index(selected))

    def _cells(self, job: Job, now: float) -> list[Text]:
        reason = reason_words(job.reason) if job.pending else ""
        return [
            Text(render.clean(job.id, 30)),
            Text(render.clean(job.name, 40)),
            state_cell(job),
            Text(render.clean(reason, 52), style="yellow"),
            elapsed_cell(job, now),
            Text(render.clean(job.partition or "-", 20)),
            Text(render.clean(job.nodes or "-", 30)),
            Text(str(job.gpus) if job.gpus is not None else "-"),
            Text(render.clean(job.stdout or "-", 60), style="dim"),
        ]

    def selected_key(self) -> str | None:
        if not self.rows or self.cursor_row < 0 or self.cursor_row >= len(self.rows):
            return None
        key = self.coordinate_to_cell_key(Coordinate(self.cursor_row, 0)).row_key.value
        return str(key) if key is not None else None

    def selected_job(self) -> Job | None:
        key = self.selected_key()
        return self.jobs_by_key.get(key) if key is not None else None

    def selected_cluster(self) -> str | None:
        key = self.selected_key()
        if key is None:
            return None
        return key.split("\x00")[1]

    def cycle_sort(self) -> None:
        self.sort_key = SORT_KEYS[(SORT_KEYS.index(self.sort_key) + 1) % len(SORT_KEYS)]

    def toggle_fold(self) -> None:
        cluster = self.selected_cluster()
        if cluster is not None:
            self.folded ^= {cluster}
