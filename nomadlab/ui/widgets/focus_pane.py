"""The focus pane of the workspace: countdown, purpose, today's focus against plan.

Also the small text pieces the focus screens share. Everything is computed from the
store and the clock on each repaint (once a second): nothing counts down in memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Static

from nomadlab.core.durations import countdown, total
from nomadlab.core.focus import (
    Block,
    FocusError,
    Session,
    minute_text,
)
from nomadlab.ui import render
from nomadlab.ui.services import Services

if TYPE_CHECKING:
    from nomadlab.core.focus import FocusService

KIND_STYLE = {"deep": "bold magenta", "sprint": "bold cyan", "pomodoro": "bold red",
              "light": "bold green"}


def focus_of(services: Services) -> FocusService:
    """The focus service, linked to the board and papers when they exist."""
    service = services.focus
    if service is None:  # the registry makes it (nomadlab/features.py): a wiring bug
        raise RuntimeError("the focus service was not made")
    service.link(board=services.board, papers=services.papers)
    return service


def lead(text: str, style: str) -> Text:
    """A Text that starts with ``text`` in ``style`` (what is appended keeps its own)."""
    out = Text()
    out.append(text, style=style)
    return out


def countdown_text(session: Session | None, now: float) -> Text:
    """'deep 2:41:07 · 2 interruptions', or a hint when no session is open."""
    if session is None:
        return Text("no session · 5, then s, starts one", style="dim italic")
    text = Text()
    text.append(session.preset, style=KIND_STYLE.get(session.kind, "bold"))
    text.append(" ")
    text.append(countdown(session.remaining(now)),
                style="bold" if session.state == "running" else "bold yellow")
    if session.state == "paused":
        text.append(" paused", style="yellow")
    if session.interruptions:
        count = len(session.interruptions)
        text.append(f" · {count} interruption{'s' if count != 1 else ''}", style="dim")
    return text


def purpose_text(session: Session | None) -> Text:
    if session is None or not session.purpose:
        return Text("")
    text = lead("for ", "dim")
    text.append_text(render.safe(session.purpose, "bold"))
    return text


def total_text(focus: float, plan: float, width: int = 12) -> Text:
    """'today 2h10m / 5h00m ████▌·······'"""
    text = lead("today ", "dim")
    text.append(total(focus), style="bold")
    text.append(f" / {total(plan)} ")
    fraction = focus / plan if plan else None
    style = "green" if fraction is not None and fraction >= 1 else "cyan"
    text.append_text(render.bar(fraction, width, style))
    return text


def block_text(block: Block) -> Text:
    text = Text(block.label, style="bold")
    text.append(" ")
    text.append(block.kind, style=KIND_STYLE.get(block.kind, ""))
    if block.purpose:
        text.append(" · ")
        text.append_text(render.safe(block.purpose))
    return text


def next_block(blocks: list[Block], minute: int) -> Block | None:
    """The block under way at ``minute`` of the day, or the next one."""
    for block in blocks:
        if block.end > minute:
            return block
    return None


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


def interruption_clock(services: Services, t: float) -> str:
    return focus_of(services).days.clock_text(t)
