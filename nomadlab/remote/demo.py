"""A simulated GPU fleet behind real SSH: ``nomadlab demo``, screenshots and benchmarks.

Only NVML and /proc are simulated. Everything else is the real thing:

- :class:`DemoFleet` starts in-process asyncssh servers on 127.0.0.1 with a host key
  and a client key it generates into a temp dir of its own, and writes a known_hosts
  file, so the client's ordinary host-key checking and public-key login run unchanged;
- each simulated host answers the exec request of :func:`bootstrap.agent_command`,
  reads the bootstrap payload from stdin exactly as the bootstrap would (a length line
  and a zlib-compressed JSON bundle), and then streams what the REAL agent code
  builds (:class:`agent.NvmlGpus`, :func:`agent.hello_message`,
  :func:`agent.sample_message`) from a :class:`SimulatedNvml`;
- the client connects with ``Fleet(demo.config(data_dir))`` like any other fleet.

The simulation is a pure function of (seed, host, GPU, clock time): two simulations
with the same seed asked at the same clock times answer the same values, whatever
they were asked before, so snapshot tests can drive it with a ``ManualClock``.
Streaming cadence uses the event loop's own time; only the values follow the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import math
import os
import random
import shlex
import shutil
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh

from nomadlab.core.clock import SYSTEM_CLOCK, Clock
from nomadlab.core.config import Config, HostConfig, LogConfig, SshSettings
from nomadlab.hostside import agent as _agent_module
from nomadlab.remote import bootstrap
from nomadlab.remote.demo_logs import DemoLogs
from nomadlab.remote.demo_sftp import DemoSftp, expand_home

# The agent module is Python 3.8 stdlib code without annotations: use it through Any.
_agent: Any = _agent_module

__all__ = [
    "PROFILES",
    "DemoFleet",
    "GpuModel",
    "HostCounters",
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
]

MIB = 1 << 20
LOCALHOST = "127.0.0.1"
MAX_PAYLOAD = 64 << 20  # a bootstrap bundle is ~100 kB; anything near this is not ours

# --------------------------------------------------------------------------- noise

_M64 = (1 << 64) - 1
_INV64 = 1.0 / float(1 << 64)


def _hash(seed: int, key: int, n: int) -> float:
    """A uniform float in [0, 1) from three integers (splitmix64 finaliser): pure."""
    z = (seed + key * 0x9E3779B97F4A7C15 + n * 0xD1B54A32D192ED03) & _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return (z ^ (z >> 31)) * _INV64


def _smooth(seed: int, key: int, x: float) -> float:
    """Value noise in [0, 1): smooth between integer x, so curves do not jump."""
    i = math.floor(x)
    f = x - i
    f = f * f * (3.0 - 2.0 * f)
    a = _hash(seed, key, i)
    return a + (_hash(seed, key, i + 1) - a) * f


def _smoothstep(x: float) -> float:
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    return x * x * (3.0 - 2.0 * x)


def _clamp(x: float, low: float, high: float) -> float:
    return low if x < low else high if x > high else x


# --------------------------------------------------------------------------- profiles


@dataclass(frozen=True, slots=True)
class GpuModel:
    name: str
    memory_mib: int
    power_limit_w: float
    idle_power_w: float
    idle_temp_c: float
    busy_temp_c: float


@dataclass(frozen=True, slots=True)
class JobTemplate:
    """One job on a host. Times are seconds relative to the simulation's epoch."""

    kind: str  # "train" | "eval" | "notebook" | "serve"
    user: str
    command: str
    gpus: tuple[int, ...]
    start: float  # negative: it was already running when the demo started
    end: float | None = None  # None: runs on
    memory_fraction: float = 0.85  # plateau, of the GPU's memory
    util: float = 95.5  # steady utilization of a training step
    power: float = 1.0  # how hard it pushes towards the power limit
    memory_bandwidth: float = 0.45  # NVML "memory" utilization per unit of GPU util
    cpu_cores_per_gpu: float = 6.0  # data loader workers and friends
    ram_gib_per_gpu: float = 24.0


@dataclass(frozen=True, slots=True)
class HostProfile:
    key: str  # the host name (suffixed when a fleet has more hosts than profiles)
    gpu: GpuModel
    driver: str
    hourly_cost: float
    cpus: int
    ram_gib: float
    python: str
    jobs: tuple[JobTemplate, ...]
    # (gpu, pid offset, user, command, MiB): display servers and the like
    graphics: tuple[tuple[int, int, str, str, float], ...] = ()
    hot_gpus: tuple[int, ...] = ()  # worse cooling: these run about 8 degrees warmer
    health: HostHealth | None = None  # what is wrong with its GPUs (the health column)


@dataclass(frozen=True, slots=True)
class HostHealth:
    """Health events of a demo host, so the fleet's health column has something to say."""

    thermal_slowdown: tuple[int, ...] = ()  # GPUs in HW thermal slowdown while busy
    pcie_degraded: tuple[int, ...] = ()  # GPUs whose link trained at Gen3 x8
    # (gpu, XID code, seconds after the demo's epoch: negative = before it started)
    xids: tuple[tuple[int, int, float], ...] = ()
    ecc_uncorrected: tuple[tuple[int, int], ...] = ()  # (gpu, volatile uncorrectable errors)
    remap_pending: tuple[int, ...] = ()


