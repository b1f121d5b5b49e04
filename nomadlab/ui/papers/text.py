"""A paper and the week as text, for the papers screen, the weekly review and the pane.

Nothing in a paper is markup: every field goes through ``render`` into rich ``Text``.
"""

from __future__ import annotations

import time

from rich.text import Text

from nomadlab.core.durations import compact
from nomadlab.core.papers import Paper, PaperService
from nomadlab.ui import render
from nomadlab.ui.services import Services

STATUS_GLYPH = {"queued": ("·", "dim"), "reading": ("▶", "bold green"), "read": ("✓", "cyan"),
                "dropped": ("✗", "red")}


def day(t: float | None) -> str:
    return time.strftime("%a %d %b %Y", time.localtime(t)) if t else ""


def cap_dots(started: int, cap: int) -> Text:
    """●●○ for 2 of 3; past the cap the extra ones are red."""
    text = Text()
    for index in range(max(started, cap)):
        if index < min(started, cap):
            text.append("●", style="green")
        elif index < cap:
            text.append("○", style="dim")
        else:
            text.append("●", style="bold red")
    return text


def week_text(service: PaperService, now: float) -> Text:
    """'2026-W47 ●○ 1/2 started this week' (+ review due)."""
    week = service.week(now)
    started, cap = service.week_count(now)
    text = Text()
    text.append(f"{week.label} ", style="bold")
    text.append_text(cap_dots(started, cap))
    style = "bold red" if started > cap else ("yellow" if started == cap else "")
    text.append(f" {started}/{cap} started this week", style=style)
    if started > cap:
        text.append(" · past the cap", style="bold red")
    return text


def paper_detail(paper: Paper, services: Services, now: float) -> Text:
    """Everything about a paper, as text (nothing in it is parsed as markup)."""
    text = Text(no_wrap=False, overflow="fold")
    text.append(render.clean(paper.label), style="bold")
    text.append("\n")
    if paper.authors:
        text.append(render.clean(", ".join(paper.authors)) + "\n", style="italic")
    bits = [str(paper.year) if paper.year else "", paper.venue or "", paper.ident]
    line = " · ".join(render.clean(b) for b in bits if b)
    if line:
        text.append(line + "\n", style="dim")
    if paper.categories or paper.tags:
        text.append(render.clean(" ".join(paper.categories)), style="cyan")
        if paper.tags:
            text.append(" " if paper.categories else "")
            text.append(render.clean(" ".join(f"#{t}" for t in paper.tags)), style="magenta")
        text.append("\n")
    glyph, style = STATUS_GLYPH.get(paper.status, ("?", ""))
    text.append(f"{glyph} {paper.status}", style=style)
    if paper.status == "reading" and paper.started:
        text.append(f" since {day(paper.started)}")
    elif paper.status in ("read", "dropped") and paper.finished:
        text.append(f" {day(paper.finished)}")
    if paper.over_cap:
        text.append(" · started past the weekly cap", style="bold red")
    text.append(f" · priority {paper.priority:+d}" if paper.priority else " · priority 0")
    if paper.rating:
        text.append(" · " + "★" * paper.rating + "☆" * (5 - paper.rating), style="yellow")
    text.append(f" · added {day(paper.added)}\n", style="dim")
    if paper.metadata == "pending":
        text.append("metadata pending", style="bold yellow")
        if paper.metadata_error:
            text.append(": " + render.clean(paper.metadata_error, 120))
        if paper.next_attempt:
            text.append(f" (next try in {compact(paper.next_attempt - now, parts=1)})", style="dim")
        text.append("\n")
    elif paper.metadata in ("missing", "invalid"):
        text.append(render.clean(paper.metadata_error or paper.metadata, 160) + "\n",
                    style="bold red")
    if paper.takeaway:
        text.append("takeaway: ", style="bold")
        text.append(render.clean(paper.takeaway) + "\n")
    board = services.board
    for card in paper.cards:
        title = None
        if board is not None:
            try:
                title = board.card_title(card)
            except Exception:  # another feature's store: show the id rather than fail
                title = None
        text.append(f"card #{card}", style="bold")
        text.append((": " + render.clean(title, 60)) if title else "")
        text.append("\n")
    if paper.card_wanted:
        text.append("a Hypothesis card waits for the board\n", style="dim italic")
    url = paper.open_url
    if url:
        text.append(render.clean(url) + "\n", style="underline dim")
    if paper.abstract:
        text.append("\nAbstract\n", style="bold")
        text.append(_block(paper.abstract))
        text.append("\n")
    if paper.notes.strip():
        text.append("\nNotes\n", style="bold")
        text.append(_block(paper.notes))
    return text


def _block(value: str) -> str:
    """Multi-line untrusted text: control characters out, line breaks kept."""
    return "\n".join(render.clean(line) for line in value.splitlines())
