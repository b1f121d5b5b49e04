"""``nomadlab status``: one sample per host as a table or JSON; exit 1 if any failed."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from nomadlab.cli.common import UserError, add_config_option, config_from, print_json, run_async
from nomadlab.core import health
from nomadlab.core.config import Thresholds
from nomadlab.core.model import LOCAL_HOST, HostState
from nomadlab.core.source import SourceState, SourceStatus
from nomadlab.remote.oneshot import HostReport, sample_once
from nomadlab.ui import render


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("status", help="one sample per host (table or --json); exit 1 on failure",
                       description="Take one sample from every host and print it. Exit status "
                                   "0 when every host answered, 1 otherwise.")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--host", action="append", metavar="NAME", default=None,
                   help="only this host (repeatable; 'local' is this machine)")
    p.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                   help="give up on a host after this long")
    add_config_option(p)
    p.set_defaults(func=run)


def state_text(report: HostReport) -> str:
    """'live', 'stale', 'unreachable', 'auth failed', 'host key unknown', ..."""
    state = report.status.state
    if report.ok:
        return "stale" if state is HostState.STALE else "live"
    if state is HostState.RECONNECTING:  # the one attempt failed; status does not retry
        return "unreachable"
    return str(state)


def report_json(report: HostReport) -> dict[str, Any]:
    sample = report.sample
    status = report.status
    out: dict[str, Any] = {
        "name": report.name,
        "state": state_text(report),
        "error": None if report.ok else (status.error or str(status.state)),
        "cpu_percent": sample.cpu_percent if sample else None,
        "memory_used_mib": sample.memory_used_mib if sample else None,
        "memory_total_mib": sample.memory_total_mib if sample else None,
        "load1": sample.load1 if sample else None,
        "gpus": [],
    }
    if sample is not None:
        out["gpus"] = [
            {
                "index": g.index, "name": g.name, "uuid": g.uuid, "utilization": g.utilization,
                "memory_used_mib": g.memory_used_mib, "memory_total_mib": g.memory_total_mib,
                "temperature_c": g.temperature_c, "power_w": g.power_w,
                "power_limit_w": g.power_limit_w,
                "processes": [{"pid": p.pid, "user": p.user, "command": p.command,
                               "memory_mib": p.memory_mib} for p in g.processes],
                **health.gpu_json(g),
            }
            for g in sample.gpus
        ]
    if status.info is not None and status.info.gpu_count == 0 and report.ok:
        out["note"] = status.info.reason or "no GPU"
    if sample is not None and not sample.processes_known:
        out["note"] = "processes not reported by this source"
    out["source"] = report.source
    return out


def source_json(status: SourceStatus) -> dict[str, Any]:
    return {"name": status.name, "kind": status.kind, "state": str(status.state),
            "error": status.error, "hosts": len(status.hosts)}


def print_table(reports: list[HostReport], th: Thresholds) -> None:
    console = Console(highlight=False, soft_wrap=False)
    table = Table(box=None, pad_edge=False, show_edge=False)
    for column in ("HOST", "STATE", "GPU", "UTIL", "MEMORY", "TEMP", "POWER", "PROCS"):
        # Only the GPU column (names, host stats, errors) wraps when the terminal is
        # narrow: squeezing every column would cut the numbers to "10…".
        table.add_column(column, no_wrap=column != "GPU")
    for report in reports:
        name = render.safe(report.name, "bold")
        if not report.ok:
            table.add_row(name, Text(state_text(report), style="red"),
                          render.safe(report.status.error or "", "red"))
            continue
        sample = report.sample
        assert sample is not None
        table.add_row(name, Text("live", style="green"), render.host_stats(sample))
        if not sample.gpus and report.status.info is not None:
            table.add_row("", "", render.safe(report.status.info.reason or "no GPU", "dim"))
        for gpu in sample.gpus:
            table.add_row(
                "", "", render.safe(f"{gpu.index} {gpu.name}"),
                Text(render.percent(gpu.utilization), style=render.util_style(gpu.utilization)),
                render.memory_cell(gpu, th), render.temp_cell(gpu, th), render.power_cell(gpu, th),
                Text(str(len(gpu.processes))) if sample.processes_known
                else Text("n/a", style="dim"),
            )
    if not console.is_terminal:  # a pipe or a file: whole lines, not a guessed 80 columns
        wide = console.options.update_width(400)
        console.width = max(console.width, console.measure(table, options=wide).maximum)
    console.print(table)


def run(args: argparse.Namespace) -> int:
    config = config_from(args)
    names = args.host
    if names:
        known = [h.name for h in config.hosts] + [LOCAL_HOST]
        unknown = [n for n in names if n not in known]
        if unknown:
            raise UserError(f"unknown host {unknown[0]!r} (hosts: {', '.join(known)})")
    sources: list[SourceStatus] = []
    reports = run_async(sample_once(config, names, timeout=args.timeout, sources=sources))
    if args.json:
        print_json({"hosts": [report_json(r) for r in reports],
                    "sources": [source_json(s) for s in sources]})
    else:
        print_table(reports, config.fleet.thresholds)
        for report in reports:
            if not report.ok:
                print(f"{report.name}: {render.clean(report.status.error or '')}",
                      file=sys.stderr)
        for source in sources:
            if source.state is SourceState.FAILED:
                print(f"source {source.name}: {render.clean(source.error or '')}",
                      file=sys.stderr)
    failed = any(s.state is not SourceState.LIVE for s in sources)
    return 0 if all(r.ok for r in reports) and not failed else 1
