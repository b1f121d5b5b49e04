"""The top line of every screen: where you are, the fleet at a glance, the time."""

from __future__ import annotations

import time

from rich.text import Text
from textual.widgets import Static

from nomadlab.core.model import HostState
from nomadlab.ui.services import Services


class StatusBar(Static):
    DEFAULT_CSS = """
    StatusBar {
        height: 1;
        background: $panel;
        color: $text;
        padding: 0 1;
    }
    """

    def __init__(self, services: Services, title: str) -> None:
        super().__init__("", markup=False)
        self.services = services
        self.title = title
        self._pending = False
        self._last = ""

    def on_resize(self) -> None:
        self._last = ""  # the width changed: lay the line out again
        self.update_text()

    def on_mount(self) -> None:
        self.services.bridge.subscribe(self._poke)
        self.set_interval(1.0, self.update_text)
        self.update_text()

    def on_unmount(self) -> None:
        self.services.bridge.unsubscribe(self._poke)

    def _poke(self) -> None:
        if not self._pending:
            self._pending = True
            self.set_timer(0.25, self.update_text)

    _summary: tuple[tuple[int, int], Text] | None = None  # (fleet version, text)

    def summary(self) -> Text:
        # Counting every GPU is not free at thousands of GPUs: once per fleet change.
        version = (self.services.bridge.version, len(self.services.fleet.statuses))
        cached = self._summary
        if cached is not None and cached[0] == version:
            return cached[1].copy()
        text = self._summary_text()
        self._summary = (version, text.copy())
        return text

    def _summary_text(self) -> Text:
        fleet = self.services.fleet
        statuses = fleet.statuses
        live = sum(1 for s in statuses.values() if s.state is HostState.LIVE)
        needs_you = sum(1 for s in statuses.values() if s.state.waits_for_user)
        th = self.services.config.fleet.thresholds
        gpus = busy = 0
        for name, sample in fleet.latest.items():
            if statuses.get(name) is None:
                continue
            for gpu in sample.gpus:
                gpus += 1
                if not gpu.is_free(th.free_utilization, th.free_memory_mib):
                    busy += 1
        text = Text()
        if not statuses:
            text.append("no hosts", style="dim")
            return text
        text.append(f"{live}/{len(statuses)} hosts live", style="green" if live == len(statuses)
                    else "yellow")
        if gpus:
            text.append(f" · {busy}/{gpus} GPUs busy · {gpus - busy} free")
        if needs_you:
            verb = "needs" if needs_you == 1 else "need"
            text.append(f" · {needs_you} {verb} you", style="bold magenta")
        return text

    def update_text(self) -> None:
        self._pending = False
        if not self.screen.is_current:
            return
        now = self.services.clock.time()
        clock = time.strftime("%H:%M", time.localtime(now))
        left = Text()
        left.append("nomadlab", style="bold")
        left.append(f" · {self.title}", style="")
        focus = self.services.focus
        if focus is not None:
            # The running timer, e.g. "deep 2:41:07", next to the title: on a narrow
            # terminal the fleet summary is cut before the countdown is.
            extra = focus.status_text(now)
            if extra:
                left.append("  ")
                left.append(extra, style="bold magenta")
        right = self.summary()
        right.append(f"  {clock}", style="bold")
        width = max(0, self.size.width - 2)
        gap = max(1, width - left.cell_len - right.cell_len)
        line = left + Text(" " * gap) + right
        if line.plain != self._last:
            self._last = line.plain
            self.update(line)