H100 = GpuModel("NVIDIA H100 80GB HBM3", 81559, 700.0, 71.0, 31.0, 68.0)
H200 = GpuModel("NVIDIA H200", 143771, 700.0, 76.0, 33.0, 66.0)
L40S = GpuModel("NVIDIA L40S", 46068, 350.0, 34.0, 30.0, 74.0)
RTX4090 = GpuModel("NVIDIA GeForce RTX 4090", 24564, 450.0, 21.0, 36.0, 76.0)

_MIN = 60.0
_HOUR = 3600.0

PROFILES: tuple[HostProfile, ...] = (
    HostProfile(
        key="lambda-h100", gpu=H100, driver="550.127.05", hourly_cost=23.92, cpus=208,
        ram_gib=1843.0, python="3.10.12",
        jobs=(
            JobTemplate("train", "maya", "python train.py --config configs/llama-7b.yaml",
                        gpus=(0, 1, 2, 3, 4, 5), start=-(3 * _HOUR + 12 * _MIN),
                        memory_fraction=0.91, util=96.0, power=1.02,
                        cpu_cores_per_gpu=10.0, ram_gib_per_gpu=48.0),
        ),
        # GPU 7 logged a double-bit ECC error (XID 48) and waits for a reset.
        health=HostHealth(xids=((7, 48, -18 * _MIN),), ecc_uncorrected=((7, 1),),
                          remap_pending=(7,)),
    ),
    HostProfile(
        key="runpod-h200", gpu=H200, driver="570.124.06", hourly_cost=31.92, cpus=192,
        ram_gib=2015.0, python="3.11.10",
        jobs=(
            JobTemplate("train", "root",
                        "python train.py --config configs/mixtral-8x7b.yaml "
                        "--resume runs/mixtral/last.ckpt",
                        gpus=(0, 1, 2, 3), start=-55 * _MIN, memory_fraction=0.86,
                        util=94.5, power=0.97, cpu_cores_per_gpu=8.0, ram_gib_per_gpu=64.0),
            JobTemplate("eval", "root",
                        "python eval.py --ckpt runs/mixtral/step-12000 --tasks mmlu,gsm8k",
                        gpus=(4,), start=-12 * _MIN, memory_fraction=0.62, util=80.0,
                        power=0.85, memory_bandwidth=0.55, ram_gib_per_gpu=40.0),
            JobTemplate("notebook", "root",
                        "python -m ipykernel_launcher -f "
                        "/root/.local/share/jupyter/runtime/kernel-7f3a.json",
                        gpus=(5,), start=-2 * _HOUR, memory_fraction=0.13, util=60.0,
                        power=0.7, memory_bandwidth=0.3, cpu_cores_per_gpu=1.0,
                        ram_gib_per_gpu=12.0),
        ),
        health=HostHealth(pcie_degraded=(4,)),  # a riser that trained at Gen3 x8
    ),
    HostProfile(
        # The job here finished a while ago: every GPU idle, an idle alert should fire.
        key="gcp-l40s", gpu=L40S, driver="550.90.07", hourly_cost=15.84, cpus=192,
        ram_gib=1510.0, python="3.10.12",
        jobs=(
            JobTemplate("train", "priya", "python train.py --config configs/vit-b16.yaml",
                        gpus=(0, 1, 2, 3, 4, 5, 6, 7), start=-(7 * _HOUR + 20 * _MIN),
                        end=-42 * _MIN, memory_fraction=0.8, util=93.0),
        ),
    ),
    HostProfile(
        key="home-4090", gpu=RTX4090, driver="560.35.03", hourly_cost=1.10, cpus=64,
        ram_gib=256.0, python="3.12.3",
        jobs=(
            JobTemplate("train", "alex",
                        "python train.py --config configs/sdxl-lora.yaml --batch-size 4",
                        gpus=(0, 1), start=-2 * _HOUR, memory_fraction=0.93, util=97.0,
                        power=1.0, cpu_cores_per_gpu=4.0, ram_gib_per_gpu=16.0),
            JobTemplate("serve", "alex",
                        "python -m vllm.entrypoints.openai.api_server "
                        "--model meta-llama/Meta-Llama-3-8B-Instruct "
                        "--gpu-memory-utilization 0.9",
                        gpus=(2,), start=-26 * _HOUR, memory_fraction=0.9, util=55.0,
                        power=0.9, memory_bandwidth=0.7, cpu_cores_per_gpu=2.0,
                        ram_gib_per_gpu=10.0),
            # Starts a little after the demo does: its memory ramp is on screen.
            JobTemplate("train", "sam", "python train.py --config configs/gpt2-small.yaml",
                        gpus=(3, 4), start=90.0, memory_fraction=0.74, util=92.0,
                        power=0.95, cpu_cores_per_gpu=4.0, ram_gib_per_gpu=8.0),
        ),
        graphics=((0, -5000, "root", "/usr/lib/xorg/Xorg vt1 -displayfd 3", 218.0),),
        hot_gpus=(1,),
        # The hot one: its clocks are held back by HW thermal slowdown under load.
        health=HostHealth(thermal_slowdown=(1,)),
    ),
)


