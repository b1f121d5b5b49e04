"""The demo fleet: simulated NVML behind real in-process SSH servers, real client."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import asyncssh
import pytest
from conftest import wait_for

from nomadlab.core.clock import ManualClock
from nomadlab.core.model import GpuSource, HostSample, HostState, HostStatus
from nomadlab.hostside import agent
from nomadlab.remote import bootstrap
from nomadlab.remote.demo import (
    PROFILES,
    DemoFleet,
    SimulatedNvml,
    SimulatedProcessNames,
    agent_python,
    build_hosts,
    sim_health_options,
)
from nomadlab.remote.fleet import Fleet

FREE_UTIL = 5.0
FREE_MIB = 1024.0


class Recorder:
    def __init__(self) -> None:
        self.statuses: list[HostStatus] = []
        self.samples: list[HostSample] = []
        self.latest: dict[str, HostSample] = {}

    def fleet_status(self, status: HostStatus) -> None:
        self.statuses.append(status)

    def fleet_sample(self, sample: HostSample) -> None:
        self.samples.append(sample)
        self.latest[sample.host] = sample

    def count(self, host: str) -> int:
        return sum(1 for s in self.samples if s.host == host)


def all_live(fleet: Fleet) -> bool:
    return all(s.state is HostState.LIVE for s in fleet.statuses.values())


async def connect(demo: DemoFleet, user: str, port: int | None = None
                  ) -> asyncssh.SSHClientConnection:
    """A plain asyncssh client with the demo's key and known_hosts (real host-key check)."""
    assert demo.client_key_path is not None and demo.known_hosts_path is not None
    return await asyncssh.connect(
        "127.0.0.1", port or demo.host_ports[user], username=user,
        client_keys=[str(demo.client_key_path)], known_hosts=str(demo.known_hosts_path),
        config=None, agent_path=None)


def home_files(home: Path) -> list[Path]:
    return sorted(p for p in home.rglob("*"))


# --------------------------------------------------------------------------- end to end


async def test_demo_fleet_over_real_ssh(tmp_path: Path, isolated_home: Path) -> None:
    before = home_files(isolated_home)
    rec = Recorder()
    async with DemoFleet(hosts=4, gpus=8, seed=1, base_dir=tmp_path / "demo") as demo:
        assert demo.dir is not None and demo.dir.is_relative_to(tmp_path / "demo")
        assert sorted(p.name for p in demo.dir.iterdir()) == [
            "id_ed25519", "id_ed25519.pub", "known_hosts", "runs"]
        assert sorted(p.name for p in (demo.dir / "runs").iterdir()) == [
            p.key for p in sorted(PROFILES, key=lambda p: p.key)]
        config = demo.config(tmp_path / "data", interval=0.2)
        assert config.show_local is False
        assert [h.name for h in config.hosts] == [p.key for p in PROFILES]
        fleet = Fleet(config)
        fleet.listeners.append(rec)
        await fleet.start()
        try:
            await wait_for(lambda: all_live(fleet)
                           and all(rec.count(h) >= 3 for h in fleet.names()),
                           timeout=20, what="every host live with samples")
            assert demo.active_sessions == 4
        finally:
            await fleet.stop()
        # The client is gone: every agent session on the servers ends on its own.
        await wait_for(lambda: demo.active_sessions == 0, timeout=10, what="sessions ending")
        counters = demo.counters
        assert all(c.samples >= 3 and c.hellos == 1 and c.bytes_sent > 0
                   for c in counters.values())
        assert demo.samples_sent >= 12 and demo.bytes_sent > 0

    for profile in PROFILES:
        status = fleet.statuses[profile.key]
        info = status.info
        assert info is not None and info.source is GpuSource.NVML
        assert info.hostname == profile.key and info.gpu_count == 8
        assert info.driver == profile.driver
        sample = rec.latest[profile.key]
        assert len(sample.gpus) == 8
        for gpu in sample.gpus:
            assert gpu.name == profile.gpu.name
            assert gpu.memory_total_mib == profile.gpu.memory_mib
            assert gpu.power_limit_w == profile.gpu.power_limit_w
            assert gpu.utilization is not None and 0 <= gpu.utilization <= 100
            assert gpu.memory_used_mib is not None and gpu.memory_used_mib <= gpu.memory_total_mib
            assert gpu.power_w is not None and 0 < gpu.power_w <= gpu.power_limit_w
            assert gpu.temperature_c is not None and 20 <= gpu.temperature_c <= 95
            assert gpu.uuid.startswith("GPU-")
        assert sample.cpu_percent is not None and sample.memory_total_mib
        assert sample.load1 is not None
        assert fleet.costs[profile.key] == profile.hourly_cost

    gpus = [g for s in rec.latest.values() for g in s.gpus]
    busy = [g for g in gpus if g.processes and (g.memory_used_mib or 0) > FREE_MIB]
    free = [g for g in gpus if g.is_free(FREE_UTIL, FREE_MIB)]
    assert len(busy) >= 8 and len(free) >= 8
    commands = {p.command for g in gpus for p in g.processes}
    assert "python train.py --config configs/llama-7b.yaml" in commands
    assert all(p.user and p.user != "?" for g in gpus for p in g.processes)
    # Training GPUs run hot most of the time (over several samples: dips are allowed).
    lambda_utils = [g.utilization for s in rec.samples if s.host == "lambda-h100"
                    for g in s.gpus[:6]]
    assert max(u or 0 for u in lambda_utils) >= 90
    idle = rec.latest["gcp-l40s"]
    assert all(not g.processes and g.is_free(FREE_UTIL, FREE_MIB) for g in idle.gpus)

    assert home_files(isolated_home) == before  # nothing written to HOME
    assert not (tmp_path / "demo").exists() or not any((tmp_path / "demo").iterdir())


