"""Hosts whose agent code runs in this process: this machine, and the simulated demo hosts.

:class:`InProcessHost` runs the sampling loop of one such host; a :class:`Probe` says
what the host is (its hello) and takes one sample. :class:`LocalSource` is this
machine (psutil for the host, NVML for the GPUs), a one-host :class:`Source` of kind
``local``.

NVML calls block (a few ms each; longer when a GPU is in trouble), so each sample is
taken in a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from typing import Any, Protocol

from nomadlab.core.clock import Clock
from nomadlab.core.model import (
    LOCAL_HOST,
    AgentInfo,
    GpuSource,
    HostSample,
    HostState,
    HostStatus,
)
from nomadlab.core.source import (
    UNHEARD,
    HostTeller,
    Source,
    SourceError,
    SourceListener,
    SourceStatus,
    one_host_status,
)
from nomadlab.core.tasks import BackgroundTask
from nomadlab.hostside import agent
from nomadlab.remote.protocol import AgentDecoder


class Probe(Protocol):
    """What an in-process host is and what it shows now (called in a worker thread)."""

    def open(self) -> AgentInfo: ...

    def sample(self) -> HostSample: ...

    def close(self) -> None: ...


class InProcessHost:
    """One host sampled in-process: CONNECTING -> LIVE, STALE (with the error) while
    sampling fails, LIVE again when it works."""

    def __init__(self, name: str, clock: Clock, interval: float, probe: Probe, *,
                 on_status: Callable[[HostStatus], None],
                 on_sample: Callable[[HostSample], None]) -> None:
        self.clock = clock
        self.interval = interval
        self.probe = probe
        self.on_status = on_status
        self.on_sample = on_sample
        self.status = HostStatus(name, HostState.CONNECTING, since=clock.time())
        self._task = BackgroundTask()

    def _set(self, state: HostState, error: str | None) -> None:
        since = self.status.since if state is self.status.state else self.clock.time()
        self.status.state, self.status.since, self.status.error = state, since, error
        self.on_status(self.status)

    async def run(self) -> None:
        self._set(HostState.CONNECTING, None)
        info = await asyncio.to_thread(self.probe.open)
        self.status.info = info
        self._set(HostState.LIVE, None)
        try:
            while True:
                try:
                    sample = await asyncio.to_thread(self.probe.sample)
                except Exception as exc:  # a GPU fell off the bus: say so, keep going
                    self._set(HostState.STALE, f"sampling failed: {exc}")
                else:
                    self.status.last_sample = sample.received
                    if self.status.state is not HostState.LIVE:
                        self._set(HostState.LIVE, None)
                    self.on_sample(sample)
                await asyncio.sleep(self.interval)
        finally:
            with contextlib.suppress(Exception):
                self.probe.close()

    def start(self) -> None:
        self._task.start(self.run, name=self.status.name)

    async def stop(self) -> None:
        await self._task.stop()
        self.status.state = HostState.STOPPED


class LocalProbe:
    """This machine: psutil for CPU and memory, the agent's GPU code (NVML) for GPUs."""

    def __init__(self, clock: Clock, interval: float, gpus: Any = None) -> None:
        self.clock = clock
        self.interval = interval
        self.gpus = gpus
        self._decoder = AgentDecoder(LOCAL_HOST)

    def open(self) -> AgentInfo:
        try:
            if self.gpus is None:
                self.gpus = agent.open_gpus(self.interval)
            hello = agent.hello_message(self.gpus, socket.gethostname())
            info = self._decoder.hello_event(hello)
        except Exception as exc:  # NVML crashed in a new way: still show the host
            self.gpus = agent.NoGpu(f"GPU probe failed: {exc}")
            info = AgentInfo(socket.gethostname(), agent.AGENT_VERSION, None, GpuSource.NONE,
                             None, 0, str(exc))
        import psutil  # here, not at import: the TUI imports this module before its first frame

        psutil.cpu_percent(None)  # prime: the first call has nothing to compare with
        return info

    def sample(self) -> HostSample:
        import psutil

        memory = psutil.virtual_memory()
        try:
            load1: float | None = psutil.getloadavg()[0]
        except (AttributeError, OSError):
            load1 = None
        now = self.clock.time()
        message = {
            "type": "sample",
            "t": now,
            "cpu": psutil.cpu_percent(None),
            "ram_used": (memory.total - memory.available) / 1048576.0,
            "ram_total": memory.total / 1048576.0,
            "load1": load1,
            "gpus": self.gpus.sample(),
        }
        return self._decoder.sample_event(message, now)

    def close(self) -> None:
        if self.gpus is not None:
            self.gpus.close()


class LocalSource(Source):
    """This machine, sampled in-process: a one-host source of kind ``local``."""

    kind = "local"
    one_host = True

    def __init__(self, clock: Clock, interval: float, gpus: Any = None) -> None:
        self.clock = clock
        self.listener = UNHEARD
        self._teller = HostTeller(self.kind)
        probe = LocalProbe(clock, interval, gpus)
        self.host = InProcessHost(LOCAL_HOST, clock, interval, probe,
                                  on_status=self._told, on_sample=self._sampled)

    def _told(self, status: HostStatus) -> None:
        self._teller.tell(self.listener, status)

    def _sampled(self, sample: HostSample) -> None:
        self.listener.host_sample(sample)

    @property
    def name(self) -> str:
        return LOCAL_HOST

    @property
    def status(self) -> HostStatus:
        return self.host.status

    @property
    def source_status(self) -> SourceStatus:
        return one_host_status(self.kind, self.host.status)

    def attach(self, listener: SourceListener) -> None:
        self.listener = listener

    def initial_hosts(self) -> list[HostStatus]:
        return [self.host.status]

    def start(self) -> None:
        self.host.start()

    async def stop(self) -> None:
        await self.host.stop()

    def set_interval(self, interval: float) -> None:
        self.host.interval = interval

    async def request(self, host: str, command: dict[str, object],
                      timeout: float = 10.0) -> dict[str, object]:
        if host != LOCAL_HOST:
            raise SourceError(f"{host} is not this machine")
        reply: dict[str, object] = await asyncio.to_thread(agent.handle_command, dict(command))
        return reply