# --------------------------------------------------------------------------- the simulation


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
        self.memory_fraction = _clamp(template.memory_fraction * rng.uniform(0.96, 1.03),
                                      0.01, 0.97)
        self.util = _clamp(template.util + rng.uniform(-1.5, 1.5), 0.0, 99.0)
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
            stall = any(_hash(self.seed, self.key + 3, math.floor(step / 20.0) + k)
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
                return 4.0 + 30.0 * _smooth(seed, key, s / 3.0)
            step = s - self.warmup
            if (step >= self.checkpoint_period
                    and step % self.checkpoint_period < self.checkpoint_length):
                return 8.0 * _hash(seed, key + 1, int(s))  # writing a checkpoint
            if step % self.eval_period >= self.eval_period - self.eval_length:
                return 35.0 + 25.0 * _smooth(seed, key + 2, s / 2.0)  # evaluation
            window = math.floor(step / 20.0)
            if _hash(seed, key + 3, window) < self.stall_rate:  # data loader stall
                begin = window * 20.0 + 14.0 * _hash(seed, key + 4, window)
                length = 2.0 + 4.0 * _hash(seed, key + 5, window)
                if begin <= step < begin + length:
                    return 3.0 + 20.0 * _hash(seed, key + 6, int(s))
            return min(100.0, self.util + (_smooth(seed, key + 7, s) - 0.5) * 5.0)
        if self.kind == "eval":
            if s < 30.0:
                return 10.0 + 20.0 * _smooth(seed, key, s / 3.0)
            if s % 45.0 < 3.0:  # between batches: collating, writing results
                return 15.0 + 10.0 * _hash(seed, key + 1, int(s))
            return _clamp(self.util + (_smooth(seed, key + 2, s / 4.0) - 0.5) * 16.0, 0, 100)
        if self.kind == "notebook":
            bucket = math.floor(s / 90.0)
            if _hash(seed, key, bucket) < 0.35:  # somebody ran a cell
                begin = bucket * 90.0 + 40.0 * _hash(seed, key + 1, bucket)
                length = 10.0 + 30.0 * _hash(seed, key + 2, bucket)
                if begin <= s < begin + length:
                    return 35.0 + 50.0 * _smooth(seed, key + 3, s / 2.0)
            return 0.0
        # "serve": traffic comes and goes
        load = _smooth(seed, key, s / 40.0)
        return _clamp(3.0 + 2.0 * self.util * load * load
                      + 10.0 * (_smooth(seed, key + 1, s / 1.5) - 0.5), 0.0, 100.0)

    def memory_mib(self, t: float, gpu: SimGpu) -> float:
        """Memory this job's process holds on ``gpu`` at ``t`` (it must be running)."""
        s = t - self.start
        plateau = self.memory_fraction * gpu.model.memory_mib
        context = 480.0 + 40.0 * _hash(self.seed, self.key, gpu.index)  # CUDA context
        if self.kind in ("serve", "notebook"):
            grown = _smoothstep(s / 20.0)  # preallocated (vLLM) or loaded once
        else:
            grown = _smoothstep(s / self.ramp)
        used = context + (plateau - context) * grown if plateau > context else plateau
        if self.kind == "train" and gpu.index == self.gpus[0]:
            used *= 1.012  # rank 0 keeps a little more (logging, the eval batch)
        return used


@dataclass(slots=True)
class _GpuState:
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
        self._cached: _GpuState | None = None

    # ---- pure functions of time

    def util_at(self, t: float) -> float:
        total = 0.0
        for job in self.jobs:
            u = job.util_at(t)
            if u is not None:
                total += u
        if total > 0.0:  # each rank wobbles a little around its job
            total += (_smooth(self.seed, self.key, t * 0.7) - 0.5) * 3.0 * total / 100.0
        return _clamp(total, 0.0, 100.0)

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
        return a + (b - a) * f + (_smooth(self.seed, self.key + 1, t / 7.0) - 0.5) * 0.8

    def state(self, t: float) -> _GpuState:
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
        watts = (self.idle_power * (1.0 + 0.06 * (_smooth(self.seed, self.key + 2, t / 3.0) - 0.5))
                 + (cap - self.idle_power) * push * (recent / 100.0) ** 1.3)
        if watts > 0.985 * cap:  # the power cap holds it just under the limit
            watts = cap * (0.975 + 0.02 * _smooth(self.seed, self.key + 3, t))
        state = _GpuState(
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
        percent += (_smooth(self.seed, 7, t / 2.0) - 0.5) * 2.0
        return _clamp(percent, 0.2, 100.0)

    def host_sample(self, t: float | None = None) -> dict[str, float | None]:
        """The dict :meth:`agent.HostStats.sample` returns, for time ``t``."""
        now = self.clock.time() if t is None else t
        cpu = self._cpu_at(now)
        load = sum(self._cpu_at(now - 10.0 * k) for k in range(7)) / 7.0
        ram_gib = self.base_ram_gib
        for job in self.jobs:
            if job.running(now):
                grown = _smoothstep((now - job.start) / job.ramp)
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
        return SimulatedNvml(self)

    def agent(self) -> SimAgent:
        """The real agent's message builders over this host (one per session)."""
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


# --------------------------------------------------------------------------- the pynvml API


class SimulatedNvmlError(Exception):
    """What pynvml.NVMLError is to the real binding."""


@dataclass(frozen=True, slots=True)
class _Utilization:
    gpu: int
    memory: int


@dataclass(frozen=True, slots=True)
class _Memory:
    total: int
    free: int
    used: int


@dataclass(frozen=True, slots=True)
class _Process:
    pid: int
    usedGpuMemory: int  # pynvml's name


# --------------------------------------------------------------------------- health

# (SM max, memory max, PCIe gen, datacenter part: ECC, row remapping, NVLink, MIG)
_PART: dict[str, tuple[int, int, int, bool]] = {
    H100.name: (1980, 2619, 5, True),
    H200.name: (1980, 3201, 5, True),
    L40S.name: (2520, 9001, 4, True),
    RTX4090.name: (3105, 10501, 4, False),
}


class _EventSet:
    def __init__(self) -> None:
        self.gpus: set[int] = set()
        self.delivered: set[tuple[int, int, float]] = set()
        self.wake = threading.Event()


@dataclass(frozen=True, slots=True)
class _EventData:
    device: SimGpu
    eventType: int  # pynvml's names
    eventData: int
    gpuInstanceId: int
    computeInstanceId: int
    time: float  # not in NVML's event data: the simulation knows when it happened


class SimulatedNvmlHealth:
    """The health part of the pynvml API over a SimHost (mixed into SimulatedNvml)."""

    host: SimHost

    def _state(self, handle: SimGpu) -> _GpuState:
        raise NotImplementedError

    def _health(self) -> HostHealth:
        return self.host.profile.health or HostHealth()

    def _part(self, handle: SimGpu) -> tuple[int, int, int, bool]:
        return _PART.get(handle.model.name, (1980, 2619, 4, True))

    def _datacenter(self, handle: SimGpu) -> None:
        if not self._part(handle)[3]:
            raise SimulatedNvmlError("Not Supported")

    def _slowed(self, handle: SimGpu) -> bool:
        return (handle.index in self._health().thermal_slowdown
                and self._state(handle).util >= 10)

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: SimGpu) -> int:
        state = self._state(handle)
        mask = 0x1 if state.util == 0 else 0
        if state.power_mw >= 0.97 * handle.model.power_limit_w * 1000.0:
            mask |= 0x4  # SW power cap: normal at the limit
        if self._slowed(handle):
            mask |= 0x40
        return mask

    def nvmlDeviceGetClockInfo(self, handle: SimGpu, kind: int) -> int:
        sm_max, mem_max, _gen, _dc = self._part(handle)
        if kind == 2:
            return mem_max
        if self._state(handle).util == 0:
            return 345
        return sm_max // 2 if self._slowed(handle) else sm_max - 15

    def nvmlDeviceGetMaxClockInfo(self, handle: SimGpu, kind: int) -> int:
        sm_max, mem_max, _gen, _dc = self._part(handle)
        return mem_max if kind == 2 else sm_max

    def nvmlDeviceGetCurrPcieLinkGeneration(self, handle: SimGpu) -> int:
        if handle.index in self._health().pcie_degraded:
            return 3
        return self._part(handle)[2] if self._state(handle).util > 0 else 1

    def nvmlDeviceGetMaxPcieLinkGeneration(self, handle: SimGpu) -> int:
        return self._part(handle)[2]

    def nvmlDeviceGetCurrPcieLinkWidth(self, handle: SimGpu) -> int:
        return 8 if handle.index in self._health().pcie_degraded else 16

    def nvmlDeviceGetMaxPcieLinkWidth(self, handle: SimGpu) -> int:
        return 16

    def nvmlDeviceGetEccMode(self, handle: SimGpu) -> tuple[int, int]:
        self._datacenter(handle)
        return 1, 1

    def nvmlDeviceGetTotalEccErrors(self, handle: SimGpu, error: int, counter: int) -> int:
        self._datacenter(handle)
        if error != 1:
            return 0
        return sum(n for gpu, n in self._health().ecc_uncorrected if gpu == handle.index)

    def nvmlDeviceGetRemappedRows(self, handle: SimGpu) -> tuple[int, int, int, int]:
        self._datacenter(handle)
        pending = int(handle.index in self._health().remap_pending)
        return 0, pending, pending, 0

    def nvmlDeviceGetPersistenceMode(self, handle: SimGpu) -> int:
        return 1

    def nvmlDeviceGetComputeMode(self, handle: SimGpu) -> int:
        return 0

    def nvmlDeviceGetMigMode(self, handle: SimGpu) -> tuple[int, int]:
        self._datacenter(handle)
        return 0, 0

    def nvmlDeviceGetNvLinkState(self, handle: SimGpu, link: int) -> int:
        if handle.model not in (H100, H200) or link >= 18:
            raise SimulatedNvmlError("Not Supported")
        return 1

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: SimGpu) -> int:
        # Since the driver loaded (a day before the demo's epoch), at a middling draw.
        seconds = round(self.host.clock.time() - self.host.epoch + 86_400.0, 1)
        watts = handle.idle_power + 0.45 * (handle.model.power_limit_w - handle.idle_power)
        return int(seconds * watts * 1000.0)

    def nvmlDeviceGetIndex(self, handle: SimGpu) -> int:
        return handle.index

    def nvmlEventSetCreate(self) -> _EventSet:
        return _EventSet()

    def nvmlDeviceRegisterEvents(self, handle: SimGpu, kinds: int, event_set: _EventSet) -> None:
        event_set.gpus.add(handle.index)

    def nvmlEventSetWait_v2(self, event_set: _EventSet, timeout_ms: int) -> _EventData:
        now = self.host.clock.time() - self.host.epoch
        for event in self._health().xids:
            gpu, code, at = event
            if at <= now and gpu in event_set.gpus and event not in event_set.delivered:
                event_set.delivered.add(event)
                return _EventData(self.host.gpus[gpu], 0x8, code, 0xFFFFFFFF, 0xFFFFFFFF,
                                  self.host.epoch + at)
        event_set.wake.wait(timeout_ms / 1000.0)
        raise SimulatedNvmlTimeout("Timeout")

    def nvmlEventSetFree(self, event_set: _EventSet) -> None:
        event_set.wake.set()


