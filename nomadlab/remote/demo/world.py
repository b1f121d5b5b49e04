"""The simulated world: hosts, their GPUs and jobs, as pure functions of time.

The simulation is a pure function of (seed, host, GPU, clock time): two simulations
with the same seed asked at the same clock times answer the same values, whatever
they were asked before, so snapshot tests can drive it with a ``ManualClock``.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from nomadlab.core.clock import SYSTEM_CLOCK, Clock
from nomadlab.hostside import agent as _agent_module
from nomadlab.remote.demo.noise import clamp, hash01, smooth, smoothstep
from nomadlab.remote.demo.profiles import PROFILES, HostProfile, JobTemplate

if TYPE_CHECKING:
    from nomadlab.remote.demo.nvml import SimulatedNvml
    from nomadlab.remote.demo.simagent import SimAgent

# The agent module is Python 3.8 stdlib code without annotations: use it through Any.
_agent: Any = _agent_module

MIB = 1 << 20


class SimJob:
    """A job as it runs on one simulated host: a template with this host's jitter."""

    def __init__(self, template: JobTemplate, *, host: SimHost, rng: random.Random,
                 key: int) -> None:
        self.template = template
        self.kind = template.kind
        self.user = template.user
        self.command = template.command[: _agent.MAX_COMMAND]
        self.gpus = tuple(i for i in template.gpus if i < len(host.gpus))
        self.seed = host.seed
        self.key = key
        # A job that started long ago started a bit more or less long ago on each host;
        # one that starts during the demo keeps its moment, give or take 20 %.
        self.start = host.epoch + template.start * rng.uniform(0.8, 1.25)
        self.end = None if template.end is None else host.epoch + template.end * rng.uniform(
            0.8, 1.25)
        self.memory_fraction = clamp(template.memory_fraction * rng.uniform(0.96, 1.03),
                                      0.01, 0.97)
        self.util = clamp(template.util + rng.uniform(-1.5, 1.5), 0.0, 99.0)
        self.power = template.power * rng.uniform(0.96, 1.03)
        self.memory_bandwidth = template.memory_bandwidth
        self.warmup = rng.uniform(45.0, 150.0)  # loading data, compiling the model
        self.ramp = rng.uniform(40.0, min(120.0, self.warmup))  # memory grows meanwhile
        self.eval_period = rng.choice((240.0, 300.0, 360.0, 480.0))
        self.eval_length = rng.uniform(25.0, 45.0)
        self.checkpoint_period = rng.choice((1800.0, 2700.0, 3600.0))
        self.checkpoint_length = rng.uniform(12.0, 25.0)
        self.stall_rate = rng.uniform(0.05, 0.12)  # chance of a loader stall per 20 s
        if self.kind == "train" and self.running(host.epoch):
            self._settle(host.epoch)
        base_pid = rng.randrange(20_000, 3_900_000)
        step = rng.randrange(2, 40)
        self.pids = {gpu: base_pid + rank * step for rank, gpu in enumerate(self.gpus)}

    def _settle(self, epoch: float) -> None:
        """Shift the start (by some minutes) so that the demo opens on plain training,
        the way it looks most of the time: a third into an eval period, away from a
        checkpoint and a loader stall; the first dip comes a minute or two in."""
        step = epoch - self.start - self.warmup
        if step < 0:
            return
        self.start += (step - 0.3 * self.eval_period) % self.eval_period
        for _ in range(12):
            step = epoch - self.start - self.warmup
            since = step % self.checkpoint_period
            stall = any(hash01(self.seed, self.key + 3, math.floor(step / 20.0) + k)
                        < self.stall_rate for k in (0, 1))
            if step >= 0 and not stall and not (since < self.checkpoint_length + 60.0
                                                or since > self.checkpoint_period - 30.0):
                return
            self.start -= self.eval_period

    def running(self, t: float) -> bool:
        return t >= self.start and (self.end is None or t < self.end)

    def util_at(self, t: float) -> float | None:
        """Job-level utilization (its ranks move together); None when not running."""
        if not self.running(t):
            return None
        s = t - self.start
        seed, key = self.seed, self.key
        if self.kind == "train":
            if s < self.warmup:
                return 4.0 + 30.0 * smooth(seed, key, s / 3.0)
            step = s - self.warmup
            if (step >= self.checkpoint_period
                    and step % self.checkpoint_period < self.checkpoint_length):
                return 8.0 * hash01(seed, key + 1, int(s))  # writing a checkpoint
            if step % self.eval_period >= self.eval_period - self.eval_length:
                return 35.0 + 25.0 * smooth(seed, key + 2, s / 2.0)  # evaluation
            window = math.floor(step / 20.0)
            if hash01(seed, key + 3, window) < self.stall_rate:  # data loader stall
                begin = window * 20.0 + 14.0 * hash01(seed, key + 4, window)
                length = 2.0 + 4.0 * hash01(seed, key + 5, window)
                if begin <= step < begin + length:
                    return 3.0 + 20.0 * hash01(seed, key + 6, int(s))
            return min(100.0, self.util + (smooth(seed, key + 7, s) - 0.5) * 5.0)
        if self.kind == "eval":
            if s < 30.0:
                return 10.0 + 20.0 * smooth(seed, key, s / 3.0)
            if s % 45.0 < 3.0:  # between batches: collating, writing results
                return 15.0 + 10.0 * hash01(seed, key + 1, int(s))
            return clamp(self.util + (smooth(seed, key + 2, s / 4.0) - 0.5) * 16.0, 0, 100)
        if self.kind == "notebook":
            bucket = math.floor(s / 90.0)
            if hash01(seed, key, bucket) < 0.35:  # somebody ran a cell
                begin = bucket * 90.0 + 40.0 * hash01(seed, key + 1, bucket)
                length = 10.0 + 30.0 * hash01(seed, key + 2, bucket)
                if begin <= s < begin + length:
                    return 35.0 + 50.0 * smooth(seed, key + 3, s / 2.0)
            return 0.0
        # "serve": traffic comes and goes
        load = smooth(seed, key, s / 40.0)
        return clamp(3.0 + 2.0 * self.util * load * load
                      + 10.0 * (smooth(seed, key + 1, s / 1.5) - 0.5), 0.0, 100.0)

    def memory_mib(self, t: float, gpu: SimGpu) -> float:
        """Memory this job's process holds on ``gpu`` at ``t`` (it must be running)."""
        s = t - self.start
        plateau = self.memory_fraction * gpu.model.memory_mib
        context = 480.0 + 40.0 * hash01(self.seed, self.key, gpu.index)  # CUDA context
        if self.kind in ("serve", "notebook"):
            grown = smoothstep(s / 20.0)  # preallocated (vLLM) or loaded once
        else:
            grown = smoothstep(s / self.ramp)
        used = context + (plateau - context) * grown if plateau > context else plateau
        if self.kind == "train" and gpu.index == self.gpus[0]:
            used *= 1.012  # rank 0 keeps a little more (logging, the eval batch)
        return used


