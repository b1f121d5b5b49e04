"""``nomadlab focus ...``, ``nomadlab today`` and ``nomadlab report week``.

The timer lives in the store, so these work next to an open TUI (or two): starting a
session while one is open ends with status 1 and names the open one.

``NOMADLAB_NOW`` (epoch seconds), when set, is the CLI's "now" (cli/common.py cli_clock,
for every command): for tests and for scripts that replay a day. It is not a user
setting and is not in ``--help``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from nomadlab.cli.common import (
    UserError,
    add_config_option,
    error,
    print_json,
    warn,
    with_service,
)
from nomadlab.core.clock import Clock
from nomadlab.core.config import FOCUS_KINDS, Config
from nomadlab.core.durations import countdown, total
from nomadlab.core.focus import (
    RETRO_PROMPTS,
    AlreadyRunning,
    Days,
    FocusError,
    FocusService,
    Session,
    make_service,
    minute_text,
)
from nomadlab.core.store import Store

if TYPE_CHECKING:
    from nomadlab.core.board import BoardService
    from nomadlab.core.papers import PaperService

T = TypeVar("T")
_command = with_service(make_service, FocusError)  # a command given the focus service


def _link_peers(service: FocusService) -> None:
    """The board and papers, for what a session or a block is for (``--for 42``)."""
    board, papers = _peers(service.config, service.store, service.clock)
    service.link(board=board, papers=papers)


def _peers(config: Config, store: Store,
           clock: Clock) -> tuple[BoardService | None, PaperService | None]:
    """The board and paper services, made by the feature registry as the TUI makes
    them. One that cannot be made is left out, with a warning: the timer and the
    reports work without it."""
    from nomadlab.features import BOARD_SERVICE, PAPERS_SERVICE, FeatureContext
    from nomadlab.notify.hub import AlertHub
    from nomadlab.remote.fleet import Fleet
    from nomadlab.remote.tail import Logs

    fleet = Fleet(config, store=store, clock=clock)
    context = FeatureContext(config=config, store=store, clock=clock, fleet=fleet,
                             logs=Logs(config, fleet, clock),
                             alerts=AlertHub(config, store, clock=clock))
    return (_peer("board", lambda: BOARD_SERVICE.make(context)),
            _peer("papers", lambda: PAPERS_SERVICE.make(context)))


def _peer(name: str, make: Callable[[], T]) -> T | None:
    try:
        return make()
    except Exception as exc:  # another feature's failure must not stop the timer
        warn(f"the {name} is not available: {exc}")
        return None


# --------------------------------------------------------------------------- parsers


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("focus", help="the deep-work timer: start, pause, resume, stop, status",
                       description="The focus timer. It is kept in the database, so it goes on "
                                   "when nomadlab quits and is shared with every open TUI.")
    add_config_option(p)
    fs = p.add_subparsers(title="actions", metavar="ACTION", required=True)

    presets = "sprint (90m), deep (4h), pomodoro (25m) or those of [focus] in the config"
    a = fs.add_parser("start", help="start a session (exit 1 if one is open)",
                      description=f"Start a session: a preset ({presets}) or a number of "
                                  "minutes. Exit status 1, naming the open session, when one "
                                  "is open already.")
    a.add_argument("what", nargs="?", metavar="PRESET|MINUTES",
                   help="a preset name or minutes (default: the first preset)")
    a.add_argument("--for", dest="purpose", metavar="CARD|PAPER|TEXT",
                   help="what it is for: a card id (42), a paper (paper:7) or free text")
    a.add_argument("--kind", choices=FOCUS_KINDS,
                   help="deep work holds informational alerts until it ends "
                        "(default: the preset's kind; sprint for minutes)")
    add_config_option(a)
    a.set_defaults(func=run_start)

    for name, text in (("pause", "pause the running session"),
                       ("resume", "resume the paused session")):
        a = fs.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        add_config_option(a)
        a.set_defaults(func=run_change, action=name)

    a = fs.add_parser("stop", help="finish the session now (or --abandon it)",
                      description="Finish the open session early: its time counts as focus. "
                                  "With --abandon it does not.")
    a.add_argument("--abandon", action="store_true", help="its time does not count")
    add_config_option(a)
    a.set_defaults(func=run_change, action="stop")

    a = fs.add_parser("extend", help="add minutes to the open session",
                      description="Add minutes (default 15) to the open session.")
    a.add_argument("minutes", nargs="?", type=float, default=15.0)
    add_config_option(a)
    a.set_defaults(func=run_change, action="extend")

    a = fs.add_parser("interrupt", help="log an interruption (the timer goes on)",
                      description="Log an interruption of the open session, with an optional "
                                  "note; the timer does not stop.")
    a.add_argument("note", nargs="*", help="what interrupted you")
    add_config_option(a)
    a.set_defaults(func=run_change, action="interrupt")

    a = fs.add_parser("status", help="the open session and today's total, or --json",
                      description="The open session and today's focus against plan, or JSON. "
                                  "--short prints just the countdown, and nothing when idle: "
                                  "for a shell prompt or a tmux status line. Exit status 0.")
    out = a.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true", help="machine-readable output")
    out.add_argument("--short", action="store_true",
                     help="one short line, nothing when no session is open")
    add_config_option(a)
    a.set_defaults(func=run_status)

    register_today(sub)
    register_report(sub)


def register_today(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("today", help="today's plan and yesterday in a few lines",
                       description="Print today's planned blocks, today's focus so far and "
                                   "yesterday's summary. Actions add blocks or set the note.")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_config_option(p)
    p.set_defaults(func=run_today)
    ts = p.add_subparsers(title="actions", metavar="ACTION")
    a = ts.add_parser("add", help="plan a block: 07:00-11:00 deep --for 42",
                      description="Plan a block today: a span (07:00-11:00, or 19:00 60m) and "
                                  "a kind (deep, sprint, pomodoro, light).")
    a.add_argument("span", metavar="SPAN")
    a.add_argument("kind", nargs="?", default="deep", choices=FOCUS_KINDS)
    a.add_argument("--for", dest="purpose", metavar="CARD|PAPER|TEXT")
    add_config_option(a)
    a.set_defaults(func=run_today_add)
    a = ts.add_parser("note", help="set today's note", description="Set today's short note.")
    a.add_argument("text", nargs="+")
    add_config_option(a)
    a.set_defaults(func=run_today_note)


def register_report(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("report", help="the week report and the retro",
                       description="Reports over the focus sessions, the board, the papers, "
                                   "runs and GPU hours.")
    add_config_option(p)
    rs = p.add_subparsers(title="reports", metavar="REPORT", required=True)
    a = rs.add_parser("week", help="focus per day against plan, cards, runs, papers, GPU hours",
                      description="The week report: focus hours per day against plan, sessions "
                                  "and interruptions, the longest unbroken block, cards moved "
                                  "and finished, runs finished and failed, papers against the "
                                  "cap, GPU hours used and idle, and the retro.")
    a.add_argument("--week", metavar="YYYY-Www", help="an ISO week, e.g. 2026-W48 "
                                                     "(default: this week)")
    out = a.add_mutually_exclusive_group()
    out.add_argument("--markdown", action="store_true", help="Markdown, to paste somewhere")
    out.add_argument("--json", action="store_true", help="machine-readable output")
    add_config_option(a)
    a.set_defaults(func=run_week)
    a = rs.add_parser("retro", help="write the week's retro",
                      description="Store the retro of a week (default: this week): what worked, "
                                  "what did not, what to change. Shown again next week.")
    a.add_argument("--week", metavar="YYYY-Www")
    a.add_argument("--worked", default="", help=RETRO_PROMPTS[0][1])
    a.add_argument("--didnt", default="", help=RETRO_PROMPTS[1][1])
    a.add_argument("--change", default="", help=RETRO_PROMPTS[2][1])
    add_config_option(a)
    a.set_defaults(func=run_retro)


# --------------------------------------------------------------------------- focus


def _line(service: FocusService, session: Session, now: float) -> str:
    text = f"{session.preset} {countdown(session.remaining(now))}"
    if session.state == "paused":
        text += " paused"
    if session.purpose:
        text += f" · {session.purpose}"
    if session.interruptions:
        count = len(session.interruptions)
        text += f" · {count} interruption{'s' if count != 1 else ''}"
    return text


@_command
def run_start(args: argparse.Namespace, service: FocusService) -> int:
    if args.purpose:
        _link_peers(service)
    try:
        session = service.start_session(args.what, args.purpose, kind=args.kind)
    except AlreadyRunning as exc:
        error(str(exc))
        return 1
    now = service.clock.time()
    due = session.due()
    text = f"Started {session.label}: {countdown(session.remaining(now))}"
    if session.purpose:
        text += f" for {session.purpose}"
    if due is not None:
        text += f", ends {service.days.clock_text(due)}"
    print(text + ".")
    return 0


@_command
def run_change(args: argparse.Namespace, service: FocusService) -> int:
    if args.action == "interrupt":
        service.interrupt(" ".join(args.note))
        session = service.current()
        count = len(session.interruptions) if session is not None else 0
        print(f"Interruption {count} logged; the timer goes on.")
        return 0
    if args.action == "pause":
        session = service.pause()
    elif args.action == "resume":
        session = service.resume()
    elif args.action == "extend":
        session = service.extend(args.minutes)
    elif args.abandon:
        session = service.abandon()
    else:
        session = service.finish()
    now = service.clock.time()
    left = countdown(session.remaining(now))
    if args.action == "pause":
        print(f"Paused {session.preset} with {left} left.")
    elif args.action == "resume":
        due = session.due()
        ends = f", ends {service.days.clock_text(due)}" if due is not None else ""
        print(f"Resumed {session.preset}: {left} left{ends}.")
    elif args.action == "extend":
        print(f"Extended {session.preset} by {args.minutes:g}m: {left} left.")
    elif session.state == "abandoned":
        print(f"Abandoned {session.preset} after {total(session.focus_seconds(now))}.")
    else:
        print(f"Finished {session.preset}: {total(session.focus_seconds(now))} of focus.")
    return 0


@_command
def run_status(args: argparse.Namespace, service: FocusService) -> int:
    now = service.clock.time()
    if args.json:
        print_json(service.status(now))
        return 0
    if args.short:
        text = service.status_text(now)
        if text:
            print(text)
        return 0
    session = service.current(now)
    print(_line(service, session, now) if session is not None else "no focus session")
    day = service.today(now)
    print(f"today: {total(service.day_focus(day, now))} of "
          f"{total(service.plan_seconds(day))} planned")
    return 0


# --------------------------------------------------------------------------- today


@_command
def run_today(args: argparse.Namespace, service: FocusService) -> int:
    _link_peers(service)
    now = service.clock.time()
    if getattr(args, "json", False):
        print_json(today_json(service, now))
        return 0
    print(today_text(service, now), end="")
    return 0


def today_json(service: FocusService, now: float) -> dict[str, Any]:
    """``nomadlab today --json``: the same facts as the text, as data."""
    from nomadlab.core.focus.report import yesterday  # here: `focus status` need not load it

    day = service.today(now)
    blocks = service.blocks(day)
    done = service.block_sessions(day)
    planned = []
    for block in blocks:
        sessions = done.get(block.id, [])
        state = ("running" if any(s.open for s in sessions)
                 else "done" if sessions else "planned")
        planned.append({"id": block.id, "span": block.label, "start": minute_text(block.start),
                        "end": minute_text(block.end), "minutes": block.minutes,
                        "kind": block.kind, "purpose": block.purpose or None, "state": state,
                        "focus_seconds": round(service.focus_seconds(sessions, now), 3)})
    session = service.current(now)
    previous = service.retro(Days.shift_week(service.days.week_id(day), -1))
    summary = yesterday(service, now)
    return {
        "day": day.isoformat(),
        "day_starts": minute_text(service.days.starts),
        "blocks": planned,
        "focus_seconds": round(service.day_focus(day, now), 3),
        "plan_seconds": service.plan_seconds(day, blocks),
        "session": service.describe(session, now) if session is not None else None,
        "note": service.note(day) or None,
        "last_week_change": (previous.change or None) if previous is not None else None,
        "yesterday": {
            "day": summary.day.isoformat(), "focus_seconds": round(summary.focus, 3),
            "plan_seconds": summary.plan, "sessions": summary.sessions,
            "interruptions": summary.interruptions, "runs_finished": summary.runs_finished,
            "runs_failed": summary.runs_failed, "cards_moved": summary.cards_moved,
            "cards_finished": summary.cards_finished, "papers_read": summary.papers_read,
        },
    }


def today_text(service: FocusService, now: float) -> str:
    day = service.today(now)
    blocks = service.blocks(day)
    done = service.block_sessions(day)
    out = [f"Today, {day:%A %d %B %Y} (the day starts at {minute_text(service.days.starts)})"]
    if blocks:
        for block in blocks:
            mark = ""
            sessions = done.get(block.id, [])
            if any(s.open for s in sessions):
                mark = "  (running)"
            elif sessions:
                mark = f"  (done: {total(service.focus_seconds(sessions, now))})"
            purpose = f"  {block.purpose}" if block.purpose else ""
            out.append(f"  {block.label}  {block.kind:<8}{purpose}{mark}")
    else:
        out.append("  nothing planned: `nomadlab today add 07:00-11:00 deep --for 42`")
    out.append(f"  focus so far: {total(service.day_focus(day, now))} of "
               f"{total(service.plan_seconds(day, blocks))} planned")
    session = service.current(now)
    if session is not None:
        out.append(f"  now: {_line(service, session, now)}")
    note = service.note(day)
    if note:
        out.append(f"  note: {note}")
    previous = service.retro(Days.shift_week(service.days.week_id(day), -1))
    if previous is not None and previous.change:
        out.append(f"  last week you meant to change: {previous.change}")
    from nomadlab.core.focus.report import yesterday  # here: `focus status` need not load it

    summary = yesterday(service, now)
    lines = summary.lines()
    out.append(f"Yesterday, {lines[0]}")
    out.extend(f"  {line}" for line in lines[1:])
    return "\n".join(out) + "\n"


@_command
def run_today_add(args: argparse.Namespace, service: FocusService) -> int:
    if args.purpose:
        _link_peers(service)
    start, minutes = service.parse_span(args.span)
    block = service.add_block(service.today(), start, minutes, args.kind, args.purpose)
    purpose = f" for {block.purpose}" if block.purpose else ""
    print(f"Planned {block.label} {block.kind}{purpose}.")
    return 0


@_command
def run_today_note(args: argparse.Namespace, service: FocusService) -> int:
    service.set_note(service.today(), " ".join(args.text))
    print("Note saved.")
    return 0


# --------------------------------------------------------------------------- report


def _week(service: FocusService, text: str | None) -> str:
    if text is None:
        return service.week_of()
    year, number = Days.parse_week(text)
    return f"{year}-W{number:02d}"


@_command
def run_week(args: argparse.Namespace, service: FocusService) -> int:
    _link_peers(service)
    week = _week(service, args.week)
    from nomadlab.core.focus.report import week_report

    report = week_report(service, week)
    if args.json:
        print_json(report.to_dict(), default=str)
    elif args.markdown:
        print(report.markdown(), end="")
    else:
        print(report.text(), end="")
    return 0


@_command
def run_retro(args: argparse.Namespace, service: FocusService) -> int:
    week = _week(service, args.week)
    if not (args.worked or args.didnt or args.change):
        raise UserError("say at least one of --worked, --didnt, --change")
    old = service.retro(week)
    retro = service.set_retro(week, args.worked or (old.worked if old else ""),
                              args.didnt or (old.didnt if old else ""),
                              args.change or (old.change if old else ""))
    print(f"Retro for {retro.week} saved.")
    return 0