async def test_only_the_agent_runs(tmp_path: Path) -> None:
    async with DemoFleet(hosts=2, seed=0, base_dir=tmp_path) as demo:
        conn = await connect(demo, "lambda-h100")
        async with conn:
            result = await conn.run("echo hello; id", check=False)
            assert result.exit_status == 127
            assert "refused" in str(result.stderr)
            assert result.stdout == ""
            # A shell request (no command) is refused too.
            shell = await conn.run(None, check=False, input="")
            assert shell.exit_status == 127
            # The agent command, but garbage for a payload: the bootstrap fails.
            bad = await conn.run(bootstrap.agent_command(), input="12\nnot zlib at all\n",
                                 check=False)
            assert bad.exit_status == 1
        assert demo.counters["lambda-h100"].refused == 2
        # Unknown users and unknown keys get nowhere.
        with pytest.raises(asyncssh.PermissionDenied):
            await connect(demo, "no-such-host", demo.ports[0])
        with pytest.raises(asyncssh.PermissionDenied):  # another host's server
            await connect(demo, "runpod-h200", demo.host_ports["lambda-h100"])
        other = asyncssh.generate_private_key("ssh-ed25519")
        assert demo.known_hosts_path is not None
        with pytest.raises(asyncssh.PermissionDenied):
            await asyncssh.connect("127.0.0.1", demo.host_ports["runpod-h200"],
                                   username="runpod-h200", client_keys=[other],
                                   known_hosts=str(demo.known_hosts_path), config=None,
                                   agent_path=None)


def test_agent_command_recognised() -> None:
    assert agent_python(bootstrap.agent_command()) == "python3"
    assert agent_python(bootstrap.agent_command("/opt/py/bin/python3.12")) == \
        "/opt/py/bin/python3.12"
    assert agent_python("python3 -c 'print(1)'") is None
    assert agent_python(bootstrap.agent_command() + "; rm -rf ~") is None
    assert agent_python(None) is None


async def test_once_interval_and_eof(tmp_path: Path) -> None:
    """``once`` (exec per poll), ``interval`` lines, and stdin EOF ending the agent."""
    async with DemoFleet(hosts=1, seed=2, base_dir=tmp_path) as demo:
        conn = await connect(demo, "lambda-h100")
        async with conn:
            once = await conn.run(bootstrap.agent_command(), encoding=None,
                                  input=bootstrap.payload(1.0, once=True), check=False)
            assert once.exit_status == 0
            assert isinstance(once.stdout, bytes)
            lines = once.stdout.decode().splitlines()
            assert [line.split('"type":"')[1][:5] for line in lines] == ["hello", "sampl"]

            proc = await conn.create_process(bootstrap.agent_command(), encoding=None)
            proc.stdin.write(bootstrap.payload(30.0))
            hello = await asyncio.wait_for(proc.stdout.readline(), 5)
            first = await asyncio.wait_for(proc.stdout.readline(), 5)
            assert b'"hello"' in hello and b'"sample"' in first
            # At 30 s nothing more would come for a while; "interval" wakes it at once.
            proc.stdin.write(b"\n")  # a heartbeat is just a line
            proc.stdin.write(b"interval 0.1\n")
            started = time.monotonic()
            for _ in range(3):
                line = await asyncio.wait_for(proc.stdout.readline(), 5)
                assert b'"sample"' in line
            assert time.monotonic() - started < 3
            assert demo.active_sessions == 1
            proc.stdin.write_eof()
            await asyncio.wait_for(proc.wait_closed(), 5)
            assert proc.exit_status == 0
            # No heartbeat for heartbeat_timeout: the agent ends itself (status 3).
            quiet = await conn.create_process(bootstrap.agent_command(), encoding=None)
            quiet.stdin.write(bootstrap.payload(0.1, heartbeat_timeout=0.5))
            await asyncio.wait_for(quiet.wait_closed(), 5)
            assert quiet.exit_status == 3
        await wait_for(lambda: demo.active_sessions == 0, timeout=5, what="the session to end")
        counters = demo.counters["lambda-h100"]
        assert counters.sessions == 3 and counters.once == 1 and counters.hellos == 3


