"""Faults the fleet must survive, each seen the way a user would see it.

Real OpenSSH sshd on 127.0.0.1 throughout (tests/sshd.py); an asyncssh in-process
server only where a host has to misbehave on purpose (garbage on the wire), and a
small TCP proxy (tests/tcpproxy.py) where the link itself has to fail.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import random
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncssh
import pytest
from conftest import Recorder, config_for, host_for, nvml_env, wait_for
from sshd import SshServer, free_port, keygen
from tcpproxy import TcpProxy

from nomadlab.core.clock import ManualClock, WakeDetector
from nomadlab.core.config import Config, HostConfig
from nomadlab.core.model import HostState
from nomadlab.hostside.agent import AGENT_VERSION
from nomadlab.remote.fleet import Fleet
from nomadlab.remote.protocol import dumps
from nomadlab.remote.supervisor import Backoff

pytestmark = pytest.mark.sshd


# --------------------------------------------------------------------------- helpers


@contextlib.asynccontextmanager
async def running(config: Config, **kwargs: object) -> AsyncIterator[tuple[Fleet, Recorder]]:
    fleet = Fleet(config, **kwargs)  # type: ignore[arg-type]
    rec = Recorder()
    fleet.listeners.append(rec)
    await fleet.start()
    try:
        yield fleet, rec
    finally:
        await fleet.stop()


def trusted(server: SshServer) -> None:
    server.write_known_hosts(server.base / "known_hosts")


def state_of(fleet: Fleet, name: str) -> HostState:
    return fleet.statuses[name].state


def log_count(server: SshServer, needle: str) -> int:
    if not server.log.exists():
        return 0
    return server.log.read_text(errors="replace").count(needle)


ACCEPTED = "Accepted publickey for"
REFUSED = "Failed publickey for"  # one line per refused login (LogLevel VERBOSE)


def fingerprint(pub: Path) -> str:
    out = subprocess.run(["ssh-keygen", "-lf", str(pub)], capture_output=True, text=True,
                         check=True).stdout
    return out.split()[1]


# --------------------------------------------------------------------------- 1. unreachable


async def test_unreachable_host_backs_off_and_others_stay_live(gpu_server: SshServer,
                                                               tmp_path: Path) -> None:
    trusted(gpu_server)
    closed = free_port()  # nobody listens here
    down = HostConfig(name="down", hostname="127.0.0.1", port=closed, user=gpu_server.user,
                      identity_file=str(gpu_server.client_key),
                      known_hosts=str(gpu_server.base / "known_hosts"))
    config = config_for(host_for(gpu_server, "gpu1"), down, tmp=tmp_path)
    async with running(config) as (fleet, rec):
        await wait_for(lambda: state_of(fleet, "down") is HostState.RECONNECTING,
                       timeout=10, what="down reconnecting")
        status = fleet.statuses["down"]
        assert status.retry_at is not None and status.retry_at >= status.since
        assert status.error is not None
        assert "connection refused" in status.error, status.error
        assert re.fullmatch(r"reconnecting in \d+s", status.label(time.time()))
        # The healthy host streams while the other one keeps failing and retrying.
        await wait_for(lambda: len(rec.samples_of("gpu1")) >= 3, timeout=10,
                       what="samples from gpu1")
        await wait_for(lambda: rec.states("down").count(HostState.RECONNECTING) >= 2,
                       timeout=10, what="a second attempt on the dead host")
        assert state_of(fleet, "gpu1") is HostState.LIVE
        assert HostState.LIVE not in rec.states("down")
        assert all(s.host == "gpu1" for s in rec.samples)
        assert not any(s.state.is_problem for s in rec.statuses if s.name == "gpu1")


def test_backoff_survives_a_night_of_failures() -> None:
    """A host down overnight: thousands of attempts, the delay stays at its cap."""
    backoff = Backoff(1.0, 60.0, random.Random(7))
    delays = [backoff.next() for _ in range(3000)]  # 2.0 ** 1024 used to overflow here
    assert all(0.5 <= d <= 60.0 for d in delays)
    assert min(delays[-100:]) >= 30.0
    backoff.reset()
    assert backoff.next() <= 1.0


# --------------------------------------------------------------------------- 2. auth refused


async def test_refused_auth_waits_for_the_user(gpu_server: SshServer, tmp_path: Path) -> None:
    trusted(gpu_server)
    stranger = keygen(tmp_path / "id_stranger")  # not in authorized_keys
    config = config_for(host_for(gpu_server, identity_file=str(stranger)), tmp=tmp_path)
    async with running(config) as (fleet, rec):
        await wait_for(lambda: state_of(fleet, "gpu1") is HostState.AUTH_FAILED,
                       timeout=10, what="auth failed")
        error = fleet.statuses["gpu1"].error or ""
        assert "authentication refused" in error, error
        await wait_for(lambda: log_count(gpu_server, REFUSED) == 1, timeout=5,
                       what="the attempt in sshd.log")
        # A window several backoff steps long (0.2 s .. 1 s here): no retry loop.
        await asyncio.sleep(1.5)
        assert log_count(gpu_server, REFUSED) == 1
        assert rec.states("gpu1") == [HostState.CONNECTING, HostState.AUTH_FAILED]
        assert fleet.statuses["gpu1"].retry_at is None

        # The user asks again: one more attempt, refused again.
        fleet.retry("gpu1")
        await wait_for(lambda: log_count(gpu_server, REFUSED) == 2, timeout=10,
                       what="the retried attempt")
        await wait_for(lambda: rec.states("gpu1")[-2:] == [HostState.CONNECTING,
                                                           HostState.AUTH_FAILED],
                       timeout=10, what="auth failed again")
        assert rec.states("gpu1").count(HostState.AUTH_FAILED) == 2

        # The user fixes authorized_keys and retries: live.
        with gpu_server.authorized.open("a") as f:
            f.write(Path(str(stranger) + ".pub").read_text())
        fleet.retry("gpu1")
        await wait_for(lambda: rec.samples, timeout=10, what="a sample after the fix")
        assert state_of(fleet, "gpu1") is HostState.LIVE
        assert log_count(gpu_server, REFUSED) == 2
        assert log_count(gpu_server, ACCEPTED) == 1


# --------------------------------------------------------------------------- 3. unknown key


async def test_unknown_host_key_is_trusted_on_request(gpu_server: SshServer,
                                                      tmp_path: Path) -> None:
    known_hosts = gpu_server.base / "known_hosts"
    known_hosts.write_text("")
    expected = fingerprint(Path(str(gpu_server.host_key) + ".pub"))
    assert expected.startswith("SHA256:")
    config = config_for(host_for(gpu_server), tmp=tmp_path)
    async with running(config) as (fleet, rec):
        await wait_for(lambda: state_of(fleet, "gpu1") is HostState.HOSTKEY_UNKNOWN,
                       timeout=10, what="host key unknown")
        status = fleet.statuses["gpu1"]
        assert status.hostkey is not None and not status.hostkey.changed
        assert status.hostkey.fingerprint == expected
        assert expected in (status.error or "")
        assert status.hostkey.known_hosts == str(known_hosts)
        assert known_hosts.read_text() == ""
        assert log_count(gpu_server, ACCEPTED) == 0  # never logged in
        assert rec.states("gpu1") == [HostState.CONNECTING, HostState.HOSTKEY_UNKNOWN]

        assert fleet.trust("gpu1") == expected
        assert known_hosts.read_text() == gpu_server.host_key_line + "\n"
        await wait_for(lambda: rec.samples, timeout=10, what="a sample once trusted")
        assert state_of(fleet, "gpu1") is HostState.LIVE
        assert fleet.statuses["gpu1"].hostkey is None
        assert log_count(gpu_server, ACCEPTED) == 1


# --------------------------------------------------------------------------- 4. changed key


async def test_changed_host_key_is_refused_loudly(gpu_server: SshServer,
                                                  tmp_path: Path) -> None:
    impostor = keygen(tmp_path / "other_host_key")
    kind, blob = Path(str(impostor) + ".pub").read_text().split()[:2]
    assert kind == "ssh-ed25519"
    known_hosts = gpu_server.base / "known_hosts"
    known_hosts.write_text(f"[127.0.0.1]:{gpu_server.port} {kind} {blob}\n")
    before = known_hosts.read_bytes()
    real = fingerprint(Path(str(gpu_server.host_key) + ".pub"))
    config = config_for(host_for(gpu_server), tmp=tmp_path)
    async with running(config) as (fleet, rec):
        await wait_for(lambda: state_of(fleet, "gpu1") is HostState.HOSTKEY_CHANGED,
                       timeout=10, what="host key changed")
        status = fleet.statuses["gpu1"]
        assert status.hostkey is not None and status.hostkey.changed
        assert status.hostkey.fingerprint == real
        error = status.error or ""
        assert "HOST KEY CHANGED" in error and real in error and "man-in-the-middle" in error
        with pytest.raises(ValueError, match="changed"):
            fleet.trust("gpu1")
        assert known_hosts.read_bytes() == before
        assert state_of(fleet, "gpu1") is HostState.HOSTKEY_CHANGED
        assert not rec.samples
        assert log_count(gpu_server, ACCEPTED) == 0


# --------------------------------------------------------------------------- 5. garbage


def _hello() -> bytes:
    return dumps({
        "type": "hello", "agent": AGENT_VERSION, "python": "3.8.10", "hostname": "junkbox",
        "source": "nvml", "driver": "590.48.01",
        "gpus": [{"i": 0, "name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-0"}], "reason": None,
    })


def _sample(cpu: float, command: str = "python train.py") -> bytes:
    return dumps({
        "type": "sample", "t": round(time.time(), 3), "cpu": cpu, "ram_used": 1024.0,
        "ram_total": 4096.0, "load1": 0.5,
        "gpus": [{"i": 0, "util": 50, "mu": 100.0, "mt": 81559.0, "temp": 40, "pw": 100.0,
                  "pl": 700.0, "procs": [[4242, "alice", command, 100.0]]}],
    })


# Each entry: one thing a broken or hostile host might print; True where it is garbage.
GARBAGE: list[tuple[bytes, bool]] = [
    (b"this is not json\n", True),
    (b"[1, 2, 3]\n", True),  # JSON, not an object
    (b'{"type": "sample", "gpus": "lots"}\n', True),  # wrong type
    (b'{"type": "sample", "gpus": [{"i": "zero"}]}\n', True),
    (b'{"type": "sample", "gpus": [{"i": 0, "procs": [[1, 2]]}]}\n', True),
    (b'{"type": "hello", "gpus": [{"i": -1}]}\n', True),
    (b'{"type": "reboot-now"}\n', True),  # unknown message type
    (b'{"type": "sample"', True),  # truncated ...
    (b"\n\n", False),  # ... by its newline; the empty line after it is not counted
    (b"x" * (2 << 20) + b"\n", True),  # 2 MB before its newline: skipped whole
    (b"\xff\xfe\x80\xc3 not utf-8 \xed\xa0\x80\n", True),
]
BAD_LINES = sum(1 for _, bad in GARBAGE if bad)


async def test_garbage_is_counted_and_skipped(tmp_path: Path) -> None:
    """A host that prints junk, even invalid UTF-8 and a 2 MB line, stays connected."""
    host_key = asyncssh.generate_private_key("ssh-ed25519")
    client_key = keygen(tmp_path / "id_garbage")
    known_hosts = tmp_path / "known_hosts_garbage"
    channels: list[int] = []

    async def agent(process: asyncssh.SSHServerProcess[bytes]) -> None:
        channels.append(1)

        async def drain_stdin() -> None:  # the bootstrap payload and heartbeats
            with contextlib.suppress(Exception):
                while await process.stdin.read(1 << 16):
                    pass

        drain = asyncio.create_task(drain_stdin())
        try:
            process.stderr.write(b"warning: \xff\xfe not utf-8 on stderr\n")
            process.stdout.write(_hello() + _sample(1.0))
            for data, _bad in GARBAGE:
                process.stdout.write(data)
                await process.stdout.drain()
            # Invalid UTF-8 inside a JSON string: a good sample with U+FFFD in it.
            process.stdout.write(_sample(2.0, "python tr\xe9in.py").replace(
                b"tr\\u00e9in", b"tr\xe9in"))
            cpu = 3.0
            while not drain.done():
                process.stdout.write(_sample(cpu))
                await process.stdout.drain()
                cpu += 1.0
                await asyncio.sleep(0.1)
        except (OSError, asyncssh.Error):
            pass
        finally:
            drain.cancel()
            with contextlib.suppress(Exception):
                process.exit(0)

    server = await asyncssh.create_server(
        None, "127.0.0.1", 0, server_host_keys=[host_key],
        authorized_client_keys=asyncssh.import_authorized_keys(
            Path(str(client_key) + ".pub").read_text()),
        process_factory=agent, encoding=None)
    port = server.sockets[0].getsockname()[1]
    public = host_key.export_public_key("openssh").decode().split()
    known_hosts.write_text(f"[127.0.0.1]:{port} {public[0]} {public[1]}\n")
    host = HostConfig(name="junk", hostname="127.0.0.1", port=port, user="tester",
                      identity_file=str(client_key), known_hosts=str(known_hosts))
    try:
        async with running(config_for(host, tmp=tmp_path)) as (fleet, rec):
            await wait_for(lambda: fleet.statuses["junk"].garbage_lines >= BAD_LINES
                           and any((s.cpu_percent or 0) >= 6 for s in rec.samples),
                           timeout=15, what="garbage counted and samples after it")
            status = fleet.statuses["junk"]
            assert status.garbage_lines == BAD_LINES
            assert status.state is HostState.LIVE
            assert status.info is not None and status.info.hostname == "junkbox"
            assert status.info.gpu_count == 1  # the bad hello did not replace the good one
            assert rec.states("junk") == [HostState.CONNECTING, HostState.LIVE]
            assert channels == [1]  # one connection, one channel: never dropped
            cpus = [s.cpu_percent or 0.0 for s in rec.samples]
            assert cpus[:3] == [1.0, 2.0, 3.0]
            assert cpus == sorted(cpus)
            command = rec.samples[1].gpus[0].processes[0].command
            assert command == "python tr\ufffdin.py"
    finally:
        server.close()
        await server.wait_closed()


# --------------------------------------------------------------------------- 6. link cut


async def test_dead_link_goes_stale_then_reconnects(gpu_server: SshServer,
                                                    tmp_path: Path) -> None:
    trusted(gpu_server)
    proxy = await TcpProxy(gpu_server.port).start()
    # Through the proxy, but known_hosts names the real port: pin the name it matches.
    known_hosts = gpu_server.base / "known_hosts"
    known_hosts.write_text(gpu_server.host_key_line.replace(
        f"]:{gpu_server.port} ", f"]:{proxy.port} ") + "\n")
    config = config_for(host_for(gpu_server, port=proxy.port), tmp=tmp_path)
    config.fleet.stale_after = 0.8  # keepalive (1 s x (1 + 1)) drops the link after ~2 s
    try:
        async with running(config) as (fleet, rec):
            await wait_for(lambda: len(rec.samples) >= 2, timeout=10, what="samples")
            proxy.blackhole()
            cut = len(rec.samples)
            await wait_for(lambda: state_of(fleet, "gpu1") is HostState.STALE, timeout=10,
                           what="stale")
            label = fleet.statuses["gpu1"].label(time.time())
            assert re.fullmatch(r"stale \d+s", label), label
            await wait_for(lambda: HostState.RECONNECTING in rec.states("gpu1"),
                           timeout=10, what="keepalive drops the link")
            dropped = next(s for s in rec.statuses if s.state is HostState.RECONNECTING)
            assert dropped.retry_at is not None
            assert "not responding to keepalive" in (dropped.error or ""), dropped.error
            assert len(rec.samples) <= cut + 1  # at most one was already on its way

            proxy.restore()
            await wait_for(lambda: len(rec.samples) >= cut + 3, timeout=15,
                           what="samples resume")
            assert state_of(fleet, "gpu1") is HostState.LIVE
            states = rec.states("gpu1")
            live = states.index(HostState.LIVE)
            stale = states.index(HostState.STALE, live)
            assert states.index(HostState.RECONNECTING, stale) > stale
            assert states[-1] is HostState.LIVE
        # Nothing of ours is left on the host: not the agent of the dead link either.
        await wait_for(lambda: gpu_server.session_pids() == [], timeout=15,
                       what="no session left under sshd")
    finally:
        await proxy.close()


# --------------------------------------------------------------------------- 7. jump host


async def test_hosts_behind_one_bastion_share_one_login(
        make_sshd: Callable[..., SshServer], fake_nvml_dir: Path, nvml_conf: Path,
        tmp_path: Path) -> None:
    bastion = make_sshd()
    env = nvml_env(fake_nvml_dir, nvml_conf)
    targets = [make_sshd(env, client_key=bastion.client_key) for _ in range(2)]
    for server in (bastion, *targets):
        trusted(server)
    jump = host_for(bastion, "bastion", enabled=False)  # only a way in, not monitored
    hosts = [host_for(t, f"t{i}", jump="bastion") for i, t in enumerate(targets)]
    config = config_for(jump, *hosts, tmp=tmp_path)
    async with running(config) as (fleet, rec):
        assert sorted(fleet.supervisors) == ["t0", "t1"]
        await wait_for(lambda: {s.host for s in rec.samples} == {"t0", "t1"}, timeout=15,
                       what="samples from both targets")
        assert fleet.connector.bastion_count() == 1
        for target in targets:
            assert log_count(target, ACCEPTED) == 1
        await wait_for(lambda: log_count(bastion, ACCEPTED) >= 1, timeout=5,
                       what="the bastion login in sshd.log")
        assert log_count(bastion, ACCEPTED) == 1
    assert fleet.connector.bastion_count() == 0


# --------------------------------------------------------------------------- 8. passphrase


async def test_encrypted_key_asks_for_its_passphrase(make_sshd: Callable[..., SshServer],
                                                     tmp_path: Path, isolated_home: Path) -> None:
    secret = "correct-horse-7f3a9c"
    key = keygen(tmp_path / "id_locked", passphrase=secret)
    server = make_sshd(client_key=key)
    trusted(server)
    config = config_for(host_for(server), tmp=tmp_path)
    async with running(config) as (fleet, rec):
        await wait_for(lambda: state_of(fleet, "gpu1") is HostState.PASSPHRASE,
                       timeout=10, what="passphrase needed")
        status = fleet.statuses["gpu1"]
        assert status.key_path == str(key)
        assert str(key) in (status.error or "")
        assert log_count(server, ACCEPTED) == 0

        with pytest.raises(ValueError, match="passphrase"):
            fleet.unlock(str(key), "not-the-passphrase")
        assert rec.states("gpu1") == [HostState.CONNECTING, HostState.PASSPHRASE]

        warning = fleet.unlock(str(key), secret, remember=True)
        assert isinstance(warning, str) and "keyring" in warning
        await wait_for(lambda: rec.samples, timeout=10, what="a sample once unlocked")
        assert state_of(fleet, "gpu1") is HostState.LIVE

    needle = secret.encode()
    places = [isolated_home, tmp_path / "data", tmp_path]
    leaked = [p for base in places if base.exists() for p in base.rglob("*")
              if p.is_file() and needle in p.read_bytes()]
    assert leaked == []


# --------------------------------------------------------------------------- 9. wake


def test_wake_detector_notices_a_sleep() -> None:
    clock = ManualClock()
    detector = WakeDetector(clock)
    assert not detector.check()
    clock.advance(30)  # awake for 30 s: both clocks move
    assert not detector.check()
    clock.jump_wall(600)  # asleep for 10 min: only the wall clock moved
    assert detector.check()
    assert not detector.check()  # reported once


async def test_wake_makes_a_waiting_host_retry_now(tmp_path: Path) -> None:
    server = SshServer(tmp_path / "late")  # not started yet: its port is closed
    trusted(server)
    config = config_for(host_for(server), tmp=tmp_path)
    config.ssh.backoff_initial = 30.0
    config.ssh.backoff_max = 60.0
    clock = ManualClock()
    detector = WakeDetector(clock)
    try:
        async with running(config) as (fleet, rec):
            await wait_for(lambda: state_of(fleet, "gpu1") is HostState.RECONNECTING,
                           timeout=10, what="reconnecting")
            retry_at = fleet.statuses["gpu1"].retry_at
            assert retry_at is not None and retry_at - time.time() > 10  # a long wait ahead
            server.start()
            clock.jump_wall(3600)  # the laptop slept for an hour and woke up
            if detector.check():
                fleet.recheck_all()
            await wait_for(lambda: rec.samples, timeout=8, what="reconnected at once")
            assert state_of(fleet, "gpu1") is HostState.LIVE
            assert time.time() < retry_at
    finally:
        server.stop()


# --------------------------------------------------------------------------- 10. hostile names


async def test_markup_in_process_names_is_plain_data(gpu_server: SshServer, nvml_conf: Path,
                                                     tmp_path: Path) -> None:
    trusted(gpu_server)
    argv = [sys.executable, "-c", "import time; time.sleep(60)", "[bold]x[/]",
            "[@click=app.quit]", "\x1b]0;pwned\x07", "\x1b[2J[/]"]
    job = subprocess.Popen(argv)
    try:
        nvml_conf.write_text(nvml_conf.read_text()
                             + f"\n[proc]\ngpu=5\npid={job.pid}\nmem_mib=512\n")
        config = config_for(host_for(gpu_server), tmp=tmp_path)
        async with running(config) as (fleet, rec):
            await wait_for(lambda: any(p.pid == job.pid for s in rec.samples
                                       for g in s.gpus for p in g.processes),
                           timeout=10, what="the job")
            assert state_of(fleet, "gpu1") is HostState.LIVE
            assert fleet.statuses["gpu1"].garbage_lines == 0
    finally:
        job.kill()
        job.wait()
    proc = next(p for s in rec.samples for g in s.gpus for p in g.processes if p.pid == job.pid)
    assert proc.command == " ".join(argv)
    assert proc.user == getpass.getuser()