class SimulatedNvmlTimeout(SimulatedNvmlError):
    """What pynvml.NVMLError_Timeout is to the real binding (the name is what counts)."""


SimulatedNvmlTimeout.__name__ = "NVMLError_Timeout"


class SimulatedNvml(SimulatedNvmlHealth):
    """The subset of the pynvml API that :class:`agent.NvmlGpus` uses, over a SimHost.

    Pass a host, or a seed/clock/profile index to build one (tests)."""

    def __init__(self, host: SimHost | None = None, *, seed: int = 0,
                 clock: Clock = SYSTEM_CLOCK, index: int = 0, gpus: int = 8,
                 epoch: float | None = None) -> None:
        if host is None:
            profile = PROFILES[index % len(PROFILES)]
            host = SimHost(profile.key, profile, seed=seed, clock=clock, epoch=epoch,
                           gpu_count=gpus, index=index)
        self.host = host
        self.initialized = 0

    def _state(self, handle: SimGpu) -> _GpuState:
        if not self.initialized:
            raise SimulatedNvmlError("NVML Uninitialized")
        return handle.state(self.host.clock.time())

    def nvmlInit(self) -> None:
        self.initialized += 1

    def nvmlShutdown(self) -> None:
        if not self.initialized:
            raise SimulatedNvmlError("NVML Uninitialized")
        self.initialized -= 1

    def nvmlSystemGetDriverVersion(self) -> str:
        return self.host.profile.driver

    def nvmlDeviceGetCount(self) -> int:
        if not self.initialized:
            raise SimulatedNvmlError("NVML Uninitialized")
        return len(self.host.gpus)

    def nvmlDeviceGetHandleByIndex(self, index: int) -> SimGpu:
        if not 0 <= index < len(self.host.gpus):
            raise SimulatedNvmlError("Invalid Argument")
        return self.host.gpus[index]

    def nvmlDeviceGetName(self, handle: SimGpu) -> str:
        return handle.model.name

    def nvmlDeviceGetUUID(self, handle: SimGpu) -> str:
        return handle.uuid

    def nvmlDeviceGetUtilizationRates(self, handle: SimGpu) -> _Utilization:
        state = self._state(handle)
        return _Utilization(gpu=state.util, memory=state.memory_util)

    def nvmlDeviceGetMemoryInfo(self, handle: SimGpu) -> _Memory:
        state = self._state(handle)
        total = handle.model.memory_mib * MIB
        return _Memory(total=total, free=total - state.used_bytes, used=state.used_bytes)

    def nvmlDeviceGetTemperature(self, handle: SimGpu, sensor: int = 0) -> int:
        return self._state(handle).temperature

    def nvmlDeviceGetPowerUsage(self, handle: SimGpu) -> int:
        return self._state(handle).power_mw

    def nvmlDeviceGetEnforcedPowerLimit(self, handle: SimGpu) -> int:
        return round(handle.model.power_limit_w * 1000.0)

    def nvmlDeviceGetComputeRunningProcesses(self, handle: SimGpu) -> list[_Process]:
        return [_Process(pid, used) for pid, used in self._state(handle).processes]

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: SimGpu) -> list[_Process]:
        return [_Process(pid, used) for pid, used in self._state(handle).graphics]

    def nvmlSystemGetProcessName(self, pid: int) -> str:
        known = self.host.commands.get(pid)
        if known is None:
            raise SimulatedNvmlError("Not Found")
        return known[1].split(" ", 1)[0]  # the driver knows the executable, not argv


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


