"""Shared bits of the subcommands."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from nomadlab.core.config import Config, load_config

T = TypeVar("T")


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
