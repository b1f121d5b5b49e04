"""``nomadlab signal HOST PID [--signal TERM|INT|KILL]``: signal one process on a host."""

from __future__ import annotations

import argparse
import asyncio
from typing import Any

from nomadlab.cli.common import UserError, add_config_option, config_from, run_async
from nomadlab.core.config import Config
from nomadlab.core.model import LOCAL_HOST
from nomadlab.ui.render import clean

CONNECT_WAIT = 30.0


def register(sub: Any) -> None:
    parser = sub.add_parser("signal", help="send a signal to a process on a host",
                            description="Send SIGTERM (or --signal INT|KILL) to PID on HOST, "
                                        "through the host's agent. Refused (exit 2) for a pid "
                                        "that is now another process, a process the SSH user "
                                        "may not signal, or with [fleet] read_only = true.")
    parser.add_argument("host", help="a [[hosts]] name, or 'local'")
    parser.add_argument("pid", type=int)
    parser.add_argument("--signal", dest="signal", default="TERM",
                        choices=("TERM", "INT", "KILL"))
    add_config_option(parser)
    parser.set_defaults(func=run)


async def _signal(config: Config, host: str, pid: int, signal: str) -> str:
    from nomadlab.remote.fleet import Fleet
    from nomadlab.remote.process_actions import ActionRefused, describe, send_signal

    local = host == LOCAL_HOST
    fleet = Fleet(config, hosts=[host], local=local)
    if not local and host not in fleet.supervisors:
        raise UserError(f"unknown host {host!r} (see `nomadlab hosts list`)")
    await fleet.start()
    try:
        if not local:
            supervisor = fleet.supervisors[host]
            limit = config.ssh.connect_timeout + config.ssh.login_timeout + CONNECT_WAIT
            loop = asyncio.get_running_loop()
            deadline = loop.time() + limit
            while supervisor.status.info is None:  # the agent's hello: it can take commands
                if supervisor.status.state.waits_for_user or loop.time() > deadline:
                    why = supervisor.status.error or str(supervisor.status.state)
                    raise UserError(f"{host}: not connected: {why}")
                await asyncio.sleep(0.05)
        try:
            ref = await describe(fleet, host, pid)
            await send_signal(fleet, ref, signal)
        except ActionRefused as exc:
            raise UserError(clean(str(exc), 300)) from None
        return f"sent SIG{signal} to {pid} ({ref.user}: {ref.command[:80]}) on {host}"
    finally:
        await fleet.stop()


def run(args: argparse.Namespace) -> int:
    config = config_from(args)
    if config.fleet.read_only:
        raise UserError("read-only: [fleet] read_only = true turns actions off")
    print(clean(run_async(_signal(config, args.host, args.pid, args.signal)), 200))
    return 0
