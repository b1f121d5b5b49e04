"""Command line: ``nomadlab`` (the TUI) and its subcommands.

Each subcommand is a thin call into core/ and remote/. User errors (bad config,
unknown names, unreachable hosts) end with a clear message and a non-zero status,
never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sqlite3
import sys
from collections.abc import Sequence

from nomadlab import __version__
from nomadlab.cli import demo, hosts, secret, status, tui, watch
from nomadlab.cli.common import UserError
from nomadlab.core.config import ConfigError
from nomadlab.core.store import StoreError, describe_error

COMMANDS = (demo, status, hosts, secret, watch)
# Feature command modules (board, papers, focus): each has register(sub). Imported
# only when present, so a feature can land on its own.
FEATURE_COMMANDS = ("nomadlab.cli.board", "nomadlab.cli.paper", "nomadlab.cli.focus",
                    "nomadlab.cli.jobs", "nomadlab.cli.exporter")
ACTION_COMMANDS = ("nomadlab.cli.signal", "nomadlab.cli.attach")  # acting on the fleet
# Conventions: the alert history and shell completion (each imports nothing at register).
CONVENTION_COMMANDS = ("nomadlab.cli.alerts", "nomadlab.cli.completion")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nomadlab",
        description="A terminal workspace for ML work on remote GPUs: fleet, logs, board, "
                    "papers, focus. Run without a command for the TUI.",
    )
    parser.add_argument("--version", action="version", version=f"nomadlab {__version__}")
    parser.add_argument("--config", metavar="PATH",
                        help="config file (default: $NOMADLAB_CONFIG, then "
                             "$XDG_CONFIG_HOME/nomadlab/config.toml)")
    parser.add_argument("--log", metavar="FILE",
                        help="append a debug log (warnings included, no secrets) to FILE")
    parser.set_defaults(func=tui.run)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    tui.register_tail(sub)
    for name in (*FEATURE_COMMANDS, *ACTION_COMMANDS, *CONVENTION_COMMANDS):
        try:
            feature = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        feature.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "log", None):
        from nomadlab.cli.logfile import logging_to

        with logging_to(args.log) as problem:
            if problem:
                print(f"nomadlab: {problem}", file=sys.stderr)
                return 2
            return _run(args)
    return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        return int(args.func(args) or 0)
    except (ConfigError, StoreError, UserError) as exc:
        print(f"nomadlab: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `nomadlab status | head`
        return 0
    except sqlite3.Error as exc:  # a full disk, a read-only or damaged database
        print(f"nomadlab: {describe_error(exc, _database(args))}", file=sys.stderr)
        return 2


def _database(args: argparse.Namespace) -> str | None:
    """Where the database is, for an error message (None when the config says nothing)."""
    from nomadlab.cli.common import config_from

    try:
        return str(config_from(args).database)
    except Exception:
        return None
