"""What the UI is given: config, store, fleet, clock; and the fleet -> UI bridge.

The UI never opens a socket or a file of its own: it asks these objects. The bridge
coalesces fleet events: many samples per second become at most one repaint per
``window`` seconds per view (toolong's habit), and views that are not on screen do
no work at all until they are shown again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from nomadlab.core.clock import Clock
from nomadlab.core.config import Config
from nomadlab.core.logs import LogLine, LogStatus
from nomadlab.core.model import HostSample, HostStatus
from nomadlab.core.store import Store
from nomadlab.remote.fleet import Fleet

if TYPE_CHECKING:
    from nomadlab.core.board import BoardService
    from nomadlab.core.features import FeatureService
    from nomadlab.core.focus import FocusService
    from nomadlab.core.papers import PaperService
    from nomadlab.notify.hub import AlertHub
    from nomadlab.remote.jobs_service import JobsService
    from nomadlab.remote.tail import Logs


class FleetBridge:
    """A fleet listener that counts changes per host and pokes subscribed views."""

    def __init__(self) -> None:
        self.version = 0
        self.host_versions: dict[str, int] = {}
        self.received: dict[str, float] = {}  # host -> when its newest sample arrived
        self._subscribers: list[Callable[[], None]] = []

    def subscribe(self, callback: Callable[[], None]) -> None:
        self._subscribers.append(callback)

    def unsubscribe(self, callback: Callable[[], None]) -> None:
        if callback in self._subscribers:
            self._subscribers.remove(callback)

    def _bump(self, host: str) -> None:
        self.version += 1
        self.host_versions[host] = self.version
        for callback in list(self._subscribers):
            callback()

    def fleet_status(self, status: HostStatus) -> None:
        self._bump(status.name)

    def fleet_sample(self, sample: HostSample) -> None:
        self.received[sample.host] = sample.received
        self._bump(sample.host)


LinesCallback = Callable[[str, list[LogLine]], None]
LogStatusCallback = Callable[[LogStatus], None]


class LogBridge:
    """A log listener that hands batches of lines and statuses to subscribed views."""

    def __init__(self) -> None:
        self._lines: list[LinesCallback] = []
        self._status: list[LogStatusCallback] = []
        self.last_active: str | None = None  # the log that most recently had new lines

    def subscribe(self, lines: LinesCallback | None = None,
                  status: LogStatusCallback | None = None) -> None:
        if lines is not None:
            self._lines.append(lines)
        if status is not None:
            self._status.append(status)

    def unsubscribe(self, lines: LinesCallback | None = None,
                    status: LogStatusCallback | None = None) -> None:
        if lines in self._lines:
            self._lines.remove(lines)
        if status in self._status:
            self._status.remove(status)

    def log_lines(self, name: str, lines: list[LogLine]) -> None:
        if lines:
            self.last_active = name
        for callback in list(self._lines):
            callback(name, lines)

    def log_status(self, status: LogStatus) -> None:
        for callback in list(self._status):
            callback(status)


@dataclass
class LatencyProbe:
    """Benchmarks only: sample arrival -> the view that shows it was updated."""

    clock: Clock
    delays: list[float] = field(default_factory=list)

    def shown(self, received: float) -> None:
        self.delays.append(self.clock.time() - received)


@dataclass
class Services:
    """What the UI is given: config, store, fleet, logs, alerts, the feature services, and the
    bridges."""
    config: Config
    store: Store
    fleet: Fleet
    clock: Clock
    logs: Logs | None = None
    alerts: AlertHub | None = None
    # Feature services, made by the registry (nomadlab/features.py) in cli/tui.build_app:
    board: BoardService | None = None
    papers: PaperService | None = None
    focus: FocusService | None = None
    jobs: JobsService | None = None
    bridge: FleetBridge = field(default_factory=FleetBridge)
    log_bridge: LogBridge = field(default_factory=LogBridge)
    start_fleet: bool = True
    latency: LatencyProbe | None = None
    hint: str | None = None  # shown when there is no config yet
    initial_mode: str = "workspace"
    initial_log: tuple[str, str] | None = None  # `nomadlab tail HOST:PATH`
    # `nomadlab` makes the feature services after its first frame (cli/tui.build_app):
    # until then this makes them, once; see install_features.
    feature_installer: Callable[[], object] | None = None
    feature_listeners: list[Callable[[], None]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.fleet.listeners.append(self.bridge)
        if self.logs is not None:
            self.logs.listeners.append(self.log_bridge)

    @property
    def features_ready(self) -> bool:
        """Whether the feature services (board, papers, focus, jobs) are made."""
        return self.feature_installer is None

    def install_features(self) -> bool:
        """Make the feature services now if they were left to be made (after the first
        frame, or on first use: a feature's screen); then tell the listeners (the
        workspace fills its panes). True if they were made by this call."""
        installer, self.feature_installer = self.feature_installer, None
        if installer is None:
            return False
        installer()
        for listener in list(self.feature_listeners):
            listener()
        self.feature_listeners.clear()
        return True

    def feature_services(self) -> list[FeatureService]:
        """The feature services there are, in the order they start."""
        found: list[FeatureService | None] = [self.board, self.papers, self.focus, self.jobs]
        return [service for service in found if service is not None]
