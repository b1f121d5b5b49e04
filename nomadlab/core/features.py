"""What features ask of one another, as typed contracts (core: no remote, no UI).

A feature's service runs as long as the app (:class:`FeatureService`). Focus speaks to
the board and to the paper queue only through :class:`BoardActivity` and
:class:`PaperActivity` (a title for a purpose, "#42" or "paper:7", and "what did you
do between t0 and t1" for the day summary and the week report); the board speaks to
the jobs service through :class:`JobsLookup`, the paper queue to the board through
:class:`CardMaker`. ``BoardService``, ``PaperService`` and
``JobsService`` satisfy them: mypy checks it where ``nomadlab/features.py`` wires them,
tests/test_features.py at run time.

The registry of features itself (services, screens, panes, CLI commands, store
schema) is ``nomadlab/features.py``: it names UI and remote parts, which core may not.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from nomadlab.core.jobs.model import Job


@runtime_checkable
class FeatureService(Protocol):
    """A feature's service: started after the fleet, stopped before it."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@runtime_checkable
class BoardActivity(Protocol):
    """The board, as other features see it."""

    def card_title(self, card_id: int) -> str | None: ...

    def moves_between(self, start: float, end: float) -> Sequence[Mapping[str, object]]:
        """Card moves in [start, end), oldest first: {"card", "title", "from", "to",
        "time", "auto", ...}."""
        ...

    def cards_finished_between(self, start: float, end: float) -> int: ...


@runtime_checkable
class CardMaker(Protocol):
    """The board, as the paper queue sees it: a paper becomes a Hypothesis card."""

    def add_card(self, title: str, *, column: str | None = None,
                 links: Mapping[str, str] | None = None) -> int: ...


@runtime_checkable
class PaperActivity(Protocol):
    """The paper queue, as other features see it."""

    def paper_title(self, paper_id: int) -> str | None: ...

    def activity_between(self, start: float, end: float) -> Mapping[str, object]:
        """{"started": int, "read": int, "read_titles": [str]} for [start, end)."""
        ...

    def week_count(self, now: float | None = None) -> tuple[int, int]:
        """(papers started this week, the weekly cap)."""
        ...


@runtime_checkable
class JobsLookup(Protocol):
    """The jobs service, as the board sees it (cards with a ``job=CLUSTER:ID`` link)."""

    def find(self, cluster: str, ident: str) -> Job | None: ...

    def login_host(self, cluster: str) -> str | None: ...


__all__ = ["BoardActivity", "CardMaker", "FeatureService", "JobsLookup", "PaperActivity"]
