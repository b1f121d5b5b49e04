"""What the UI is given: config, store, fleet, clock; and the fleet -> UI bridge.

The UI never opens a socket or a file of its own: it asks these objects. The bridge
coalesces fleet events: many samples per second become at most one repaint per
``window`` seconds per view (toolong's habit), and views that are not on screen do
no work at all until they are shown again.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from nomadlab.core.clock import Clock
from nomadlab.core.config import Config
from nomadlab.core.model import HostSample, HostStatus
from nomadlab.core.store import Store
from nomadlab.remote.fleet import Fleet


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


@dataclass
class LatencyProbe:
    """Benchmarks only: sample arrival -> the view that shows it was updated."""

    clock: Clock
    delays: list[float] = field(default_factory=list)

    def shown(self, received: float) -> None:
        self.delays.append(self.clock.time() - received)


@dataclass
class Services:
    config: Config
    store: Store
    fleet: Fleet
    clock: Clock
    bridge: FleetBridge = field(default_factory=FleetBridge)
    start_fleet: bool = True
    latency: LatencyProbe | None = None
    hint: str | None = None  # shown when there is no config yet

    def __post_init__(self) -> None:
        self.fleet.listeners.append(self.bridge)
