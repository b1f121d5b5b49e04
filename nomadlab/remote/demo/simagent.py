"""The real agent code over a simulated host: what each agent session streams."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from nomadlab.hostside import agent as _agent_module
from nomadlab.remote.demo.nvml import SimulatedNvml
from nomadlab.remote.demo.world import SimHost

# The agent module is Python 3.8 stdlib code without annotations: use it through Any.
_agent: Any = _agent_module


class SimulatedProcessNames:
    """The ``names`` object NvmlGpus asks for (user, command line) per pid."""

    def __init__(self, host: SimHost) -> None:
        self.host = host

    def lookup(self, pids: Iterable[int]) -> dict[int, tuple[str, str]]:
        return {pid: self.host.commands.get(pid, ("?", "")) for pid in pids}


class SimulatedHostStats:
    """The object with ``sample()`` the agent asks for CPU %, RAM and load."""

    def __init__(self, host: SimHost) -> None:
        self.host = host

    def sample(self) -> dict[str, float | None]:
        return self.host.host_sample()


def sim_health_options(host: SimHost) -> dict[str, Any]:
    """The agent's health reader on a simulated host: every field every sample, on the
    simulation's clocks, XIDs taken at each sample (no thread): the same samples every
    run."""
    return {"every": 1, "monotonic": host.clock.monotonic, "wall": host.clock.time,
            "thread": False}


class SimAgent:
    """One agent process on a simulated host: the real agent code, simulated inputs."""

    def __init__(self, host: SimHost) -> None:
        self.host = host
        self.nvml = SimulatedNvml(host)
        self.gpus: Any = _agent.NvmlGpus(self.nvml, names=SimulatedProcessNames(host),
                                         health_options=sim_health_options(host))
        self.stats = SimulatedHostStats(host)

    def hello(self) -> dict[str, Any]:
        message: dict[str, Any] = _agent.hello_message(self.gpus, hostname=self.host.name)
        message["python"] = self.host.profile.python  # the host's python, not ours
        return message

    def sample(self) -> dict[str, Any]:
        message: dict[str, Any] = _agent.sample_message(self.gpus, self.stats)
        message["t"] = round(self.host.clock.time(), 3)  # the host's clock: the sim's
        return message

    def close(self) -> None:
        self.gpus.close()