@dataclass(slots=True)
class GpuState:
    util: int
    memory_util: int
    used_bytes: int
    temperature: int
    power_mw: int
    processes: list[tuple[int, int]]  # (pid, bytes), compute
    graphics: list[tuple[int, int]]


class SimGpu:
    """One simulated GPU: its static identity and its state as a function of time."""

    TEMP_STEP = 5.0  # seconds between the points the temperature lag integrates over
    TEMP_POINTS = 24  # two minutes of history
    TEMP_TAU = 35.0  # seconds: how slowly the heat sink follows the load

    def __init__(self, host: SimHost, index: int, rng: random.Random) -> None:
        self.host = host
        self.index = index
        self.model = host.profile.gpu
        self.seed = host.seed
        self.key = 1_000 + 97 * index
        bits = f"{rng.getrandbits(128):032x}"
        self.uuid = f"GPU-{bits[:8]}-{bits[8:12]}-{bits[12:16]}-{bits[16:20]}-{bits[20:]}"
        self.idle_memory_mib = rng.choice((0.5, 1.0, 1.0, 2.0, 4.0))
        hot = 8.0 if index in host.profile.hot_gpus else 0.0
        self.idle_temp = self.model.idle_temp_c + rng.uniform(-2.0, 3.0) + hot * 0.4
        self.busy_temp = self.model.busy_temp_c + rng.uniform(-3.0, 4.0) + hot
        self.idle_power = self.model.idle_power_w * rng.uniform(0.9, 1.1)
        self.jobs: list[SimJob] = []
        self.graphics: list[tuple[int, float]] = []  # (pid, MiB)
        self._targets: dict[int, float] = {}
        self._cached_at: int | None = None
        self._cached: GpuState | None = None

    # ---- pure functions of time

    def util_at(self, t: float) -> float:
        total = 0.0
        for job in self.jobs:
            u = job.util_at(t)
            if u is not None:
                total += u
        if total > 0.0:  # each rank wobbles a little around its job
            total += (smooth(self.seed, self.key, t * 0.7) - 0.5) * 3.0 * total / 100.0
        return clamp(total, 0.0, 100.0)

    def _target_temp(self, grid: int) -> float:
        value = self._targets.get(grid)
        if value is None:
            u = self.util_at(grid * self.TEMP_STEP)
            value = self.idle_temp + (self.busy_temp - self.idle_temp) * (u / 100.0) ** 0.9
            if len(self._targets) > 8 * self.TEMP_POINTS:
                for old in [g for g in self._targets if g < grid - 2 * self.TEMP_POINTS]:
                    del self._targets[old]
            self._targets[grid] = value
        return value

    def _lagged_temp(self, grid: int) -> float:
        total = weight = 0.0
        for k in range(self.TEMP_POINTS):
            w = math.exp(-k * self.TEMP_STEP / self.TEMP_TAU)
            total += w * self._target_temp(grid - k)
            weight += w
        return total / weight

    def temperature_at(self, t: float) -> float:
        grid = math.floor(t / self.TEMP_STEP)
        f = t / self.TEMP_STEP - grid
        a = self._lagged_temp(grid - 1)
        b = self._lagged_temp(grid)
        return a + (b - a) * f + (smooth(self.seed, self.key + 1, t / 7.0) - 0.5) * 0.8

    def state(self, t: float) -> GpuState:
        """Everything NVML says about this GPU at ``t`` (cached per 50 ms)."""
        q = round(t * 20.0)
        if q == self._cached_at and self._cached is not None:
            return self._cached
        t = q / 20.0
        running = [job for job in self.jobs if job.running(t)]
        util = self.util_at(t)
        limit = self.model.memory_mib
        processes: list[tuple[int, int]] = []
        used = self.idle_memory_mib
        graphics: list[tuple[int, int]] = []
        for pid, mib in self.graphics:
            graphics.append((pid, int(mib * MIB)))
            used += mib
        for job in running:
            mib = min(job.memory_mib(t, self), max(0.0, limit - 64.0 - used))
            processes.append((job.pids[self.index], int(mib * MIB)))
            used += mib
        bandwidth = max((job.memory_bandwidth for job in running), default=0.0)
        push = max((job.power for job in running), default=1.0)
        recent = 0.6 * util + 0.4 * self.util_at(t - 1.0)  # power lags a second
        cap = self.model.power_limit_w
        watts = (self.idle_power * (1.0 + 0.06 * (smooth(self.seed, self.key + 2, t / 3.0) - 0.5))
                 + (cap - self.idle_power) * push * (recent / 100.0) ** 1.3)
        if watts > 0.985 * cap:  # the power cap holds it just under the limit
            watts = cap * (0.975 + 0.02 * smooth(self.seed, self.key + 3, t))
        state = GpuState(
            util=round(util),
            memory_util=round(util * bandwidth),
            used_bytes=int(min(used, limit) * MIB),
            temperature=round(self.temperature_at(t)),
            power_mw=round(watts * 1000.0),
            processes=processes,
            graphics=graphics,
        )
        self._cached_at, self._cached = q, state
        return state


