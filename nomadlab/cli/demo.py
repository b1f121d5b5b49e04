"""``nomadlab demo``: the TUI against simulated GPU hosts over real SSH on 127.0.0.1."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING

from nomadlab.cli.common import UserError

if TYPE_CHECKING:
    from nomadlab.ui.app import NomadApp


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="the TUI against 4 simulated GPU hosts (no setup needed)",
                       description="Starts in-process SSH servers on 127.0.0.1 with simulated "
                                   "8-GPU hosts and opens the TUI on them: the real SSH, "
                                   "host-key and agent code paths run, only NVML is simulated. "
                                   "Touches no user files: everything lives in a temporary "
                                   "directory that is removed on exit.")
    p.add_argument("--hosts", type=int, default=4, help="number of simulated hosts (default 4)")
    p.add_argument("--gpus", type=int, default=8, help="GPUs per host (default 8)")
    p.add_argument("--seed", type=int, default=7, help="simulation seed")
    p.add_argument("--interval", type=float, default=1.0, help="seconds between samples")
    p.set_defaults(func=run)


async def _run(args: argparse.Namespace) -> NomadApp:
    from nomadlab.cli.demo_seed import offline, seed
    from nomadlab.cli.tui import build_app
    from nomadlab.remote.demo import DemoFleet

    async with DemoFleet(hosts=args.hosts, gpus=args.gpus, seed=args.seed) as demo:
        assert demo.dir is not None
        config = demo.config(demo.dir / "data", interval=args.interval)
        offline(config)
        app = build_app(config)
        seed(app.services)
        await app.run_async()
        return app


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.hosts <= 500:
        raise UserError("--hosts must be between 1 and 500")
    if not 1 <= args.gpus <= 64:
        raise UserError("--gpus must be between 1 and 64")
    if args.interval < 0.1:
        raise UserError("--interval must be at least 0.1 seconds")
    from nomadlab.cli.tui import exit_status, require_terminal

    require_terminal()
    return exit_status(asyncio.run(_run(args)))
