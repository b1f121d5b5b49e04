"""``nomadlab board ...``: the experiments board from scripts and shells.

``add`` prints only the new card's id, so a training script can make its own card
and keep it up to date::

    CARD=$(nomadlab board add "LoRA r=16 on llama-7b" --column Training --param lr=3e-4)
    nomadlab board metric "$CARD" val_loss=0.231

Changes made here are not on the TUI's undo stack (``u`` never undoes a script).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from nomadlab.cli.common import UserError, add_config_option, print_json, warn, with_service
from nomadlab.core.board import BoardError, BoardService, make_service
from nomadlab.core.board.model import ARCHIVE, Card, local_time, parse_assignments
from nomadlab.core.durations import compact
from nomadlab.core.model import LOCAL_HOST

ORIGIN = "cli"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("board", help="the experiments board: list, add, move, params, metrics",
                       description="The experiments board (the TUI's screen 3) from the "
                                   "command line. Card ids may be written 42 or #42.")
    add_config_option(p)
    p.set_defaults(func=_usage(p))
    bsub = p.add_subparsers(title="board commands", metavar="COMMAND")

    c = bsub.add_parser("list", help="the cards, column by column")
    c.add_argument("--board", metavar="B", help="which board (default: [board] default)")
    c.add_argument("--archived", action="store_true", help="list archived cards too")
    c.add_argument("--json", action="store_true", help="JSON (the export's card objects)")
    add_config_option(c)
    c.set_defaults(func=run_list)

    c = bsub.add_parser("show", help="one card with its history, as Markdown")
    c.add_argument("id", metavar="ID")
    c.add_argument("--json", action="store_true", help="JSON (as in export --json)")
    add_config_option(c)
    c.set_defaults(func=run_show)

    c = bsub.add_parser("add", help="a new card; prints only its id")
    c.add_argument("title", metavar="TITLE")
    c.add_argument("--column", metavar="C", help="default: the board's first column")
    c.add_argument("--param", metavar="K=V", action="append", default=[],
                   help="a hyperparameter (repeat for more)")
    c.add_argument("--metric", metavar="K=V", action="append", default=[],
                   help="a metric (repeat for more)")
    c.add_argument("--tag", metavar="T", action="append", default=[], help="a tag (repeat)")
    c.add_argument("--link", metavar="K=V", action="append", default=[],
                   help="host=, log=, paper=, commit=, branch=, command= (repeat)")
    c.add_argument("--priority", metavar="P", help="H, M, L or none")
    c.add_argument("--hypothesis", metavar="TEXT", default="", help="Markdown")
    c.add_argument("--board", metavar="B", help="which board (default: [board] default)")
    add_config_option(c)
    c.set_defaults(func=run_add)

    c = bsub.add_parser("move", help="move a card to a column (Archive archives)")
    c.add_argument("id", metavar="ID")
    c.add_argument("column", metavar="COLUMN", help="a name; case and unique prefixes are ok")
    add_config_option(c)
    c.set_defaults(func=run_move)

    for name, kind, what in (("param", "param", "hyperparameters"),
                             ("metric", "metric", "metrics")):
        c = bsub.add_parser(name, help=f"set {what}: ID K=V ... (K= removes one)")
        c.add_argument("id", metavar="ID")
        c.add_argument("values", metavar="K=V", nargs="+")
        add_config_option(c)
        c.set_defaults(func=run_values, kind=kind)

    c = bsub.add_parser("export", help="every card: Markdown (default) or JSON")
    fmt = c.add_mutually_exclusive_group()
    fmt.add_argument("--markdown", dest="format", action="store_const", const="markdown",
                     help="Markdown (the default)")
    fmt.add_argument("--json", dest="format", action="store_const", const="json",
                     help="JSON: columns, params with their history, metrics, links, moves")
    c.add_argument("--board", metavar="B", help="one board (default: all)")
    add_config_option(c)
    c.set_defaults(func=run_export, format="markdown")


def _usage(parser: argparse.ArgumentParser) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    return run


_closing = with_service(make_service, BoardError)  # a command given the board service


def card_id(text: str) -> int:
    raw = text.strip().lstrip("#")
    if not raw.isdigit():
        raise UserError(f"a card id is a number like 42 or #42, got {text!r}")
    return int(raw)


def _card(service: BoardService, text: str) -> Card:
    number = card_id(text)
    card = service.card(number)
    if card is None:
        raise UserError(f"no card #{number} (nomadlab board list shows them)")
    return card


def _board(service: BoardService, name: str | None) -> str:
    if name is None:
        return service.default_board()
    known = [b.name for b in service.boards()]
    if name not in known:
        raise UserError(f"no board {name!r} (boards: {', '.join(known)})")
    return name


@_closing
def run_list(args: argparse.Namespace, service: BoardService) -> int:
    board = _board(service, args.board)
    cards = service.cards(board)
    archived: list[Card] = []
    if args.archived:
        archived, _total = service.archived_cards(board, limit=10**9)
    if args.json:
        wanted = {c.id for c in [*cards, *archived]}
        data = [c for c in service.export(board)["cards"] if c["id"] in wanted]
        print_json(data)
        return 0
    now = service.clock.time()
    wip = service.wip(board)
    columns = service.columns(board)
    extra = sorted({c.column for c in cards} - set(columns))
    print(f"board {board}")
    for column in [*columns, *extra]:
        group = [c for c in cards if c.column == column]
        limit = f"/{wip[column]}" if column in wip else ""
        over = " OVER WIP LIMIT" if column in wip and len(group) > wip[column] else ""
        print(f"\n{column} ({len(group)}{limit}){over}")
        for card in group:
            print("  " + _line(card, now))
    if args.archived:
        print(f"\n{ARCHIVE} ({len(archived)})")
        for card in archived:
            print("  " + _line(card, now))
    return 0


def _plain(text: str) -> str:
    return "".join(ch if ch.isprintable() else " " for ch in text)


def _line(card: Card, now: float) -> str:
    parts = [f"#{card.id:<5}", _plain(card.title)]
    if card.priority_label:
        parts.append(f"[{card.priority_label}]")
    if card.tags:
        parts.append(" ".join("#" + _plain(t) for t in card.tags))
    if card.metrics:
        shown = list(card.metrics.items())[:3]
        parts.append(" ".join(f"{_plain(k)}={_plain(v)}" for k, v in shown))
    parts.append(f"({compact(now - card.entered)})")
    if card.failed is not None:
        parts.append("FAILED: " + _plain(card.failed)[:80])
    return "  ".join(parts)


@_closing
def run_show(args: argparse.Namespace, service: BoardService) -> int:
    card = _card(service, args.id)
    if args.json:
        data = next(c for c in service.export(card.board)["cards"] if c["id"] == card.id)
        print_json(data)
        return 0
    sys.stdout.write(_plain_block(service.markdown(card.id)))
    history = service.history(card.id)
    if history.values:
        print("\n### Value history\n")
        for change in history.values:
            value = "(removed)" if change.value is None else _plain(change.value)
            print(f"- {_when(change.time)} {change.kind} {_plain(change.key)} = {value}")
    moves = history.moves
    if moves:
        print("\n### Moves\n")
        for move in moves:
            how = " (automatic" + (f": {_plain(move.reason)}" if move.reason else "") + ")" \
                if move.auto else ""
            start = move.from_col or "created in"
            print(f"- {_when(move.time)} {start} -> {move.to_col}{how} [{move.origin}]")
    return 0


def _plain_block(text: str) -> str:
    return "".join(ch if ch.isprintable() or ch in "\n\t" else " " for ch in text)


def _when(t: float) -> str:
    return local_time(t)


@_closing
def run_add(args: argparse.Namespace, service: BoardService) -> int:
    params = parse_assignments(args.param)
    metrics = parse_assignments(args.metric)
    links = parse_assignments(args.link)
    board = args.board or service.default_board()
    new_id = service.add_card(
        args.title, column=args.column, board=board, tags=args.tag,
        links={k: v for k, v in links.items() if v is not None},
        params={k: v for k, v in params.items() if v is not None},
        metrics={k: v for k, v in metrics.items() if v is not None},
        priority=args.priority, hypothesis=args.hypothesis, origin=ORIGIN)
    for warning in home_warnings(links, os.environ.get("HOME", "")):
        warn(warning)
    print(new_id)
    return 0


def home_warnings(links: dict[str, str | None], home: str) -> list[str]:
    """A log on a host whose path starts with this machine's home directory: most likely
    ``--link log=HOST:~/x`` unquoted, which the shell expands (``~`` after ``=``) before
    nomadlab sees it. Stored as given; said once on stderr with what to type instead."""
    home = home.rstrip("/")
    log = links.get("log")
    if not log or not home:
        return []
    host, sep, path = log.partition(":")
    prefixed = bool(sep) and "/" not in host  # HOST:PATH, else a path on the card's host
    if not prefixed:
        host, path = links.get("host") or LOCAL_HOST, log
    if host == LOCAL_HOST or not (path == home or path.startswith(home + "/")):
        return []
    tilde = "~" + path[len(home):]
    shown = f"{host}:{tilde}" if prefixed else tilde
    return [_plain(f"log={log} names {path} on {host}, a path under this machine's home "
                   f"directory ({home}): the shell expands ~ after '=' before nomadlab sees "
                   f"it. If you meant the home directory on {host}, quote it: "
                   f"--link 'log={shown}'")]


@_closing
def run_move(args: argparse.Namespace, service: BoardService) -> int:
    card = _card(service, args.id)
    column = service.resolve_column(card.board, args.column)
    moved = service.move(card.id, column, origin=ORIGIN)
    if not moved:
        print(f"#{card.id} is already in {column}", file=sys.stderr)
    return 0


@_closing
def run_values(args: argparse.Namespace, service: BoardService) -> int:
    card = _card(service, args.id)
    values = parse_assignments(args.values)
    service.set_values(card.id, args.kind, values, origin=ORIGIN)
    return 0


@_closing
def run_export(args: argparse.Namespace, service: BoardService) -> int:
    board = _board(service, args.board) if args.board else None
    if args.format == "json":
        print_json(service.export(board))
    else:
        sys.stdout.write(_plain_block(service.export_markdown(board)))
    return 0
