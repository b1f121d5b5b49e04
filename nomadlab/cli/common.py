"""Shared bits of the subcommands: the one way a command gets its config, store and
feature service (`feature_service`, `with_service`), turns a feature's error into a
one-line message (`user_errors`, exit status 2), and prints warnings (`warn`) and JSON
(`print_json`)."""

from __future__ import annotations

import argparse
import functools
import os
import sys
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from nomadlab.core.config import Config, load_config

if TYPE_CHECKING:
    import asyncio

    from nomadlab.core.clock import Clock
    from nomadlab.core.store import Store

T = TypeVar("T")
NOW_ENV = "NOMADLAB_NOW"  # epoch seconds: the CLI's "now", for tests and replays


class UserError(Exception):
    """Something the user can fix; printed without a traceback, exit status 2."""


def config_from(args: argparse.Namespace) -> Config:
    return load_config(getattr(args, "config", None))


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    import asyncio  # here, not at the top: a command without async pays nothing

    return asyncio.run(coro)


def interactive() -> bool:
    return sys.stdin.isatty() and sys.stdout.isatty()


def add_config_option(parser: argparse.ArgumentParser) -> None:
    """--config after the subcommand too (``nomadlab status --config x``)."""
    parser.add_argument("--config", metavar="PATH", default=argparse.SUPPRESS,
                        help="config file (overrides $NOMADLAB_CONFIG)")


def config_file_path(args: argparse.Namespace) -> str:
    from nomadlab.core.config import config_path

    path, _ = config_path(getattr(args, "config", None) or os.environ.get("NOMADLAB_CONFIG"))
    return str(path)


def print_json(data: Any, *, indent: int | None = 2,
               default: Callable[[Any], Any] | None = None) -> None:
    """JSON on stdout, UTF-8 kept readable, but C1 controls, bidi overrides and
    zero-width characters escaped (core/text.py): safe to print to a terminal."""
    from nomadlab.core.text import json_text

    print(json_text(data, indent=indent, default=default))


def error(message: str) -> None:
    """``nomadlab: ...`` on stderr: one thing failed (the caller decides the status)."""
    print(f"nomadlab: {message}", file=sys.stderr)


def warn(message: str) -> None:
    """``nomadlab: warning: ...`` on stderr; the command goes on."""
    print(f"nomadlab: warning: {message}", file=sys.stderr)


@contextmanager
def user_errors(*kinds: type[Exception]) -> Iterator[None]:
    """A feature's own errors (BoardError, PaperError, ...) are things the user can fix:
    they become `UserError` (one line on stderr, exit status 2, no traceback)."""
    try:
        yield
    except kinds as exc:
        raise UserError(str(exc)) from None


def cli_clock() -> Clock:
    """The system clock, or a fixed one at $NOMADLAB_NOW (epoch seconds)."""
    from nomadlab.core.clock import SYSTEM_CLOCK, ManualClock

    value = os.environ.get(NOW_ENV)
    if not value:
        return SYSTEM_CLOCK
    try:
        return ManualClock(float(value))
    except ValueError:
        raise UserError(f"{NOW_ENV} must be epoch seconds, got {value!r}") from None


def open_store(config: Config) -> Store:
    from nomadlab.core.store import Store

    return Store(config.database)


class HasStore(Protocol):
    @property
    def store(self) -> Store: ...


S = TypeVar("S", bound=HasStore)


def feature_service(args: argparse.Namespace, make: Callable[..., S]) -> S:
    """A feature's service for a command, made by the feature's own ``make_service``
    (the one the TUI uses) over the config (--config), the database and `cli_clock`."""
    config = config_from(args)
    return make(config=config, store=open_store(config), clock=cli_clock())


def with_service(make: Callable[..., S], *errors: type[Exception]
                 ) -> Callable[[Callable[[argparse.Namespace, S], int]],
                               Callable[[argparse.Namespace], int]]:
    """A command ``run(args, service)``: the service made by `feature_service`, its
    database closed when the command is done, ``errors`` shown as `user_errors`."""
    def decorate(run: Callable[[argparse.Namespace, S], int]
                 ) -> Callable[[argparse.Namespace], int]:
        @functools.wraps(run)
        def wrapped(args: argparse.Namespace) -> int:
            service = feature_service(args, make)
            try:
                with user_errors(*errors):
                    return run(args, service)
            finally:
                service.store.close()

        return wrapped

    return decorate


def stop_on_signals(stop: asyncio.Event) -> None:
    """SIGINT and SIGTERM set ``stop``, for a clean exit of a long-running command
    (``watch``, ``exporter``). Where the loop takes no signal handlers (Windows'),
    Ctrl-C stays Python's KeyboardInterrupt."""
    import asyncio
    import contextlib
    import signal

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
