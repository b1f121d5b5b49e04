"""``nomadlab hosts list | add | remove | check | trust``."""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from nomadlab.cli.common import (
    UserError,
    add_config_option,
    config_file_path,
    config_from,
    interactive,
    print_json,
    run_async,
)
from nomadlab.core import configfile
from nomadlab.core.config import (
    Config,
    ConfigError,
    HostConfig,
    new_host_name_problem,
    new_hostname_problem,
)
from nomadlab.remote.diagnose import Diagnosis, diagnose
from nomadlab.remote.hostkeys import trust_host_key
from nomadlab.remote.ssh import Connector
from nomadlab.remote.ssh_errors import ConnectFailure, HostKeyProblem, Unreachable
from nomadlab.remote.ssh_target import Target, resolve_target
from nomadlab.ui import render


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("hosts", help="list, add, remove, check and trust GPU hosts",
                       description="Manage the [[hosts]] of the config file.")
    add_config_option(p)
    hs = p.add_subparsers(title="actions", metavar="ACTION", required=True)

    a = hs.add_parser("list", help="the configured hosts (table or --json)")
    a.add_argument("--json", action="store_true", help="machine-readable output")
    add_config_option(a)
    a.set_defaults(func=list_hosts)

    a = hs.add_parser("add", help="add a host (rewrites the config atomically, keeps .bak)")
    a.add_argument("name", help="display name, unique")
    a.add_argument("hostname", help="address or a Host alias from ~/.ssh/config")
    a.add_argument("--user")
    a.add_argument("--port", type=int)
    a.add_argument("--identity-file")
    a.add_argument("--jump", help="ProxyJump: a host name from the config or [user@]host[:port]")
    a.add_argument("--known-hosts")
    a.add_argument("--hourly-cost", type=float, metavar="COST")
    a.add_argument("--python", help="python3 on the host (default python3)")
    a.add_argument("--tag", action="append", default=[], dest="tags")
    add_config_option(a)
    a.set_defaults(func=add_host)

    a = hs.add_parser("remove", help="remove a host (rewrites the config atomically, keeps .bak)")
    a.add_argument("name")
    add_config_option(a)
    a.set_defaults(func=remove_host)

    a = hs.add_parser("check", help="diagnose hosts step by step (text or --json)")
    a.add_argument("names", nargs="*", metavar="NAME")
    a.add_argument("--json", action="store_true", help="machine-readable output")
    add_config_option(a)
    a.set_defaults(func=check_hosts)

    a = hs.add_parser("trust", help="show a host's key fingerprint and add it to known_hosts")
    a.add_argument("name")
    a.add_argument("--yes", action="store_true", help="do not ask (non-interactive use)")
    a.add_argument("--fingerprint", help="trust only if the key has this SHA256 fingerprint")
    add_config_option(a)
    a.set_defaults(func=trust_host)


def _host(config: Config, name: str) -> HostConfig:
    host = config.host(name)
    if host is None:
        known = ", ".join(h.name for h in config.hosts) or "none configured"
        raise UserError(f"unknown host {name!r} (hosts: {known})")
    return host


def list_hosts(args: argparse.Namespace) -> int:
    """The hosts, with USER/PORT/JUMP as ssh would use them (ssh_config applied)."""
    config = config_from(args)
    as_json = getattr(args, "json", False)
    if not config.hosts:
        if as_json:
            print_json([])
            return 0
        print("No hosts configured. Add one: nomadlab hosts add NAME HOSTNAME")
        return 0
    table = Table(box=None, pad_edge=False)
    for column in ("NAME", "HOSTNAME", "USER", "PORT", "JUMP", "COST/H", "TAGS"):
        table.add_column(column, no_wrap=True)
    problems: list[str] = []
    with ThreadPoolExecutor(max_workers=8) as pool:  # one ``ssh -G`` per host
        targets = list(pool.map(lambda h: resolve_target(h, config.ssh), config.hosts))
    if as_json:
        print_json([host_json(h, t) for h, t in zip(config.hosts, targets, strict=True)])
        return 0
    for h, target in zip(config.hosts, targets, strict=True):
        if target.problem:
            problems.append(f"{render.clean(h.name)}: {render.clean(target.problem)}")
        hostname = render.safe(h.hostname)
        if target.problem is None and target.host != h.hostname:
            hostname.append(render.safe(f" ({target.host})", "dim"))
        table.add_row(render.safe(h.name, "bold"), hostname,
                      render.safe(target.user if target.problem is None else h.user or ""),
                      Text(str(target.port if target.problem is None else h.port or "")),
                      render.safe(target.jump or ""),
                      Text(f"{h.hourly_cost:.2f}" if h.hourly_cost is not None else ""),
                      render.safe(", ".join(h.tags)))
    Console(highlight=False).print(table)
    for line in problems:
        print(line, file=sys.stderr)
    return 0


