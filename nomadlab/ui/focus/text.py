"""The small text pieces the focus pane and screens share: styles, countdown, totals,
blocks, and ``focus_of`` (the focus service, linked to the board and the papers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text

from nomadlab.core.durations import countdown, total
from nomadlab.core.focus import Block, Session
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


def interruption_clock(services: Services, t: float) -> str:
    return focus_of(services).days.clock_text(t)
