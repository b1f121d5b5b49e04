"""The features of nomadlab, each declared once, with the parts it brings.

A :class:`Feature` names its parts, one kind each, all typed:

- ``service``: how its service is made from the app's :class:`FeatureContext` and
  where the app keeps it (a field of ``ui.services.Services``, typed with the real
  class); the app starts and stops it (core/features.py ``FeatureService``);
- ``screen``: its full screen (a mode of the app, on key ``key``);
- ``pane``: its pane on the workspace (a ``[workspace] panes`` name);
- ``commands``: its top-level CLI commands, names in ``nomadlab.cli.COMMANDS``
  (that table stays the CLI's own: ``nomadlab --version`` imports no feature);
- ``schema``: its components of the store's migrations (``core.migrations.MIGRATIONS``).

The app (ui/app.py: modes, keys, help, start and stop), the workspace (ui/panes.py),
``nomadlab`` and ``nomadlab tail`` (cli/tui.py) and ``nomadlab report`` (cli/focus.py)
iterate :data:`FEATURES`. A new feature copies the shape of one below.

Importing this module costs nothing: each part imports its module (Textual, SSH, a
feature's service) when it is called, not before, so a CLI command that needs the
board service does not load the UI.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

from nomadlab.core.features import FeatureService

if TYPE_CHECKING:
    from textual.screen import Screen
    from textual.widget import Widget

    from nomadlab.core.board import BoardService
    from nomadlab.core.clock import Clock
    from nomadlab.core.config import Config
    from nomadlab.core.focus import FocusService
    from nomadlab.core.papers import PaperService
    from nomadlab.core.store import Store
    from nomadlab.notify.hub import AlertHub
    from nomadlab.remote.fleet import Fleet
    from nomadlab.remote.jobs_service import JobsService
    from nomadlab.remote.tail import Logs
    from nomadlab.ui.services import Services


@dataclass(frozen=True, slots=True)
class FeatureContext:
    """What a feature's service is made from: the app's shared parts."""

    config: Config
    store: Store
    clock: Clock
    fleet: Fleet
    logs: Logs
    alerts: AlertHub


S = TypeVar("S", bound=FeatureService)


class ServicePart(Protocol):
    """Makes a feature's service and keeps it in the app's Services."""

    def install(self, context: FeatureContext, services: Services) -> FeatureService: ...


class ScreenPart(Protocol):
    """A feature's full screen, made when its mode is first shown."""

    def __call__(self, services: Services) -> Screen[None]: ...


class PanePart(Protocol):
    """A feature's pane on the workspace."""

    def __call__(self, services: Services) -> Widget: ...


@dataclass(frozen=True, slots=True)
class Service(Generic[S]):
    """A :class:`ServicePart`: ``make`` builds the service, ``keep`` stores it in its
    typed field of the Services (mypy checks that the two agree)."""

    make: Callable[[FeatureContext], S]
    keep: Callable[[Services, S], None]

    def install(self, context: FeatureContext, services: Services) -> S:
        service = self.make(context)
        self.keep(services, service)
        return service


@dataclass(frozen=True, slots=True)
class Schema:
    """A feature's store schema: its components of ``core.migrations.MIGRATIONS``."""

    components: tuple[str, ...] = ()

    def migrations(self) -> dict[str, list[str]]:
        from nomadlab.core.migrations import MIGRATIONS

        return {name: MIGRATIONS[name] for name in self.components}


@dataclass(frozen=True, slots=True)
class Feature:
    """A feature and its parts: its screen, service, pane, CLI commands and store schema."""
    key: str  # its name: the app's mode, the pane's config name
    title: str  # "Board": the screen's and the pane's title
    mode_key: str  # the key that opens its screen ("3"), shown in the pane's border
    screen: ScreenPart
    service: ServicePart | None = None  # None: a shared part the app makes first
    pane: PanePart | None = None
    commands: tuple[str, ...] = ()
    schema: Schema = Schema()


# --------------------------------------------------------------------------- fleet


def _fleet_screen(services: Services) -> Screen[None]:
    from nomadlab.ui.fleet.screen import FleetScreen

    return FleetScreen(services)


def _fleet_pane(services: Services) -> Widget:
    from nomadlab.ui.fleet.pane import FleetPane

    return FleetPane(services)


FLEET = Feature(
    "fleet", "Fleet", "1", _fleet_screen, pane=_fleet_pane,
    commands=("status", "hosts", "secret", "watch", "exporter", "signal", "attach"),
    schema=Schema(("fleet", "energy")))


# --------------------------------------------------------------------------- logs


def _logs_screen(services: Services) -> Screen[None]:
    from nomadlab.ui.logs.screen import LogsScreen

    return LogsScreen(services)


def _logs_pane(services: Services) -> Widget:
    from nomadlab.ui.logs.pane import LogPane

    return LogPane(services)


LOGS = Feature("logs", "Logs", "2", _logs_screen, pane=_logs_pane, commands=("tail",))


# --------------------------------------------------------------------------- board


