"""Where host and GPU samples come from: one interface for every kind of source.

A :class:`Source` is an SSH host's agent, this machine, the in-process demo, or a
monitoring system such as Prometheus. Whatever its kind, it produces the same model
through the same four :class:`SourceListener` calls:

- ``host_status(HostStatus)``: a host's state (``CONNECTING``, ``LIVE``, ``STALE``,
  ``RECONNECTING``, ``DOWN``, ...) with its error;
- ``host_sample(HostSample)``: a host's figures;
- ``source_status(SourceStatus)``: the source's own state, ``CONNECTING`` -> ``LIVE``
  -> ``FAILED`` (with the reason) and back;
- ``host_history(host, gpu, util, memory)``: past points for a host seen for the
  first time (sparklines), where the source keeps any.

The fleet attaches one listener per source, starts them, and routes per-host actions
(retry, commands) to the source that feeds the host; it never asks a source's kind.
"""

from __future__ import annotations

import enum
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

from nomadlab.core.model import HostSample, HostState, HostStatus

Points = list[tuple[float, float]]  # (wall clock, value)


class SourceState(enum.StrEnum):
    CONNECTING = "connecting"
    LIVE = "live"
    FAILED = "failed"


@dataclass(slots=True)
class SourceStatus:
    """A source of many hosts (Prometheus, a demo): its state, error, host count and last
    refresh."""
    name: str
    kind: str
    state: SourceState = SourceState.CONNECTING
    error: str | None = None
    hosts: list[str] = field(default_factory=list)
    refreshed: float | None = None  # wall clock of the last good refresh


class SourceError(Exception):
    """A request a source cannot carry out (not connected, not supported): the reason."""


class SourceListener(Protocol):
    def host_status(self, status: HostStatus) -> None: ...

    def host_sample(self, sample: HostSample) -> None: ...

    def source_status(self, status: SourceStatus) -> None: ...

    def host_history(self, host: str, gpu: int, util: Points, memory: Points) -> None: ...


class _Unheard:
    """The listener of a source nobody attached to yet: hears nothing."""

    def host_status(self, status: HostStatus) -> None:
        pass

    def host_sample(self, sample: HostSample) -> None:
        pass

    def source_status(self, status: SourceStatus) -> None:
        pass

    def host_history(self, host: str, gpu: int, util: Points, memory: Points) -> None:
        pass


UNHEARD: SourceListener = _Unheard()


def host_source_state(state: HostState) -> SourceState:
    """A one-host source's state, from its host's: up while samples come."""
    if state is HostState.CONNECTING:
        return SourceState.CONNECTING
    if state is HostState.LIVE:
        return SourceState.LIVE
    return SourceState.FAILED


def one_host_status(kind: str, status: HostStatus) -> SourceStatus:
    """A one-host source's own state: its host's, its error, its last sample."""
    return SourceStatus(status.name, kind, host_source_state(status.state), status.error,
                        [status.name], status.last_sample)


class HostTeller:
    """Tells a listener a one-host source's host state, and the source's when it changed."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        # the fleet tells every source's first state (connecting) when it starts them
        self._told: tuple[SourceState, str | None] = (SourceState.CONNECTING, None)

    def tell(self, listener: SourceListener, status: HostStatus) -> None:
        listener.host_status(status)
        source = one_host_status(self.kind, status)
        if (source.state, source.error) != self._told:
            self._told = (source.state, source.error)
            listener.source_status(source)


class Source(ABC):
    """One place host and GPU samples come from; see the module's docstring.

    ``one_host`` sources (an SSH host, this machine) are their host: their state is
    the host's, shown on its row, and ``nomadlab status --json`` lists them under
    ``hosts`` only. The others (a Prometheus, the demo) feed many hosts, found as they
    come, and are listed under ``sources`` as well.
    """

    kind: ClassVar[str]
    one_host: ClassVar[bool] = False

    @property
    @abstractmethod
    def name(self) -> str:
        """The host's name (a one-host source) or the source's name."""

    @property
    @abstractmethod
    def source_status(self) -> SourceStatus:
        """The source's own state, as last told to its listener."""

    @abstractmethod
    def attach(self, listener: SourceListener) -> None:
        """Who hears this source from now on (before :meth:`start`)."""

    @abstractmethod
    def start(self) -> None:
        """Begin producing, in tasks of the running event loop."""

    @abstractmethod
    async def stop(self) -> None:
        """Stop every task and connection; nothing is told after this returns."""

    def initial_hosts(self) -> list[HostStatus]:
        """Hosts known before the first result (listed as connecting); others come later."""
        return []

    async def ready(self) -> None:  # noqa: B027 (optional: for sources of many hosts)
        """Returns after the first result (good or failed), for one-shot reports.

        One-host sources are waited for through their host's status instead.
        """

    def set_interval(self, interval: float) -> None:  # noqa: B027 (optional: most have one)
        """Seconds between samples, where the source decides it."""

    def recheck(self) -> None:  # noqa: B027
        """The machine slept: try again now rather than at the next backoff."""

    def retry(self, host: str) -> bool:
        """Try ``host`` again now (after the user acted); False when nothing can be done."""
        return False

    def hourly_cost(self, host: str) -> float | None:
        """What one of this source's hosts costs an hour, when the source says."""
        return None

    async def request(self, host: str, command: dict[str, object],
                      timeout: float = 10.0) -> dict[str, object]:
        """A command for the agent on ``host`` (``proc``, ``signal``); its reply.

        Raises :class:`SourceError` with the reason when the source cannot ask.
        """
        raise SourceError(f"{self.name} ({self.kind}) takes no commands")