# --------------------------------------------------------------------------- the servers


@functools.cache
def _boot_quoted() -> str:
    return shlex.quote(bootstrap.BOOT)


def agent_python(command: str | None) -> str | None:
    """The interpreter named by a :func:`bootstrap.agent_command` line, or None when
    ``command`` is not exactly such a line."""
    if not command:
        return None
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    if len(words) != 4 or words[:3] != ["exec", "sh", "-c"] or _boot_quoted() not in words[3]:
        return None
    try:
        python = shlex.split(words[3])[3]  # if command -v <python> ...
    except (ValueError, IndexError):
        return None
    return python if command == bootstrap.agent_command(python) else None


class _BadPayload(Exception):
    pass


async def _read_bundle(stdin: asyncssh.SSHReader[bytes]) -> dict[str, Any]:
    """What the bootstrap does with stdin: a length line, then a zlib JSON bundle."""
    line = await stdin.readline()
    try:
        size = int(line)
    except ValueError:
        raise _BadPayload(f"invalid length line {line[:40]!r}") from None
    if not 0 < size <= MAX_PAYLOAD:
        raise _BadPayload(f"bundle size {size} out of range")
    try:
        body = await stdin.readexactly(size)
    except asyncio.IncompleteReadError:
        raise _BadPayload("stdin ended inside the bundle") from None
    try:
        bundle = json.loads(zlib.decompress(body).decode("utf-8"))
    except (zlib.error, UnicodeDecodeError, ValueError) as exc:
        raise _BadPayload(f"cannot decode the bundle: {exc}") from None
    if not isinstance(bundle, dict):
        raise _BadPayload("the bundle is not an object")
    if not isinstance(bundle.get("agent"), str) or not bundle["agent"]:
        raise _BadPayload("KeyError: 'agent'")
    if not isinstance(bundle.get("args", {}), dict):
        raise _BadPayload("args is not an object")
    return bundle


