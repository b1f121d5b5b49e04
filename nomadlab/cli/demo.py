"""``nomadlab demo``: the TUI against simulated GPU hosts over real SSH on 127.0.0.1."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="the TUI against 4 simulated GPU hosts (no setup needed)",
                       description="Starts an in-process SSH server on 127.0.0.1 with simulated "
                                   "8-GPU hosts and opens the TUI on them. Touches no user "
                                   "files: everything lives in a temporary directory.")
    p.add_argument("--hosts", type=int, default=4, help="number of simulated hosts (default 4)")
    p.add_argument("--seed", type=int, default=7)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise SystemExit("demo: not wired yet")
