"""Without python3 on the host, the nvidia-smi fallback ends on the host when its link
goes silent (issue 9, item 4).

A real sshd whose sessions find no usable python3 (the configured interpreter does not
exist) and a stand-in nvidia-smi on PATH; the client reaches it through a TCP proxy
that can black-hole the link (nothing forwarded, nothing closed). With a short
heartbeat the sh sampling loop and both nvidia-smi streams must be gone under sshd
soon after the heartbeat timeout, although sshd itself never learns that the client
went away (no ClientAlive settings).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path

import asyncssh
import pytest
from conftest import wait_for
from sshd import SshServer
from tcpproxy import TcpProxy

from nomadlab.core.clock import SYSTEM_CLOCK
from nomadlab.core.model import AgentInfo, GpuSource, HostSample
from nomadlab.remote.session import AgentSession

pytestmark = pytest.mark.sshd

HEARTBEAT = 0.3
HEARTBEAT_TIMEOUT = 2.0
SSHD_PROCESSES = {"sshd", "sshd-session", "sshd-auth"}  # per-connection sshd itself


class Sink:
    def __init__(self) -> None:
        self.infos: list[AgentInfo] = []
        self.samples: list[HostSample] = []

    def on_info(self, info: AgentInfo) -> None:
        self.infos.append(info)

    def on_sample(self, sample: HostSample) -> None:
        self.samples.append(sample)

    def on_garbage(self, total: int) -> None:
        return None


def ours(server: SshServer) -> list[str]:
    """Processes under sshd that are not sshd: what the session left running there."""
    names = []
    for pid in server.session_pids():
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue  # ended meanwhile
        if name not in SSHD_PROCESSES:
            names.append(name)
    return names


async def test_a_black_holed_link_ends_the_fallback_on_the_host(
        make_sshd: Callable[..., SshServer], fake_smi_bin: Path, tmp_path: Path) -> None:
    from standins.smi import fake_smi_env

    env = fake_smi_env(fake_smi_bin, "h100", state="load", gpus=2)
    server = make_sshd({k: v for k, v in env.items() if k.startswith("NOMADLAB_")}
                       | {"PATH": f"{fake_smi_bin}:/usr/bin:/bin"})
    proxy = await TcpProxy(server.port).start()
    conn = await asyncssh.connect(
        "127.0.0.1", proxy.port, username=server.user, client_keys=[str(server.client_key)],
        known_hosts=None, agent_path=None, keepalive_interval=0)
    sink = Sink()
    session = AgentSession(conn, "gpu1", sink, SYSTEM_CLOCK, interval=0.2,
                           python="python3-is-not-installed-here", heartbeat=HEARTBEAT,
                           heartbeat_timeout=HEARTBEAT_TIMEOUT)
    task = asyncio.create_task(session.run())
    try:
        await wait_for(lambda: any(s.gpus and s.load1 is not None for s in sink.samples),
                       timeout=15, what="samples through the fallback")
        assert sink.infos[0].source is GpuSource.NVIDIA_SMI
        assert {"sh", "nvidia-smi"} <= set(ours(server))  # the loop, the two streams

        # Heartbeats keep it alive well past the timeout.
        before = len(sink.samples)
        await wait_for(lambda: len(sink.samples) >= before + 3 * HEARTBEAT_TIMEOUT / 0.2,
                       timeout=15, what="samples past the heartbeat timeout")
        assert "sh" in ours(server)

        proxy.blackhole()  # silence: nothing forwarded, nothing closed
        await wait_for(lambda: ours(server) == [], timeout=HEARTBEAT_TIMEOUT + 8,
                       what=f"the fallback gone on the host (left: {ours(server)})")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
        conn.abort()
        await proxy.close()


async def test_a_closed_channel_ends_the_fallback_at_once(
        make_sshd: Callable[..., SshServer], fake_smi_bin: Path, tmp_path: Path) -> None:
    from standins.smi import fake_smi_env

    env = fake_smi_env(fake_smi_bin, "h100", state="load", gpus=1)
    server = make_sshd({k: v for k, v in env.items() if k.startswith("NOMADLAB_")}
                       | {"PATH": f"{fake_smi_bin}:/usr/bin:/bin"})
    conn = await asyncssh.connect(
        "127.0.0.1", server.port, username=server.user,
        client_keys=[str(server.client_key)], known_hosts=None, agent_path=None)
    sink = Sink()
    session = AgentSession(conn, "gpu1", sink, SYSTEM_CLOCK, interval=0.2,
                           python="python3-is-not-installed-here", heartbeat=HEARTBEAT,
                           heartbeat_timeout=60.0)  # the timeout plays no part here
    task = asyncio.create_task(session.run())
    try:
        await wait_for(lambda: any(s.gpus for s in sink.samples), timeout=15,
                       what="samples through the fallback")
        task.cancel()  # the client stops: its channels close
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await wait_for(lambda: ours(server) == [], timeout=10,
                       what=f"the fallback gone on the host (left: {ours(server)})")
    finally:
        conn.close()
        with contextlib.suppress(Exception):
            await conn.wait_closed()