def _make_board(context: FeatureContext) -> BoardService:
    from nomadlab.core.board import make_service

    return make_service(config=context.config, store=context.store, clock=context.clock,
                        fleet=context.fleet, logs=context.logs, alerts=context.alerts)


def _keep_board(services: Services, board: BoardService) -> None:
    services.board = board


def _board_screen(services: Services) -> Screen[None]:
    from nomadlab.ui.board.screen import BoardScreen

    return BoardScreen(services)


def _board_pane(services: Services) -> Widget:
    from nomadlab.ui.board.pane import BoardPane

    return BoardPane(services)


BOARD_SERVICE = Service(_make_board, _keep_board)
BOARD = Feature("board", "Board", "3", _board_screen, service=BOARD_SERVICE, pane=_board_pane,
                commands=("board",), schema=Schema(("board",)))


# --------------------------------------------------------------------------- papers


def _make_papers(context: FeatureContext) -> PaperService:
    from nomadlab.remote.papers_api import make_service

    return make_service(config=context.config, store=context.store, clock=context.clock)


def _keep_papers(services: Services, papers: PaperService) -> None:
    services.papers = papers


def _papers_screen(services: Services) -> Screen[None]:
    from nomadlab.ui.papers.screen import PapersScreen

    return PapersScreen(services)


def _papers_pane(services: Services) -> Widget:
    from nomadlab.ui.papers.pane import PapersPane

    return PapersPane(services)


PAPERS_SERVICE = Service(_make_papers, _keep_papers)
PAPERS = Feature("papers", "Papers", "4", _papers_screen, service=PAPERS_SERVICE,
                 pane=_papers_pane, commands=("paper",), schema=Schema(("papers",)))


# --------------------------------------------------------------------------- focus


def _make_focus(context: FeatureContext) -> FocusService:
    from nomadlab.core.focus import make_service

    return make_service(config=context.config, store=context.store, clock=context.clock,
                        alerts=context.alerts)


def _keep_focus(services: Services, focus: FocusService) -> None:
    services.focus = focus


def _focus_screen(services: Services) -> Screen[None]:
    from nomadlab.ui.focus.screen import FocusScreen

    return FocusScreen(services)


def _focus_pane(services: Services) -> Widget:
    from nomadlab.ui.focus.pane import FocusPane

    return FocusPane(services)


FOCUS_SERVICE = Service(_make_focus, _keep_focus)
FOCUS = Feature("focus", "Focus", "5", _focus_screen, service=FOCUS_SERVICE, pane=_focus_pane,
                commands=("focus", "today", "report"), schema=Schema(("focus",)))


# --------------------------------------------------------------------------- alerts


def _alerts_screen(services: Services) -> Screen[None]:
    from nomadlab.ui.alerts.screen import AlertsScreen

    return AlertsScreen(services)


ALERTS = Feature("alerts", "Alerts", "!", _alerts_screen, commands=("alerts",),
                 schema=Schema(("alerts",)))


# --------------------------------------------------------------------------- jobs


def _make_jobs(context: FeatureContext) -> JobsService:
    from nomadlab.remote.jobs_service import make_service

    return make_service(config=context.config, store=context.store, clock=context.clock,
                        fleet=context.fleet, alerts=context.alerts)


def _keep_jobs(services: Services, jobs: JobsService) -> None:
    services.jobs = jobs


def _jobs_screen(services: Services) -> Screen[None]:
    from nomadlab.ui.jobs.screen import JobsScreen

    return JobsScreen(services)


def _jobs_pane(services: Services) -> Widget:
    from nomadlab.ui.jobs.pane import JobsPane

    return JobsPane(services)


JOBS_SERVICE = Service(_make_jobs, _keep_jobs)
JOBS = Feature("jobs", "Jobs", "6", _jobs_screen, service=JOBS_SERVICE, pane=_jobs_pane,
               commands=("jobs",), schema=Schema(("jobs",)))


# --------------------------------------------------------------------------- the registry

# In the order of the app's modes (help, command palette).
FEATURES: tuple[Feature, ...] = (FLEET, LOGS, BOARD, PAPERS, FOCUS, ALERTS, JOBS)

# CLI commands of the app as a whole, no one feature's.
APP_COMMANDS = ("demo", "completion")


def install_services(context: FeatureContext, services: Services) -> list[FeatureService]:
    """Make every feature's service into ``services``; then link those that speak to
    each other: board cards follow their Slurm job. (Focus is linked to the board and
    the papers when its screen or pane first asks for it: ui/focus/text.py.)"""
    made = [feature.service.install(context, services)
            for feature in FEATURES if feature.service is not None]
    if services.board is not None:
        services.board.jobs = services.jobs
    return made


__all__ = ["ALERTS", "APP_COMMANDS", "BOARD", "FEATURES", "FLEET", "FOCUS", "JOBS", "LOGS",
           "PAPERS", "Feature", "FeatureContext", "PanePart", "Schema", "ScreenPart", "Service",
           "ServicePart", "install_services"]
