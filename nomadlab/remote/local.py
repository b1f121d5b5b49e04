"""The local machine, sampled in-process: psutil for the host, NVML for the GPUs.

NVML calls block (a few ms each; longer when a GPU is in trouble), so each sample is
taken in a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from typing import Any

import psutil

from nomadlab.core.clock import Clock
from nomadlab.core.model import (
    LOCAL_HOST,
    AgentInfo,
    GpuSource,
    HostSample,
    HostState,
    HostStatus,
)
from nomadlab.hostside import agent
from nomadlab.remote.protocol import AgentDecoder


class LocalSampler:
    def __init__(self, clock: Clock, interval: float,
                 on_status: Callable[[HostStatus], None],
                 on_sample: Callable[[HostSample], None],
                 gpus: Any = None) -> None:
        self.clock = clock
        self.interval = interval
        self.on_status = on_status
        self.on_sample = on_sample
        self._gpus = gpus
        self._decoder = AgentDecoder(LOCAL_HOST)
        self._task: asyncio.Task[None] | None = None
        self.status = HostStatus(LOCAL_HOST, HostState.CONNECTING, since=clock.time())

    def _open(self) -> AgentInfo:
        if self._gpus is None:
            self._gpus = agent.open_gpus(self.interval)
        hello = agent.hello_message(self._gpus, socket.gethostname())
        info = self._decoder.hello_event(hello)
        psutil.cpu_percent(None)  # prime: the first call has nothing to compare with
        return info

    def _sample(self) -> HostSample:
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
            "gpus": self._gpus.sample(),
        }
        return self._decoder.sample_event(message, now)

    async def run(self) -> None:
        try:
            info = await asyncio.to_thread(self._open)
        except Exception as exc:  # NVML crashed in a new way: still show the host
            self._gpus = agent.NoGpu(f"GPU probe failed: {exc}")
            info = AgentInfo(socket.gethostname(), agent.AGENT_VERSION, None, GpuSource.NONE,
                             None, 0, str(exc))
        self.status = HostStatus(LOCAL_HOST, HostState.LIVE, since=self.clock.time(), info=info)
        self.on_status(self.status)
        try:
            while True:
                try:
                    sample = await asyncio.to_thread(self._sample)
                except Exception as exc:  # a GPU fell off the bus: say so, keep going
                    self.status.error = f"sampling failed: {exc}"
                    self.on_status(self.status)
                else:
                    self.status.last_sample = sample.received
                    self.on_sample(sample)
                await asyncio.sleep(self.interval)
        finally:
            with contextlib.suppress(Exception):
                self._gpus.close()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(), name="local")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
