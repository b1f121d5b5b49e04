"""The focus pane of the workspace: countdown, purpose, today's focus against plan.

Its text pieces are in text.py, shared with the focus screens. Everything is
computed from the store and the clock on each repaint (once a second): nothing
counts down in memory.
"""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Static

from nomadlab.core.focus import FocusError, minute_text
from nomadlab.ui.focus.text import (
    block_text,
    countdown_text,
    focus_of,
    interruption_clock,
    lead,
    next_block,
    purpose_text,
    total_text,
)
from nomadlab.ui.services import Services


class FocusPane(Vertical):
    """Countdown, purpose, today's total against plan and the next planned block."""

    can_focus = True
    DEFAULT_CSS = """
    FocusPane { height: 1fr; padding: 0 1; }
    FocusPane > Static { height: auto; }
    FocusPane > #fp-timer { margin-bottom: 1; }
    """
    BINDINGS = [
        Binding("i", "interrupt", "Interruption"),
        Binding("p", "pause", "Pause/resume"),
    ]

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services
        self._last: tuple[str, ...] = ()

    def compose(self) -> ComposeResult:
        yield Static("", id="fp-timer", markup=False)
        yield Static("", id="fp-purpose", markup=False)
        yield Static("", id="fp-today", markup=False)
        yield Static("", id="fp-next", markup=False)

    def on_mount(self) -> None:
        self.set_interval(1.0, self.refresh_view)
        self.refresh_view()

    def refresh_view(self) -> None:
        if not self.screen.is_current or self.services.focus is None:
            return
        service = focus_of(self.services)
        now = self.services.clock.time()
        session = service.current(now)
        day = service.today(now)
        blocks = service.blocks(day)
        local = service.days.local(now)
        minute = local.hour * 60 + local.minute
        if minute < service.days.starts:
            minute += 24 * 60
        upcoming = next_block(blocks, minute)
        pieces = (
            countdown_text(session, now),
            purpose_text(session),
            total_text(service.day_focus(day, now), service.plan_seconds(day, blocks)),
            (lead("now " if upcoming.start <= minute else "next ", "dim")
             + block_text(upcoming)) if upcoming is not None
            else Text(f"nothing planned after {minute_text(minute)}", style="dim"),
        )
        key = tuple(p.plain for p in pieces)
        if key == self._last:
            return
        self._last = key
        for widget_id, piece in zip(("fp-timer", "fp-purpose", "fp-today", "fp-next"), pieces,
                                    strict=True):
            self.query_one(f"#{widget_id}", Static).update(piece)

    def action_interrupt(self) -> None:
        try:
            interruption = focus_of(self.services).interrupt()
        except FocusError as exc:
            self.notify(str(exc), severity="warning", timeout=3)
            return
        self.notify(f"Interruption logged at {interruption_clock(self.services, interruption.time)}"
                    "; the timer goes on.", timeout=3)
        self._last = ()
        self.refresh_view()

    def action_pause(self) -> None:
        try:
            session = focus_of(self.services).toggle_pause()
        except FocusError as exc:
            self.notify(str(exc), severity="warning", timeout=3)
            return
        self.notify(f"{session.preset}: {session.state}", timeout=2)
        self._last = ()
        self.refresh_view()
