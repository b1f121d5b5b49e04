"""``nomadlab exporter``: serve the fleet nomadlab watches to Prometheus.

Binds to loopback unless told otherwise. Alerts are evaluated (and counted in
``nomadlab_alerts_total``) but not delivered: run ``nomadlab watch`` next to it for that.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from typing import Any

from nomadlab.cli.common import UserError, add_config_option, config_from, stop_on_signals
from nomadlab.core.alert_engine import AlertEngine
from nomadlab.core.alerts import rules_for
from nomadlab.core.config import Config
from nomadlab.core.model import HostSample, HostStatus

DEFAULT_LISTEN = "127.0.0.1:9835"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("exporter", help="serve the watched GPUs to Prometheus (DCGM names)",
                       description=__doc__)
    p.add_argument("--listen", default=DEFAULT_LISTEN, metavar="ADDRESS:PORT",
                   help=f"where to serve /metrics (default {DEFAULT_LISTEN})")
    add_config_option(p)
    p.set_defaults(func=run)


class _Alerts:
    """A fleet listener feeding the (pure) alert engine; counts what it raises."""

    def __init__(self, engine: AlertEngine, counter: Any) -> None:
        self.engine = engine
        self.counter = counter

    def fleet_status(self, status: HostStatus) -> None:
        self.counter.add(self.engine.on_status(status))

    def fleet_sample(self, sample: HostSample) -> None:
        self.counter.add(self.engine.on_sample(sample))


async def serve(config: Config, address: str, port: int,
                stop: asyncio.Event | None = None) -> None:
    # imported here: every other command starts without prometheus-client
    from prometheus_client import CollectorRegistry, start_http_server

    from nomadlab.remote.exporter import AlertCounter, FleetCollector
    from nomadlab.remote.fleet import Fleet

    stop = stop or asyncio.Event()
    stop_on_signals(stop)
    # hosts from [[sources]] are in a Prometheus already: not re-exported, not polled
    fleet = Fleet(config, hosts=[h.name for h in config.hosts] + (
        ["local"] if config.show_local else []))
    counter = AlertCounter()
    costs = {**config.hosts_cost, **{h.name: h.hourly_cost for h in config.hosts
                                     if h.hourly_cost is not None}}
    engine = AlertEngine(rules_for(config), fleet.clock, costs)
    fleet.listeners.append(_Alerts(engine, counter))
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(fleet.latest, fleet.statuses, fleet.clock, counter))
    try:
        server, thread = start_http_server(port, addr=address, registry=registry)
    except OSError as exc:
        raise UserError(f"cannot listen on {address}:{port}: "
                        f"{(exc.strerror or str(exc)).lower()}") from None
    print(f"nomadlab exporter: serving http://{address}:{port}/metrics "
          f"({len(fleet.names())} hosts)", file=sys.stderr, flush=True)
    await fleet.start()
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
            counter.add(engine.tick())
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        await fleet.stop()


def run(args: argparse.Namespace) -> int:
    config = config_from(args)
    from nomadlab.remote.exporter import parse_listen

    try:
        address, port = parse_listen(args.listen)
    except ValueError as exc:
        raise UserError(f"--listen: {exc}") from None
    asyncio.run(serve(config, address, port))
    return 0
