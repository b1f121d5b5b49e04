"""Hostile hosts that try to take the client's memory (issue 9, item 23).

Each host runs a flooding program in place of python3 (tests/hostile.py) behind a real
sshd. The user sees the flooded log in ERROR with "host sent too much", and the rest
keeps working: the host stays live and its samples keep coming. A sample flood is
taken at the configured rate. Peak memory under each flood: benchmarks/hostile_floods.py.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from conftest import Recorder, config_for, host_for, wait_for
from hostile import install, sent
from sshd import SshServer

from nomadlab.core.clock import ManualClock
from nomadlab.core.config import Config, LogConfig, TailSettings
from nomadlab.core.logs import LogLine, LogState, LogStatus
from nomadlab.core.model import HostState
from nomadlab.remote.fleet import Fleet
from nomadlab.remote.session import SAMPLE_BURST
from nomadlab.remote.tail import Logs
from nomadlab.remote.tail_wire import TOO_MUCH

pytestmark = pytest.mark.sshd


class LineCount:
    """Counts lines (a flood of millions must not be kept by the test either)."""

    def __init__(self) -> None:
        self.lines = 0
        self.statuses: list[LogStatus] = []

    def log_lines(self, name: str, lines: list[LogLine]) -> None:
        self.lines += len(lines)

    def log_status(self, status: LogStatus) -> None:
        self.statuses.append(status)


def hostile_config(server: SshServer, tmp: Path, mode: str) -> tuple[Config, Path]:
    server.write_known_hosts(server.base / "known_hosts")
    python, counter = install(tmp / "hostile", mode)
    config = config_for(host_for(server, python=python), tmp=tmp)
    config.logs = [LogConfig("flood", "gpu1", "/var/log/flood.log")]
    config.tail = TailSettings(lines=500, max_lines=1000, poll=0.05, glob_every=0.2)
    return config, counter


@contextlib.asynccontextmanager
async def following(config: Config) -> AsyncIterator[tuple[Logs, LineCount, Fleet, Recorder]]:
    fleet = Fleet(config)
    rec = Recorder()
    fleet.listeners.append(rec)
    await fleet.start()
    logs = Logs(config, fleet, retry=5.0)
    count = LineCount()
    logs.listeners.append(count)
    await logs.start()
    try:
        yield logs, count, fleet, rec
    finally:
        await logs.stop()
        await fleet.stop()


async def too_much(logs: Logs) -> str:
    await wait_for(lambda: logs.statuses["flood"].state is LogState.ERROR, timeout=60,
                   what=f"the flooded log in ERROR (is {logs.statuses['flood']})")
    return logs.statuses["flood"].error or ""


async def still_sampling(fleet: Fleet, rec: Recorder) -> None:
    before = len(rec.samples_of("gpu1"))
    await wait_for(lambda: len(rec.samples_of("gpu1")) >= before + 2, timeout=20,
                   what="samples after the flood")
    assert fleet.statuses["gpu1"].state is HostState.LIVE


async def test_a_frame_of_a_terabyte_ends_the_channel(make_sshd: Callable[..., SshServer],
                                                      tmp_path: Path) -> None:
    config, _counter = hostile_config(make_sshd(), tmp_path, "huge-frame")
    async with following(config) as (logs, count, fleet, rec):
        error = await too_much(logs)
        assert error.startswith(TOO_MUCH), error
        assert "1000000000000 bytes" in error
        assert count.lines == 0
        await still_sampling(fleet, rec)


async def test_an_agent_ignoring_the_window_ends_the_channel(
        make_sshd: Callable[..., SshServer], tmp_path: Path) -> None:
    config, counter = hostile_config(make_sshd(), tmp_path, "no-window")
    async with following(config) as (logs, count, fleet, rec):
        error = await too_much(logs)
        assert error.startswith(TOO_MUCH), error
        assert "flow window" in error
        assert count.lines > 0  # what came within the window was shown
        assert sent(counter) > 0
        # The log buffer kept its bound all along.
        assert len(logs.tails["flood"].buffer) <= 1000
        await still_sampling(fleet, rec)


async def test_a_sample_flood_is_taken_at_the_configured_rate(
        make_sshd: Callable[..., SshServer], tmp_path: Path) -> None:
    config, counter = hostile_config(make_sshd(), tmp_path, "sample-flood")
    config.logs = []
    clock = ManualClock()
    fleet = Fleet(config, clock=clock)
    rec = Recorder()
    fleet.listeners.append(rec)
    await fleet.start()
    try:
        await wait_for(lambda: sent(counter) >= 20_000, timeout=60,
                       what=f"the flood under way (sent {sent(counter)})")
        await wait_for(lambda: len(rec.samples_of("gpu1")) >= SAMPLE_BURST, timeout=20,
                       what="the first samples")
        assert fleet.statuses["gpu1"].state is HostState.LIVE
        # The clock has not moved: a burst's worth in, every other one dropped.
        assert len(rec.samples_of("gpu1")) == SAMPLE_BURST
        assert len(fleet.history.host_cpu["gpu1"].points) == SAMPLE_BURST
        for taken in (SAMPLE_BURST + 1, SAMPLE_BURST + 2):
            clock.advance(config.fleet.interval)
            await wait_for(lambda n=taken: len(rec.samples_of("gpu1")) >= n, timeout=20,
                           what=f"sample {taken} after the clock moved one interval")
            assert len(rec.samples_of("gpu1")) == taken
    finally:
        await fleet.stop()
