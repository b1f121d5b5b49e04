"""Command line: ``nomadlab`` (the TUI) and its subcommands.

Each subcommand is a thin call into core/ and remote/. User errors (bad config,
unknown names, unreachable hosts) end with a clear message and a non-zero status,
never a traceback.

Fast to start: a run imports only the module of the command it runs. ``COMMANDS``
below names every top-level command, the module whose ``register(sub)`` (or the named
function) adds its parser, and its one-line help. ``nomadlab --help`` and a parse
error list the commands from this table alone; ``nomadlab board list`` imports
``nomadlab.cli.board`` and nothing else of the CLI; ``nomadlab --version`` imports
no command module at all.

Adding a command: write ``nomadlab/cli/NAME.py`` with ``register(sub)`` (argparse
``add_parser`` plus ``set_defaults(func=...)``), append a ``Command`` line here with
the same help text (tests/test_cli_start.py checks that the two agree), and keep the
module's top-level imports to what its commands need (import asyncssh, textual and
other features' services inside the functions that use them). A module that adds
several commands (focus adds focus, today and report) gets one line per command.
``build_parser()`` with no argument loads every module: the full parser, for tests
and shell completion.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from nomadlab import __version__

# Not `from typing import TYPE_CHECKING`: typing (like dataclasses) costs milliseconds
# that `nomadlab --version` need not pay; mypy treats this name the same way.
TYPE_CHECKING = False


class Command:
    """One top-level command (a plain class: no dataclasses import at start-up)."""

    __slots__ = ("help", "module", "name", "register")

    def __init__(self, name: str, module: str, help: str, register: str = "register") -> None:
        self.name = name  # what the user types: nomadlab NAME
        self.module = module  # the module that adds its parser
        self.help = help  # its line in `nomadlab --help`; the same text as in the module
        self.register = register  # the module's function that adds the parser

    def __repr__(self) -> str:
        return f"Command({self.name!r}, {self.module!r})"


COMMANDS: tuple[Command, ...] = (
    Command("demo", "nomadlab.cli.demo",
            "the TUI against 4 simulated GPU hosts (no setup needed)"),
    Command("status", "nomadlab.cli.status",
            "one sample per host (table or --json); exit 1 on failure"),
    Command("hosts", "nomadlab.cli.hosts", "list, add, remove, check and trust GPU hosts"),
    Command("secret", "nomadlab.cli.secret",
            "store webhook URLs and bot tokens in the OS keyring"),
    Command("watch", "nomadlab.cli.watch",
            "tails and alerts without the TUI; JSON lines on stdout"),
    Command("tail", "nomadlab.cli.tui", "open the TUI following HOST:PATH", "register_tail"),
    Command("board", "nomadlab.cli.board",
            "the experiments board: list, add, move, params, metrics"),
    Command("paper", "nomadlab.cli.paper",
            "the reading queue: add, list, start, read, drop, export"),
    Command("focus", "nomadlab.cli.focus",
            "the deep-work timer: start, pause, resume, stop, status"),
    Command("today", "nomadlab.cli.focus", "today's plan and yesterday in a few lines",
            "register_today"),
    Command("report", "nomadlab.cli.focus", "the week report and the retro",
            "register_report"),
    Command("jobs", "nomadlab.cli.jobs",
            "Slurm jobs of the configured clusters (--json); cancel/hold/release"),
    Command("exporter", "nomadlab.cli.exporter",
            "serve the watched GPUs to Prometheus (DCGM names)"),
    Command("signal", "nomadlab.cli.signal", "send a signal to a process on a host"),
    Command("attach", "nomadlab.cli.attach", "attach to a tmux session on a host"),
    Command("alerts", "nomadlab.cli.alerts",
            "the alert history, newest first (table or --json)"),
    Command("completion", "nomadlab.cli.completion",
            "print a shell completion script (bash, zsh, fish)"),
)

if TYPE_CHECKING:
    from typing import TypeAlias

    Subparsers: TypeAlias = argparse._SubParsersAction[argparse.ArgumentParser]


def _top_parser() -> tuple[argparse.ArgumentParser, Subparsers]:
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
    parser.set_defaults(func=_run_tui)
    sub = parser.add_subparsers(title="commands", metavar="COMMAND")
    return parser, sub


def _run_tui(args: argparse.Namespace) -> int:
    from nomadlab.core import lazyimport

    lazyimport.defer("asyncssh")  # imported after the first frame (ui/app.py)
    import gc

    # No cyclic garbage collection until the first frame is painted (ui/app.py turns
    # it back on): the objects made at start live as long as the app, and walking them
    # again and again cost about 30 ms of CPU before the first frame.
    gc.disable()
    try:
        from nomadlab.cli import tui

        return tui.run(args)
    finally:
        gc.enable()  # also when it stopped before a frame (no terminal, a bad config)


def _register(command: Command, sub: Subparsers) -> None:
    if command.name in sub.choices:  # its module's register() added it with another
        return
    module = importlib.import_module(command.module)
    getattr(module, command.register)(sub)


def command_named(argv: Sequence[str],
                  parser: argparse.ArgumentParser | None = None) -> str | None:
    """The command ``argv`` runs (its first positional word), or None (the TUI,
    --help, --version). The top-level options that take a value (--config PATH, and
    any added later) are read from ``parser``, abbreviations included."""
    top = parser if parser is not None else _top_parser()[0]
    with_value = {option for option, action in top._option_string_actions.items()
                  if action.nargs != 0}
    stopping = {option for option, action in top._option_string_actions.items()
                if action.nargs == 0 and isinstance(action, (argparse._HelpAction,
                                                             argparse._VersionAction))}
    words = iter(argv)
    for word in words:
        if word == "--":
            return next(words, None)
        if not word.startswith("-") or word == "-":
            return word
        if "=" in word:
            continue  # --config=PATH
        matches = {o for o in top._option_string_actions if o == word} or {
            o for o in top._option_string_actions
            if word.startswith("--") and len(word) > 2 and o.startswith(word)}
        if matches & stopping:
            return None
        if matches and matches <= with_value:
            next(words, None)  # the option's value
    return None


def build_parser(argv: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser: with ``argv``, only the command it runs is imported (the others are
    listed by name and help); without, every command's full parser."""
    parser, sub = _top_parser()
    wanted = None if argv is None else command_named(argv, parser)
    for command in COMMANDS:
        if argv is None or command.name == wanted:
            _register(command, sub)
    for command in COMMANDS:  # the rest: a name and a line of help, no import
        if command.name not in sub.choices:
            stub = sub.add_parser(command.name, help=command.help, add_help=False)
            stub.add_argument("words", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
            stub.set_defaults(stub_of=command.name)
    if argv is not None and wanted in sub.choices:
        _order(sub)
    return parser


def _order(sub: Subparsers) -> None:
    """Keep the listing in COMMANDS order when one command was registered first."""
    rank = {c.name: i for i, c in enumerate(COMMANDS)}
    sub._choices_actions.sort(key=lambda action: rank.get(action.dest, len(rank)))
    parsers = sorted(sub.choices.items(), key=lambda item: rank.get(item[0], len(rank)))
    sub.choices.clear()
    sub.choices.update(parsers)


def main(argv: Sequence[str] | None = None) -> int:
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(words)
    args = parser.parse_args(words)
    if getattr(args, "stub_of", None):  # argv named its command in a way not foreseen
        args = build_parser().parse_args(words)
    if getattr(args, "log", None):  # --log FILE: a debug log while the command runs
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
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `nomadlab status | head`
        return 0
    except Exception as exc:
        message = _user_message(exc, args)
        if message is None:
            raise
        print(f"nomadlab: {message}", file=sys.stderr)
        return 2


def _user_message(exc: Exception, args: argparse.Namespace) -> str | None:
    """The one line for an error the user can act on; None for a bug (a traceback).
    The error types are imported here, not at start-up: they pull in the config."""
    from nomadlab.cli.common import UserError
    from nomadlab.core.config import ConfigError
    from nomadlab.core.store import StoreError, describe_error

    if isinstance(exc, (ConfigError, StoreError, UserError)):
        return str(exc)
    sqlite3 = sys.modules.get("sqlite3")
    if sqlite3 is not None and isinstance(exc, sqlite3.Error):
        # a full disk, a read-only or damaged database
        return describe_error(exc, _database(args))
    return None


def _database(args: argparse.Namespace) -> str | None:
    """Where the database is, for an error message (None when the config says nothing)."""
    from nomadlab.cli.common import config_from

    try:
        return str(config_from(args).database)
    except Exception:
        return None