async def test_stopping_the_demo_ends_everything(tmp_path: Path) -> None:
    """The servers go first (Ctrl-C in ``nomadlab demo``): sessions end, nothing lingers."""
    demo = await DemoFleet(hosts=3, seed=4, base_dir=tmp_path).start()
    rec = Recorder()
    fleet = Fleet(demo.config(tmp_path / "data", interval=0.2))
    fleet.listeners.append(rec)
    await fleet.start()
    try:
        await wait_for(lambda: all_live(fleet), what="live")
        assert demo.active_sessions == 3 and demo.connections == 3
        await asyncio.wait_for(demo.stop(), 10)
        assert demo.active_sessions == 0 and demo.connections == 0
        assert demo.dir is not None and not demo.dir.exists()
        await wait_for(lambda: not any(s.state is HostState.LIVE
                                       for s in fleet.statuses.values()),
                       timeout=10, what="the client to notice")
    finally:
        await fleet.stop()


# --------------------------------------------------------------------------- simulation


def agent_samples(nvml: SimulatedNvml, clock: ManualClock, steps: int,
                  step: float) -> list[list[dict[str, object]]]:
    gpus: Any = agent.NvmlGpus(nvml, names=SimulatedProcessNames(nvml.host),  # type: ignore[no-untyped-call]
                               health_options=sim_health_options(nvml.host))
    out = []
    for _ in range(steps):
        out.append(gpus.sample())
        clock.advance(step)
    return out


def without_ages(gpus: Any) -> Any:
    """How long a throttle reason has held is the agent's memory, not the simulation's
    state at one moment: left out where only the moment is compared."""
    return [{k: ({hk: hv for hk, hv in v.items() if hk != "thr_s"} if k == "h" else v)
             for k, v in g.items()} for g in gpus]


def test_simulation_is_deterministic() -> None:
    for index in range(4):
        a_clock, b_clock = ManualClock(), ManualClock()
        a = SimulatedNvml(seed=7, clock=a_clock, index=index)
        b = SimulatedNvml(seed=7, clock=b_clock, index=index)
        first = agent_samples(a, a_clock, 40, 13.7)
        assert first == agent_samples(b, b_clock, 40, 13.7)
        # Pure in time: asking at one moment gives the same as after a long history.
        c_clock = ManualClock()
        c = SimulatedNvml(seed=7, clock=c_clock, index=index, epoch=ManualClock().time())
        c_clock.advance(13.7 * 39)
        assert without_ages(agent_samples(c, c_clock, 1, 1.0)[0]) == without_ages(first[-1])
    other_clock = ManualClock()
    other = SimulatedNvml(seed=8, clock=other_clock, index=0)
    same_clock = ManualClock()
    same = SimulatedNvml(seed=7, clock=same_clock, index=0)
    assert agent_samples(other, other_clock, 3, 5.0) != agent_samples(same, same_clock, 3, 5.0)


def test_simulated_messages_are_deterministic() -> None:
    def messages() -> list[dict[str, object]]:
        clock = ManualClock()
        sim = build_hosts(4, seed=3, clock=clock)[3].agent()
        out = [sim.hello()]
        for _ in range(5):
            out.append(sim.sample())
            clock.advance(30.0)
        return out

    first = messages()
    assert first == messages()
    assert first[1]["t"] == ManualClock().time()
    assert first[0]["python"] == "3.12.3"