class _DemoServer(asyncssh.SSHServer):
    """Public-key login for the demo's users (one per simulated host) and key only."""

    def __init__(self, fleet: DemoFleet, users: dict[str, SimHost]) -> None:
        self.fleet = fleet
        self.users = users
        self.conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        self.fleet._connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.conn is not None:
            self.fleet._connections.discard(self.conn)

    def begin_auth(self, username: str) -> bool:
        return True  # always authenticate, whoever it claims to be

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return username in self.users and key == self.fleet._client_public


class DemoFleet:
    """Simulated GPU hosts behind in-process asyncssh servers on 127.0.0.1.

    ::

        async with DemoFleet(hosts=4, seed=1) as demo:
            fleet = Fleet(demo.config(tmp / "data"))

    Each host's SSH user is its name. ``servers`` is how many listening servers the
    hosts share (each with its own port and host key); default one per host.
    Everything it writes (keys, known_hosts) is in :attr:`dir`, a temp dir it makes
    (under ``base_dir`` when given) and removes on :meth:`stop`.
    """

    def __init__(self, hosts: int = 4, gpus: int = 8, *, seed: int = 0,
                 clock: Clock = SYSTEM_CLOCK, epoch: float | None = None,
                 servers: int | None = None, base_dir: str | os.PathLike[str] | None = None,
                 profiles: Sequence[HostProfile] = PROFILES) -> None:
        self.clock = clock
        self.seed = seed
        self.hosts = build_hosts(hosts, gpus, seed=seed, clock=clock, epoch=epoch,
                                 profiles=profiles)
        self.server_count = len(self.hosts) if servers is None else max(1, min(servers, hosts))
        self.base_dir = None if base_dir is None else Path(base_dir)
        self.dir: Path | None = None
        self.client_key_path: Path | None = None
        self.known_hosts_path: Path | None = None
        self.ports: list[int] = []
        self.host_ports: dict[str, int] = {}
        self._acceptors: list[asyncssh.SSHAcceptor] = []
        self._connections: set[asyncssh.SSHServerConnection] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._client_public: asyncssh.SSHKey | None = None
        self._started = False
        self.logs: DemoLogs | None = None

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> DemoFleet:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> DemoFleet:
        if self._started:
            return self
        if self.base_dir is not None:
            self.base_dir.mkdir(parents=True, exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix="nomadlab-demo-",
                                         dir=None if self.base_dir is None else str(self.base_dir)))
        try:
            await self._start_servers(self.dir)
            self.logs = DemoLogs(self.dir / "runs", [h.name for h in self.hosts], self.clock,
                                 self.seed)
            self.logs.start()
        except BaseException:
            await self.stop()
            raise
        self._started = True
        return self

    async def _start_servers(self, base: Path) -> None:
        self.ports, self.host_ports = [], {}
        client_key = asyncssh.generate_private_key("ssh-ed25519", comment="nomadlab-demo")
        self._client_public = client_key.convert_to_public()
        self.client_key_path = base / "id_ed25519"
        client_key.write_private_key(str(self.client_key_path))
        os.chmod(self.client_key_path, 0o600)
        client_key.write_public_key(str(base / "id_ed25519.pub"))
        groups: list[dict[str, SimHost]] = [{} for _ in range(self.server_count)]
        for i, host in enumerate(self.hosts):
            groups[i % self.server_count][host.name] = host
        lines = []
        for users in groups:
            host_key = asyncssh.generate_private_key("ssh-ed25519")
            acceptor = await asyncssh.create_server(
                functools.partial(_DemoServer, self, users), LOCALHOST, 0,
                server_host_keys=[host_key],
                process_factory=functools.partial(self._session, users),
                encoding=None,
                line_editor=False,
                agent_forwarding=False,
                x11_forwarding=False,
                allow_scp=False,
                sftp_factory=functools.partial(DemoSftp, base),
                allow_pty=False,
            )
            self._acceptors.append(acceptor)
            port = acceptor.get_port()
            self.ports.append(port)
            for name in users:
                self.host_ports[name] = port
            kind, blob = host_key.export_public_key("openssh").decode("ascii").split()[:2]
            lines.append(f"[{LOCALHOST}]:{port} {kind} {blob}\n")
        self.known_hosts_path = base / "known_hosts"
        self.known_hosts_path.write_text("".join(lines), encoding="ascii")

    async def stop(self) -> None:
        """Close the listeners and every connection, end every session, remove the dir."""
        if self.logs is not None:
            await self.logs.stop()
        for acceptor in self._acceptors:
            acceptor.close()
        for conn in list(self._connections):
            conn.close()
        for conn in list(self._connections):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.wait_closed(), 5.0)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for acceptor in self._acceptors:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(acceptor.wait_closed(), 5.0)
        self._acceptors.clear()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
        self._started = False

    # ------------------------------------------------------------------ the client side

    def host_configs(self) -> list[HostConfig]:
        if self.client_key_path is None or self.known_hosts_path is None:
            raise RuntimeError("start the DemoFleet first")
        return [
            HostConfig(name=h.name, hostname=LOCALHOST, port=self.host_ports[h.name],
                       user=h.name, identity_file=str(self.client_key_path),
                       known_hosts=str(self.known_hosts_path), hourly_cost=h.hourly_cost,
                       tags=["demo"])
            for h in self.hosts
        ]

    def config(self, data_dir: str | os.PathLike[str] | None = None, *, interval: float = 1.0,
               ssh: SshSettings | None = None, show_local: bool = False) -> Config:
        """A client config for this fleet. Nothing outside :attr:`dir` and ``data_dir``
        is read: no ~/.ssh/config, no ~/.ssh/known_hosts."""
        if self.dir is None or self.known_hosts_path is None:
            raise RuntimeError("start the DemoFleet first")
        settings = ssh if ssh is not None else SshSettings(connect_timeout=10.0,
                                                          login_timeout=20.0)
        # A path that does not exist: the user's ~/.ssh/config must not apply here.
        settings.config_file = str(self.dir / "no_ssh_config")
        settings.known_hosts = str(self.known_hosts_path)
        config = Config(source=None, show_local=show_local,
                        data_dir=Path(data_dir) if data_dir is not None else self.dir / "data",
                        hosts=self.host_configs(), ssh=settings)
        config.fleet.interval = interval
        if self.logs is not None:
            config.logs = [LogConfig(name=f"{host}/train", host=host, path=str(path))
                           for host, path in self.logs.paths().items()]
        return config

    # ------------------------------------------------------------------ counters

    @property
    def counters(self) -> dict[str, HostCounters]:
        return {h.name: h.counters for h in self.hosts}

    @property
    def active_sessions(self) -> int:
        return sum(h.counters.active for h in self.hosts)

    @property
    def samples_sent(self) -> int:
        return sum(h.counters.samples for h in self.hosts)

    @property
    def bytes_sent(self) -> int:
        return sum(h.counters.bytes_sent for h in self.hosts)

    @property
    def connections(self) -> int:
        return len(self._connections)

    # ------------------------------------------------------------------ one session

    async def _session(self, users: dict[str, SimHost],
                       process: asyncssh.SSHServerProcess[bytes]) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        username = str(process.get_extra_info("username", ""))
        host = users.get(username)
        try:
            if host is None:  # authentication makes this unreachable; be safe anyway
                process.stderr.write(b"nomadlab-demo: no such host\n")
                process.exit(127)
                return
            if agent_python(process.command) is None:
                host.counters.refused += 1
                word = (process.command or "").split(maxsplit=1)[:1] or ["(shell)"]
                process.stderr.write(
                    f"nomadlab-demo: {host.name} runs only the nomadlab agent; "
                    f"refused {word[0][:40]!r}\n".encode("utf-8", "replace"))
                process.exit(127)
                return
            try:
                bundle = await _read_bundle(process.stdin)
            except _BadPayload as exc:
                process.stderr.write(f"Traceback (most recent call last):\n  {exc}\n".encode())
                process.exit(1)
                return
            if bundle["agent"] == bootstrap.tailagent_source():
                code = await self._run_tail(process, bundle)
                process.exit(code)
                return
            code = await self._run_agent(host, process, bundle.get("args", {}))
            process.exit(code)
        except (OSError, asyncssh.Error):
            pass  # the channel or the connection went away
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def _run_tail(self, process: asyncssh.SSHServerProcess[bytes],
                        bundle: dict[str, Any]) -> int:
        """The log tail agent, for real: a local process on the demo's own log files.

        Only paths inside the demo's directory are tailed; anything else is refused
        the way a host refuses a file it does not have.
        """
        args = dict(bundle.get("args", {}))
        assert self.dir is not None
        root = self.dir.resolve()
        user = str(process.get_extra_info("username", ""))
        raw = expand_home(str(args.get("path", "")), root, user)
        args["path"] = raw
        target = Path(os.path.expanduser(raw)).resolve() if raw else root
        if root not in target.parents:
            args["path"] = str(root / "not-in-the-demo" / Path(raw).name)
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-u", "-c", bootstrap.BOOT, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(bootstrap.tail_payload(args))

        async def upstream() -> None:  # heartbeats and EOF from the client
            assert child.stdin is not None
            try:
                while data := await process.stdin.read(65536):
                    child.stdin.write(data)
                    await child.stdin.drain()
            except (OSError, asyncssh.Error):
                pass
            with contextlib.suppress(OSError):
                child.stdin.close()

        pump = asyncio.create_task(upstream())
        try:
            while data := await child.stdout.read(65536):
                process.stdout.write(data)
                await process.stdout.drain()
        except (OSError, asyncssh.Error):
            pass
        finally:
            pump.cancel()
            if child.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.kill()
            code = await child.wait()
        return max(0, code)

    async def _run_agent(self, host: SimHost, process: asyncssh.SSHServerProcess[bytes],
                         args: dict[str, Any]) -> int:
        """The agent's main loop (:meth:`agent.Agent.run`), on asyncio instead of threads."""
        counters = host.counters
        try:
            interval = max(0.1, float(args.get("interval", 1.0)))
            heartbeat_timeout = float(args.get("heartbeat_timeout", 60.0))
        except (TypeError, ValueError):
            process.stderr.write(b"ValueError: bad agent arguments\n")
            return 1
        once = bool(args.get("once", False))
        loop = asyncio.get_running_loop()
        counters.sessions += 1
        counters.active += 1
        sim = host.agent()
        stop = asyncio.Event()
        wake = asyncio.Event()
        state = {"interval": interval, "last_input": loop.time()}

        async def write(build: str) -> None:
            started = time.perf_counter()
            message = sim.hello() if build == "hello" else sim.sample()
            data: bytes = _agent.encode(message)
            counters.build_seconds += time.perf_counter() - started
            process.stdout.write(data)
            counters.bytes_sent += len(data)
            if build == "hello":
                counters.hellos += 1
            else:
                counters.samples += 1
            await process.stdout.drain()

        async def listen() -> None:
            """Heartbeats and commands on stdin; EOF (or a closed channel) ends it."""
            try:
                while True:
                    raw = await process.stdin.readline()
                    if not raw:
                        break
                    state["last_input"] = loop.time()
                    words = raw.decode("utf-8", "replace").split()
                    if len(words) == 2 and words[0] == "interval":
                        try:
                            state["interval"] = min(3600.0, max(0.1, float(words[1])))
                        except ValueError:
                            continue
                        wake.set()
                    elif words == ["quit"]:
                        break
            except (OSError, asyncssh.Error):
                pass
            stop.set()
            wake.set()

        listener: asyncio.Task[None] | None = None
        try:
            await write("hello")
            if once:
                counters.once += 1
                await write("sample")
                return 0
            listener = asyncio.create_task(listen())
            next_tick = loop.time()
            while not stop.is_set():
                if loop.time() - state["last_input"] > heartbeat_timeout:
                    return 3  # the client is gone without closing stdin
                await write("sample")
                next_tick += state["interval"]
                delay = next_tick - loop.time()
                if delay < 0:  # fell behind: do not burst
                    next_tick = loop.time()
                    delay = 0.0
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await wake.wait()
                if wake.is_set() and not stop.is_set():
                    wake.clear()
                    next_tick = loop.time()
            return 0
        except (OSError, asyncssh.Error):
            return 2  # stdout gone: the channel closed
        finally:
            counters.active -= 1
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await listener
            sim.close()


def demo_summary(hosts: Iterable[SimHost]) -> list[dict[str, Any]]:
    """One line per host for ``nomadlab demo --list`` and benchmark headers."""
    return [
        {"name": h.name, "gpu": h.gpu_name, "gpus": len(h.gpus),
         "hourly_cost": h.hourly_cost, "busy": len(h.busy_gpus())}
        for h in hosts
    ]

