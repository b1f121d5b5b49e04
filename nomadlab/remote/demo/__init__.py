"""A simulated GPU fleet: ``nomadlab demo``, screenshots, benchmarks and tests.

Only NVML and /proc are simulated; the agent code that reads them is the real one.
One module per job:

- :mod:`.profiles`: the demo's hosts as described (GPU models, jobs, health events);
- :mod:`.world`: the simulation, hosts and GPUs as pure functions of time;
- :mod:`.nvml`: the pynvml API over a simulated host;
- :mod:`.simagent`: the real agent's messages over a simulated host;
- :mod:`.servers`: :class:`DemoFleet`, the hosts behind real in-process SSH servers
  (with :mod:`.logs`, training logs tailed for real, and :mod:`.sftp`);
- :mod:`.source`: :class:`DemoSource`, the hosts sampled in-process, a :class:`Source`.

``Fleet(demo.config(data_dir))`` watches a started :class:`DemoFleet` over SSH like any
other fleet; ``Fleet(config, sources=[DemoSource(...)])`` watches the same simulation
without SSH.
"""

from nomadlab.remote.demo.nvml import SimulatedNvml, SimulatedNvmlError
from nomadlab.remote.demo.profiles import PROFILES, GpuModel, HostHealth, HostProfile, JobTemplate
from nomadlab.remote.demo.servers import DemoFleet, agent_python
from nomadlab.remote.demo.simagent import (
    SimAgent,
    SimulatedHostStats,
    SimulatedProcessNames,
    sim_health_options,
)
from nomadlab.remote.demo.source import DemoSource
from nomadlab.remote.demo.world import HostCounters, SimHost, build_hosts, demo_summary

__all__ = [
    "PROFILES",
    "DemoFleet",
    "DemoSource",
    "GpuModel",
    "HostCounters",
    "HostHealth",
    "HostProfile",
    "JobTemplate",
    "SimAgent",
    "SimHost",
    "SimulatedHostStats",
    "SimulatedNvml",
    "SimulatedNvmlError",
    "SimulatedProcessNames",
    "agent_python",
    "build_hosts",
    "demo_summary",
    "sim_health_options",
]
