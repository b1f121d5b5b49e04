"""``nomadlab alerts [--json] [--all | --limit N] [--unacknowledged]``: the alert
history kept in the store, newest first."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nomadlab.core.alerts import Alert

DEFAULT_LIMIT = 50
# The keys of each object of `nomadlab alerts --json` (README, "Scripting").
JSON_KEYS = ("id", "time", "rule", "severity", "host", "log", "title", "message",
             "acknowledged")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from nomadlab.cli.common import add_config_option

    p = sub.add_parser("alerts", help="the alert history, newest first (table or --json)",
                       description="The alerts raised so far (run failed, host down, idle "
                                   f"GPUs, ...), newest first: the last {DEFAULT_LIMIT} unless "
                                   "--all or --limit.")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    count = p.add_mutually_exclusive_group()
    count.add_argument("--all", action="store_true", help="every stored alert")
    count.add_argument("--limit", type=_positive, metavar="N",
                       help=f"the newest N (default {DEFAULT_LIMIT})")
    p.add_argument("--unacknowledged", action="store_true", help="only those not yet seen")
    add_config_option(p)
    p.set_defaults(func=run)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def run(args: argparse.Namespace) -> int:
    from nomadlab.cli.common import config_from, open_store, print_json
    from nomadlab.core.alert_store import AlertLog

    store = open_store(config_from(args))
    try:
        limit = -1 if args.all else (args.limit or DEFAULT_LIMIT)  # SQLite: -1, no limit
        alerts = AlertLog(store).recent(limit, unacknowledged=args.unacknowledged)
    finally:
        store.close()
    if args.json:
        print_json([alert_json(a) for a in alerts])
        return 0
    print_table(alerts)
    return 0


def _iso(stamp: float | None) -> str | None:
    from datetime import datetime

    if stamp is None:
        return None
    return datetime.fromtimestamp(stamp).astimezone().isoformat(timespec="seconds")


def alert_json(alert: Alert) -> dict[str, Any]:
    """One alert for --json: times as ISO 8601 with the local UTC offset."""
    return {"id": alert.id, "time": _iso(alert.time), "rule": alert.rule,
            "severity": alert.severity, "host": alert.host, "log": alert.log,
            "title": alert.title, "message": alert.message,
            "acknowledged": _iso(alert.acknowledged)}


def print_table(alerts: list[Alert]) -> None:
    import sys
    from datetime import datetime

    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from nomadlab.ui import render

    if not alerts:
        print("No alerts.")
        return
    table = Table(box=None, pad_edge=False)
    for column in ("TIME", "RULE", "SEVERITY", "HOST", "LOG", "TITLE", "ACK"):
        table.add_column(column, no_wrap=column != "TITLE")
    styles = {"error": "bold red", "warning": "yellow", "info": ""}
    for a in alerts:
        table.add_row(Text(f"{datetime.fromtimestamp(a.time):%Y-%m-%d %H:%M:%S}"),
                      render.safe(a.rule), render.safe(a.severity, styles.get(a.severity, "")),
                      render.safe(a.host or ""), render.safe(a.log or ""),
                      render.safe(a.title), Text("yes" if a.acknowledged else "no"))
    # On a terminal: fit its width; in a pipe: whole lines, nothing cut.
    wide = None if sys.stdout.isatty() else 100_000
    Console(highlight=False, width=wide).print(table)
