"""``nomadlab`` (the TUI) and ``nomadlab tail HOST:PATH`` (the TUI on one log)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from nomadlab.cli.common import UserError, add_config_option, config_from
from nomadlab.core.clock import SYSTEM_CLOCK, Clock
from nomadlab.core.config import Config
from nomadlab.core.model import LOCAL_HOST
from nomadlab.core.store import Store
from nomadlab.notify.hub import AlertHub
from nomadlab.remote.fleet import Fleet
from nomadlab.remote.tail import Logs

if TYPE_CHECKING:
    from nomadlab.ui.app import NomadApp

NO_CONFIG_HINT = (
    "No config yet: showing this machine only. Add a GPU host with "
    "`nomadlab hosts add NAME HOSTNAME`, or copy config.example.toml to "
    "~/.config/nomadlab/config.toml."
)


def build_app(config: Config, *, clock: Clock = SYSTEM_CLOCK, start_fleet: bool = True,
              store: Store | None = None, fleet: Fleet | None = None,
              logs: Logs | None = None, alerts: AlertHub | None = None,
              initial_mode: str = "workspace",
              initial_log: tuple[str, str] | None = None,
              defer_features: bool = False) -> NomadApp:
    """The app with its services (tests and the demo build it the same way); each
    feature's service is made by the registry, nomadlab/features.py. With
    ``defer_features`` (``nomadlab``), the feature services and their modules are made
    after the first frame is painted, or when a feature's screen is first shown."""
    from functools import partial

    from nomadlab.features import FeatureContext, install_services
    from nomadlab.ui.app import NomadApp
    from nomadlab.ui.services import Services

    store = store if store is not None else Store(config.database)
    fleet = fleet if fleet is not None else Fleet(config, store=store, clock=clock)
    logs = logs if logs is not None else Logs(config, fleet, clock)
    if alerts is None:
        alerts = AlertHub(config, store, clock=clock)
    if alerts not in fleet.listeners:
        fleet.listeners.append(alerts)
    if alerts not in logs.listeners:
        logs.listeners.append(alerts)
    hint = (NO_CONFIG_HINT if config.source is None and not config.hosts and not config.logs
            else None)
    services = Services(config=config, store=store, fleet=fleet, clock=clock, logs=logs,
                        alerts=alerts, start_fleet=start_fleet, hint=hint,
                        initial_mode=initial_mode, initial_log=initial_log)
    context = FeatureContext(config=config, store=store, clock=clock, fleet=fleet, logs=logs,
                             alerts=alerts)
    services.feature_installer = partial(install_services, context, services)
    if not defer_features:
        services.install_features()
    return NomadApp(services)


def require_terminal() -> None:
    """The TUI draws on a terminal and reads keys from it: refuse at once without one
    (``nomadlab </dev/null >/dev/null`` would otherwise run until killed)."""
    for name, stream in (("stdin", sys.stdin), ("stdout", sys.stdout)):
        if stream is None or not stream.isatty():
            raise UserError(f"the TUI needs a terminal, and {name} is not one; for scripts "
                            "use `nomadlab status --json` or `nomadlab watch`")


def run(args: argparse.Namespace) -> int:
    config = config_from(args)
    require_terminal()
    app = build_app(config, defer_features=True)
    app.run()
    return exit_status(app)


def register_tail(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("tail", help="open the TUI following HOST:PATH",
                       description="Open the TUI on the logs screen following PATH on HOST "
                                   "(a [[hosts]] name, or 'local'). PATH may start with ~ and "
                                   "may be a glob: the newest match is followed.")
    p.add_argument("spec", metavar="HOST:PATH")
    add_config_option(p)
    p.set_defaults(func=run_tail)


def parse_spec(spec: str, config: Config) -> tuple[str, str]:
    host, sep, path = spec.partition(":")
    if not sep or not host or not path:
        raise UserError("expected HOST:PATH, e.g. lambda-h100:~/runs/exp42/train.log; "
                        f"got {spec!r}")
    known = [h.name for h in config.hosts] + [LOCAL_HOST]
    if host not in known:
        raise UserError(f"unknown host {host!r} (hosts: {', '.join(known)})")
    return host, path


def run_tail(args: argparse.Namespace) -> int:
    config = config_from(args)
    host, path = parse_spec(args.spec, config)
    require_terminal()
    app = build_app(config, initial_mode="logs", initial_log=(host, path),
                    defer_features=True)
    app.run()
    return exit_status(app)


def exit_status(app: NomadApp) -> int:
    """0 after a normal quit; 1 when the TUI ended on an unhandled error; 2 when it
    ended on a database error it has already said in one line."""
    code = app.return_code or 0
    if code == 1:
        print("nomadlab: the TUI stopped on an internal error (above); "
              "please report it.", file=sys.stderr)
    return code
