"""The jobs pane of the workspace: the user's jobs, running and pending first."""

from __future__ import annotations

from nomadlab.ui.jobs.table import JobsTable
from nomadlab.ui.services import Services


class JobsPane(JobsTable):
    def __init__(self, services: Services, *, id: str | None = None) -> None:
        super().__init__(compact=True, id=id)
        self.services = services

    def on_mount(self) -> None:  # JobsTable.on_mount (columns) runs too: Textual walks the MRO
        self.show_header = False
        if self.services.jobs is not None:
            self.services.jobs.subscribe(self._poke)
        self.set_interval(1.0, self.refresh_rows)
        self.refresh_rows()

    def on_unmount(self) -> None:
        if self.services.jobs is not None:
            self.services.jobs.unsubscribe(self._poke)

    def _poke(self) -> None:
        self.call_after_refresh(self.refresh_rows)

    def refresh_rows(self) -> None:
        jobs = self.services.jobs
        if jobs is not None:
            self.show(list(jobs.snapshots.values()), self.services.clock.time(), jobs.version)