def host_json(h: HostConfig, target: Target) -> dict[str, Any]:
    """One host for ``hosts list --json``: user, port and jump as ssh would use them
    (None where ``ssh -G`` failed: ``problem`` says why)."""
    resolved = target.problem is None
    return {"name": h.name, "hostname": h.hostname,
            "address": target.host if resolved else None,
            "user": target.user if resolved else h.user,
            "port": target.port if resolved else h.port,
            "jump": target.jump if resolved else h.jump,
            "hourly_cost": h.hourly_cost, "tags": list(h.tags), "problem": target.problem}


def add_host(args: argparse.Namespace) -> int:
    from pathlib import Path

    problem = new_host_name_problem(args.name) or new_hostname_problem(args.hostname)
    if problem:
        raise UserError(render.clean(problem))
    host = HostConfig(name=args.name, hostname=args.hostname, user=args.user, port=args.port,
                      identity_file=args.identity_file, jump=args.jump,
                      known_hosts=args.known_hosts, hourly_cost=args.hourly_cost,
                      python=args.python or "python3", tags=list(args.tags))
    path = Path(config_file_path(args))
    configfile.add_host(path, host)
    print(f"Added {args.name} to {path}. Next: nomadlab hosts check {shlex.quote(args.name)}")
    return 0


def remove_host(args: argparse.Namespace) -> int:
    from pathlib import Path

    path = Path(config_file_path(args))
    if not path.exists():
        raise ConfigError(path, ["no such file"])
    configfile.remove_host(path, args.name)
    print(f"Removed {args.name} from {path} (previous version: {path}.bak)")
    return 0


def check_hosts(args: argparse.Namespace) -> int:
    config = config_from(args)
    hosts = [_host(config, n) for n in args.names] if args.names else config.hosts
    as_json = getattr(args, "json", False)
    if not hosts:
        if as_json:
            print_json([])
            return 0
        print("No hosts configured. Add one: nomadlab hosts add NAME HOSTNAME")
        return 0

    async def all_hosts() -> list[Diagnosis]:
        connector = Connector(config.ssh, config.hosts)
        try:
            return list(await asyncio.gather(*(diagnose(config, h, connector) for h in hosts)))
        finally:
            await connector.close()

    results = run_async(all_hosts())
    if as_json:
        print_json([{"host": r.host, "ok": r.ok,
                     "steps": [{"name": s.name, "ok": s.ok, "detail": s.detail}
                               for s in r.steps]} for r in results])
        return 0 if all(r.ok for r in results) else 1
    console = Console(highlight=False, soft_wrap=True)  # one line per step, even in a pipe
    for result in results:
        console.print(render.safe(result.host, "bold"))
        for step in result.steps:
            mark = {True: Text("  ✓ ", style="green"), False: Text("  ✗ ", style="bold red"),
                    None: Text("  · ", style="dim")}[step.ok]
            console.print(mark + Text(f"{step.name:<11}", style="bold") + render.safe(step.detail))
    return 0 if all(r.ok for r in results) else 1


def trust_host(args: argparse.Namespace) -> int:
    config = config_from(args)
    host = _host(config, args.name)

    async def probe() -> HostKeyProblem | Unreachable | None:
        connector = Connector(config.ssh, config.hosts)
        try:
            conn = await connector.connect(host)
        except HostKeyProblem as exc:
            return exc
        except Unreachable as exc:  # no key was seen: nothing to trust or to call trusted
            return exc
        except ConnectFailure as exc:
            if "host key" in str(exc):
                raise UserError(str(exc)) from None
            return None  # the key is trusted; something later failed (auth, ...)
        finally:
            await connector.close()
        conn.close()
        return None

    problem = run_async(probe())
    if isinstance(problem, Unreachable):
        print(f"{args.name}: cannot reach the host: {render.clean(str(problem))}",
              file=sys.stderr)
        return 1
    if problem is None:
        print(f"{args.name}: the host key is already trusted.")
        return 0
    info = problem.info
    if info.changed:
        print(render.clean(str(problem)), file=sys.stderr)
        print(f"Not changing {info.known_hosts}. If the host was really rebuilt, remove the old "
              f"key with: ssh-keygen -R '[{info.host}]:{info.port}' -f {info.known_hosts}",
              file=sys.stderr)
        return 1
    print(f"{args.name}: {render.clean(info.host)} port {info.port} presents an unknown key")
    print(f"  {info.key_type} {info.fingerprint}")
    if args.fingerprint and args.fingerprint.removeprefix("SHA256:") != \
            info.fingerprint.removeprefix("SHA256:"):
        print("The fingerprint does not match --fingerprint; not trusted.", file=sys.stderr)
        return 1
    if not (args.yes or args.fingerprint):
        if not interactive():
            raise UserError("not a terminal: pass --yes (or --fingerprint SHA256:...) to trust")
        answer = input("Trust this key and add it to known_hosts? [y/N] ").strip().lower()
        if answer not in ("y", "yes"):
            print("Not trusted.")
            return 1
    trust_host_key(info)
    print(f"Added to {info.known_hosts}.")
    return 0
