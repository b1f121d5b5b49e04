"""``nomadlab jobs``: Slurm jobs of the configured clusters; cancel, hold, release.

``nomadlab jobs [--cluster C] [--all-users] [--json]`` exits 0 when every cluster
answered, 1 otherwise. ``nomadlab jobs cancel|hold|release CLUSTER:ID`` acts on one
of your own jobs; an unknown cluster or job, or someone else's job, exits 2.
"""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

from nomadlab.cli.common import (
    UserError,
    add_config_option,
    config_from,
    print_json,
    run_async,
    user_errors,
)
from nomadlab.core.config import Config
from nomadlab.core.durations import clock
from nomadlab.core.jobs.model import ClusterSnapshot
from nomadlab.core.jobs.report import cluster_json, state_words

if TYPE_CHECKING:  # imported when a jobs command runs: `nomadlab --help` stays fast
    from nomadlab.remote.slurm import ClusterClient
    from nomadlab.remote.ssh import Connector


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("jobs", help="Slurm jobs of the configured clusters (--json); "
                       "cancel/hold/release", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cluster", action="append", metavar="NAME", default=None,
                   help="only this cluster (repeatable)")
    p.add_argument("--all-users", action="store_true", help="every user's jobs, not only yours")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    add_config_option(p)
    p.set_defaults(func=run_list)
    actions = p.add_subparsers(title="actions", metavar="ACTION")
    for action in ("cancel", "hold", "release"):
        a = actions.add_parser(action, help=f"{action} one of your jobs: CLUSTER:ID")
        a.add_argument("job", metavar="CLUSTER:ID")
        add_config_option(a)
        a.set_defaults(func=run_action, action=action)


def _clients(config: Config, names: list[str] | None, all_users: bool | None
             ) -> tuple[Connector, list[ClusterClient]]:
    from nomadlab.remote.slurm import make_clients
    from nomadlab.remote.ssh import Connector

    if not config.clusters:
        raise UserError("no [[clusters]] in the config; add one (see README, Clusters)")
    for name in names or []:
        if config.cluster(name) is None:
            raise UserError(f"unknown cluster {name!r}; clusters are "
                            + ", ".join(c.name for c in config.clusters))
    connector = Connector(config.ssh, config.hosts)
    return connector, make_clients(config, connector, names=names, all_users=all_users)


async def poll_all(config: Config, names: list[str] | None, all_users: bool
                   ) -> list[ClusterSnapshot]:
    connector, clients = _clients(config, names, all_users or None)
    try:
        results = await asyncio.gather(*(c.poll() for c in clients))
        return [snap for snap, _ in results]
    finally:
        for client in clients:
            await client.runner.close()
        await connector.close()


def print_table(snaps: list[ClusterSnapshot], now: float) -> None:
    console = Console(highlight=False, soft_wrap=False)
    for snap in snaps:
        head = Text(f"{snap.name}: {snap.state}")
        if snap.error:
            head.append(f" ({snap.error})", style="red")
        if snap.partitions:
            head.append("  " + "  ".join(f"{p.name} GPUs {p.gpus_idle} idle/"
                                         f"{p.gpus_alloc} alloc/{p.gpus_total}"
                                         for p in snap.partitions))
        console.print(head)
        if not snap.jobs:
            continue
        table = Table(box=None, pad_edge=False, show_edge=False)
        for column in ("JOBID", "NAME", "USER", "STATE", "ELAPSED", "LIMIT", "PARTITION",
                       "NODES", "GPUS"):
            table.add_column(column, no_wrap=column not in ("NAME", "STATE"))
        for job in snap.jobs:
            table.add_row(Text(job.id), Text(job.name), Text(job.user), Text(state_words(job)),
                          clock(job.elapsed_s(now)), clock(job.time_limit_s),
                          Text(job.partition or "-"), Text(job.nodes or "-"),
                          str(job.gpus) if job.gpus is not None else "-")
        console.print(table)


def run_list(args: argparse.Namespace) -> int:
    config = config_from(args)
    snaps = run_async(poll_all(config, args.cluster, args.all_users))
    import time

    now = time.time()
    if args.json:
        print_json({"clusters": [cluster_json(s, now) for s in snaps]})
    else:
        print_table(snaps, now)
    return 0 if all(s.ok for s in snaps) else 1


def parse_job_ref(text: str) -> tuple[str, str]:
    cluster, sep, ident = text.rpartition(":")
    if not sep or not cluster or not ident:
        raise UserError(f"expected CLUSTER:ID, got {text!r}")
    if not all(c.isdigit() or c == "_" for c in ident) or not ident[0].isdigit():
        raise UserError(f"not a Slurm job id: {ident!r}")
    return cluster, ident


async def act(config: Config, action: str, ref: str) -> str:
    from nomadlab.remote.slurm import SlurmError

    cluster, ident = parse_job_ref(ref)
    connector, clients = _clients(config, [cluster], None)
    client = clients[0]
    try:
        snap, _ = await client.poll()
        if not snap.ok:
            raise UserError(f"cluster {cluster} did not answer: {snap.error}")
        with user_errors(SlurmError):
            job = await client.act(action, ident)
        return f"{action}: {cluster}:{job.id} ({job.name})"
    finally:
        await client.runner.close()
        await connector.close()


def run_action(args: argparse.Namespace) -> int:
    config = config_from(args)
    print(run_async(act(config, args.action, args.job)))
    return 0
