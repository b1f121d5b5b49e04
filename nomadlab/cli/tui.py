"""``nomadlab``: the TUI."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from nomadlab.cli.common import config_from
from nomadlab.core.clock import SYSTEM_CLOCK, Clock
from nomadlab.core.config import Config
from nomadlab.core.store import Store
from nomadlab.remote.fleet import Fleet

if TYPE_CHECKING:
    from nomadlab.ui.app import NomadApp

NO_CONFIG_HINT = (
    "No config yet: showing this machine only. Add a GPU host with "
    "`nomadlab hosts add NAME HOSTNAME`, or copy config.example.toml to "
    "~/.config/nomadlab/config.toml."
)


def build_app(config: Config, *, clock: Clock = SYSTEM_CLOCK, start_fleet: bool = True,
              store: Store | None = None, fleet: Fleet | None = None) -> NomadApp:
    """The app with its services (tests and the demo build it the same way)."""
    from nomadlab.ui.app import NomadApp
    from nomadlab.ui.services import Services

    store = store if store is not None else Store(config.database)
    fleet = fleet if fleet is not None else Fleet(config, store=store, clock=clock)
    hint = NO_CONFIG_HINT if config.source is None and not config.hosts else None
    services = Services(config=config, store=store, fleet=fleet, clock=clock,
                        start_fleet=start_fleet, hint=hint)
    return NomadApp(services)


def run(args: argparse.Namespace) -> int:
    config = config_from(args)
    app = build_app(config)
    app.run()
    return 0
