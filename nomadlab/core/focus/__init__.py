"""Focus: deep-work timers, the daily plan and the weekly retro (no Textual here).

A session is stored as wall-clock facts: when it started, its planned length, the
minutes added since, each pause with its own start and end, and when it ended. What
is left is *computed* from those and the clock, never counted down in memory, so a
timer survives quitting nomadlab, a second TUI, the CLI and a laptop that slept.

Only one session is open (running or paused) at a time, in every process: starting
one happens inside ``BEGIN IMMEDIATE`` after a check, and a partial unique index on
open sessions refuses a second one even if that check were skipped.

A running session whose time is up is *completed* by whoever looks next (the TUI's
tick, ``nomadlab focus status``, another start), with ``ended`` set to the moment the
time ran out, not the moment someone noticed. The end notice (bell, desktop
notification, webhooks: an :class:`~nomadlab.core.alerts.Alert` with rule "focus")
is sent once, by the first TUI that claims it in the store.

Days follow the user's wall clock: a focus day starts at ``[focus] day_starts``
(04:00: a session at 01:00 belongs to the previous day) in a time zone that can be
injected (``zoneinfo``), so daylight-saving changes are handled by the calendar, and
durations, being differences of epoch seconds, are never off by an hour.

The parts: ``model`` (sessions, blocks, retros, their texts), ``days`` (the calendar),
``records`` (reading the store), ``timer`` (the open session and its notices),
``service`` (plans, notes, retros; :class:`FocusService`) and ``report`` (the day and
week summaries: import it from ``nomadlab.core.focus.report``, it is not loaded here so
that ``nomadlab focus status --short`` stays quick). Public names are re-exported here.
"""

from __future__ import annotations

from nomadlab.core.durations import countdown as format_clock
from nomadlab.core.durations import total as format_hours
from nomadlab.core.focus.days import (
    Days,
)
from nomadlab.core.focus.model import (
    ENDED_STATES,
    FOCUS_RULE,
    KIND_LABELS,
    MAX_MINUTES,
    NOTE_LIMIT,
    NOTICE_WINDOW,
    OPEN_STATES,
    PURPOSE_LIMIT,
    RETRO_PROMPTS,
    STEP_MINUTES,
    AlertOutlet,
    AlreadyRunning,
    Block,
    FocusError,
    HeldAlerts,
    Interruption,
    NoSession,
    Pause,
    Purpose,
    Retro,
    Session,
    minute_text,
    parse_clock_time,
)
from nomadlab.core.focus.service import (
    FocusService,
    make_service,
)

__all__ = [
    "ENDED_STATES",
    "FOCUS_RULE",
    "KIND_LABELS",
    "MAX_MINUTES",
    "NOTE_LIMIT",
    "NOTICE_WINDOW",
    "OPEN_STATES",
    "PURPOSE_LIMIT",
    "RETRO_PROMPTS",
    "STEP_MINUTES",
    "AlertOutlet",
    "AlreadyRunning",
    "Block",
    "Days",
    "FocusError",
    "FocusService",
    "HeldAlerts",
    "Interruption",
    "NoSession",
    "Pause",
    "Purpose",
    "Retro",
    "Session",
    "format_clock",
    "format_hours",
    "make_service",
    "minute_text",
    "parse_clock_time",
]