def test_simulation_behaves_like_a_fleet() -> None:
    """Training at 90-99 % with dips, memory ramps to a plateau, heat lags, power capped."""
    clock = ManualClock()
    hosts = {h.name: h for h in build_hosts(4, seed=5, clock=clock)}
    sims = {name: h.agent() for name, h in hosts.items()}
    series: dict[str, list[dict[str, object]]] = {name: [] for name in hosts}
    for _ in range(int(3600 / 5)):
        for name, sim in sims.items():
            series[name].append(sim.sample())
        clock.advance(5.0)

    def gpu(name: str, index: int, key: str) -> list[float]:
        return [float(s["gpus"][index][key]) for s in series[name]]  # type: ignore[index]

    train = gpu("lambda-h100", 0, "util")
    hot = sum(1 for u in train if 90 <= u <= 100)
    assert hot / len(train) > 0.7, "training runs at 90-99 % most of the time"
    assert any(u < 60 for u in train), "with dips (evaluation, stalls, checkpoints)"
    # Data-parallel ranks dip together.
    rank1 = gpu("lambda-h100", 1, "util")
    assert sum(1 for a, b in zip(train, rank1, strict=True) if abs(a - b) > 25) < len(train) / 20
    # Power follows utilization and stays at or under the limit.
    power = gpu("lambda-h100", 0, "pw")
    assert max(power) <= 700 and min(power) > 50
    assert sum(power) / len(power) > 500
    # Temperature follows with lag: busy GPUs warmer than idle ones.
    assert min(gpu("lambda-h100", 0, "temp")[20:]) > max(gpu("lambda-h100", 7, "temp")) - 5
    assert sum(gpu("lambda-h100", 0, "temp")) / len(train) > 55
    # Idle GPUs: no processes, nothing used.
    for name, index in (("lambda-h100", 7), ("runpod-h200", 7), ("home-4090", 6)):
        assert all(s["gpus"][index]["procs"] == [] for s in series[name])  # type: ignore[index]
        assert max(gpu(name, index, "util")) == 0
        assert max(gpu(name, index, "mu")) < FREE_MIB
    # The finished host stays idle all hour.
    assert all(g["procs"] == [] and g["util"] == 0 for s in series["gcp-l40s"]
               for g in s["gpus"])  # type: ignore[attr-defined]
    # The job that starts during the demo: memory ramps up, then plateaus.
    ramp = gpu("home-4090", 3, "mu")
    assert ramp[0] < FREE_MIB and max(ramp) > 15_000
    top = max(ramp)
    plateau = [m for m in ramp if m > 0.98 * top]
    assert len(plateau) > len(ramp) / 2
    # Host stats are plausible.
    last = series["lambda-h100"][-1]
    assert 0 < float(last["cpu"]) < 100  # type: ignore[arg-type]
    assert 0 < float(last["ram_used"]) < float(last["ram_total"])  # type: ignore[arg-type]


def test_many_hosts_are_cheap_to_build() -> None:
    hosts = build_hosts(100, 8, seed=0, clock=ManualClock())
    names = [h.name for h in hosts]
    assert len(set(names)) == 100 and names[0] == "lambda-h100-01"
    started = time.perf_counter()
    for h in hosts:
        h.agent().sample()
    assert time.perf_counter() - started < 5


# --------------------------------------------------------------------------- benchmarks' size


@pytest.mark.parametrize("servers", [None, 1], ids=["port-per-host", "one-port"])
async def test_hundred_hosts_go_live(tmp_path: Path, servers: int | None) -> None:
    started = time.monotonic()
    rec = Recorder()
    async with DemoFleet(hosts=100, gpus=8, seed=0, base_dir=tmp_path,
                         servers=servers) as demo:
        assert len(set(demo.ports)) == (100 if servers is None else 1)
        fleet = Fleet(demo.config(tmp_path / "data", interval=1.0))
        fleet.listeners.append(rec)
        await fleet.start()
        try:
            await wait_for(lambda: all_live(fleet) and len(rec.latest) == 100, timeout=30,
                           what="100 hosts live")
            live_after = time.monotonic() - started
        finally:
            await fleet.stop()
        await wait_for(lambda: demo.active_sessions == 0, timeout=15, what="sessions ending")
    assert all(len(s.gpus) == 8 for s in rec.latest.values())
    print(f"100 hosts x 8 GPUs live after {live_after:.2f}s ({servers or 100} servers)")


async def test_manual_clock_makes_the_wire_reproducible(tmp_path: Path) -> None:
    """Snapshot tests: same seed, same ManualClock -> the same bytes over SSH."""

    async def once_output(seed: int) -> bytes:
        clock = ManualClock()
        async with DemoFleet(hosts=4, seed=seed, clock=clock, base_dir=tmp_path) as demo:
            clock.advance(600.0)
            out = b""
            for host in demo.hosts:
                conn = await connect(demo, host.name)
                async with conn:
                    result = await conn.run(bootstrap.agent_command(), encoding=None,
                                            input=bootstrap.payload(1.0, once=True))
                assert isinstance(result.stdout, bytes)
                out += result.stdout
            return out

    first = await once_output(11)
    assert first == await once_output(11)
    assert first != await once_output(12)
    assert f'"t":{ManualClock().time() + 600.0}'.encode() in first