@dataclass(slots=True)
class HostCounters:
    """What one simulated host did: for tests and benchmarks (cost per host)."""

    sessions: int = 0  # agent sessions started (streaming and once)
    active: int = 0  # agent sessions running now
    once: int = 0  # sessions that asked for hello + one sample ("exec per poll")
    refused: int = 0  # commands that were not our agent (exit 127)
    hellos: int = 0
    samples: int = 0
    bytes_sent: int = 0  # stdout bytes written to clients
    build_seconds: float = 0.0  # time spent building hello/sample messages


class SimHost:
    """One simulated machine: GPUs, jobs and their processes, CPU/RAM/load."""

    def __init__(self, name: str, profile: HostProfile, *, seed: int = 0,
                 clock: Clock = SYSTEM_CLOCK, epoch: float | None = None,
                 gpu_count: int = 8, index: int = 0) -> None:
        self.name = name
        self.profile = profile
        self.index = index
        self.clock = clock
        self.epoch = clock.time() if epoch is None else epoch
        rng = random.Random(f"nomadlab-demo:{seed}:{index}:{profile.key}")
        self.seed = rng.getrandbits(64)
        self.hourly_cost = profile.hourly_cost
        self.gpus = [SimGpu(self, i, rng) for i in range(gpu_count)]
        self.jobs: list[SimJob] = []
        for n, template in enumerate(profile.jobs):
            job = SimJob(template, host=self, rng=rng, key=10_000 * (n + 1))
            if not job.gpus:
                continue
            self.jobs.append(job)
            for gpu in job.gpus:
                self.gpus[gpu].jobs.append(job)
        self.commands: dict[int, tuple[str, str]] = {}
        for job in self.jobs:
            for pid in job.pids.values():
                self.commands[pid] = (job.user, job.command)
        first = min((p for job in self.jobs for p in job.pids.values()), default=400_000)
        for gpu_index, offset, user, command, mib in profile.graphics:
            if gpu_index < len(self.gpus):
                pid = max(300, first + offset)
                self.gpus[gpu_index].graphics.append((pid, mib))
                self.commands[pid] = (user, command)
        self.base_ram_gib = rng.uniform(9.0, 16.0)
        self.counters = HostCounters()

    @property
    def gpu_name(self) -> str:
        return self.profile.gpu.name

    def busy_gpus(self, t: float | None = None) -> list[int]:
        now = self.clock.time() if t is None else t
        return [g.index for g in self.gpus if any(job.running(now) for job in g.jobs)]

    # ---- /proc, simulated

    def _cpu_at(self, t: float) -> float:
        cores = 0.0
        for job in self.jobs:
            u = job.util_at(t)
            if u is not None:
                cores += job.template.cpu_cores_per_gpu * len(job.gpus) * (0.35 + 0.65 * u / 100)
        percent = 1.2 + 100.0 * cores / self.profile.cpus
        percent += (smooth(self.seed, 7, t / 2.0) - 0.5) * 2.0
        return clamp(percent, 0.2, 100.0)

    def host_sample(self, t: float | None = None) -> dict[str, float | None]:
        """The dict :meth:`agent.HostStats.sample` returns, for time ``t``."""
        now = self.clock.time() if t is None else t
        cpu = self._cpu_at(now)
        load = sum(self._cpu_at(now - 10.0 * k) for k in range(7)) / 7.0
        ram_gib = self.base_ram_gib
        for job in self.jobs:
            if job.running(now):
                grown = smoothstep((now - job.start) / job.ramp)
                ram_gib += job.template.ram_gib_per_gpu * len(job.gpus) * (0.3 + 0.7 * grown)
        ram_total = self.profile.ram_gib * 1024.0
        return {
            "cpu": round(cpu, 1),
            "ram_used": round(min(ram_gib * 1024.0, ram_total * 0.97), 1),
            "ram_total": round(ram_total, 1),
            "load1": round(load / 100.0 * self.profile.cpus * 1.04, 2),
        }

    # ---- the agent's view

    def nvml(self) -> SimulatedNvml:
        from nomadlab.remote.demo.nvml import SimulatedNvml  # it builds on this module

        return SimulatedNvml(self)

    def agent(self) -> SimAgent:
        """The real agent's message builders over this host (one per session)."""
        from nomadlab.remote.demo.simagent import SimAgent  # it builds on this module

        return SimAgent(self)


