"""``nomadlab attach HOST [SESSION]``: the host's tmux session, in this terminal."""

from __future__ import annotations

import argparse
import shutil
import subprocess
from typing import Any

from nomadlab.cli.common import UserError, add_config_option, config_from


def register(sub: Any) -> None:
    parser = sub.add_parser("attach", help="attach to a tmux session on a host",
                            description="Run the system ssh -t with the host's address, user, "
                                        "port, jump host and known_hosts, and attach to its "
                                        "tmux SESSION (without one: the newest session, or a "
                                        "new one). Detach (C-b d) to come back.")
    parser.add_argument("host", help="a [[hosts]] name")
    parser.add_argument("session", nargs="?", default=None)
    add_config_option(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from nomadlab.remote.attach import SSH, ssh_argv
    from nomadlab.remote.tmux import check_name

    config = config_from(args)
    if config.fleet.read_only:
        raise UserError("read-only: [fleet] read_only = true turns actions off")
    host = next((h for h in config.hosts if h.name == args.host), None)
    if host is None:
        raise UserError(f"unknown host {args.host!r} (see `nomadlab hosts list`)")
    session = args.session
    if session is not None:
        try:
            session = check_name(session)
        except ValueError as exc:
            raise UserError(str(exc)) from None
    if shutil.which(SSH) is None:
        raise UserError("the ssh command is not installed (apt-get install openssh-client)")
    argv = ssh_argv(host, config.ssh, session, {h.name: h for h in config.hosts})
    return subprocess.run(argv, check=False).returncode