def build_hosts(count: int = 4, gpus: int = 8, *, seed: int = 0, clock: Clock = SYSTEM_CLOCK,
                epoch: float | None = None,
                profiles: Sequence[HostProfile] = PROFILES) -> list[SimHost]:
    """``count`` hosts cycling through ``profiles``: names are the profile keys, with a
    number appended when there are more hosts than profiles (lambda-h100-01, ...)."""
    if count < 1:
        raise ValueError("a demo fleet needs at least one host")
    if gpus < 1:
        raise ValueError("a demo host needs at least one GPU")
    start = clock.time() if epoch is None else epoch
    hosts = []
    for i in range(count):
        profile = profiles[i % len(profiles)]
        name = profile.key
        if count > len(profiles):
            name = f"{profile.key}-{i // len(profiles) + 1:02d}"
        hosts.append(SimHost(name, profile, seed=seed, clock=clock, epoch=start,
                             gpu_count=gpus, index=i))
    return hosts


def demo_summary(hosts: Iterable[SimHost]) -> list[dict[str, Any]]:
    """One line per host for ``nomadlab demo --list`` and benchmark headers."""
    return [
        {"name": h.name, "gpu": h.gpu_name, "gpus": len(h.gpus),
         "hourly_cost": h.hourly_cost, "busy": len(h.busy_gpus())}
        for h in hosts
    ]
