"""Signalling a process on a host: through the agent, after a start-time check.

Real processes on the real sshd host; the SSH user is the test's user (root here),
or a second, unprivileged user created for the refusal test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import config_for, host_for, wait_for
from sshd import SshServer, keygen
from test_cli import host_block, no_traceback, nomadlab, write_config

from nomadlab.core.config import Config
from nomadlab.hostside import agent
from nomadlab.remote.fleet import Fleet
from nomadlab.remote.process_actions import (
    ActionRefused,
    ProcessRef,
    describe,
    is_alive,
    send_signal,
)

pytestmark = pytest.mark.sshd

OTHER_USER = "nomadlab-test"


@pytest.fixture
def victim() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c",
                             "import time; print('up', flush=True); time.sleep(120)"],
                            stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"up\n"
    yield proc
    proc.kill()
    proc.wait()
    proc.stdout.close()


@pytest.fixture
def server(make_sshd: Callable[..., SshServer]) -> SshServer:
    server = make_sshd()
    server.write_known_hosts(server.base / "known_hosts")
    return server


async def live_fleet(config: Config) -> Fleet:
    fleet = Fleet(config)
    await fleet.start()
    sup = fleet.supervisors["gpu1"]
    await wait_for(lambda: sup.status.info is not None, what="the agent's hello")
    return fleet


def our_lines(stderr: str) -> list[str]:
    """What nomadlab itself printed (the environment's library warnings left out)."""
    return [line for line in stderr.splitlines() if line.startswith("nomadlab:")]


def exited(proc: subprocess.Popen[bytes]) -> int | None:
    try:
        return proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        return None


# --------------------------------------------------------------------------- agent level


def test_agent_refuses_a_reused_pid(victim: subprocess.Popen[bytes]) -> None:
    start = agent.start_time(victim.pid)
    assert start is not None
    reply = agent.handle_command({"cmd": "signal", "pid": victim.pid, "start": start + 1,
                                  "sig": "TERM", "id": 1})
    assert reply["ok"] is False and "start time changed" in reply["error"]
    assert victim.poll() is None
    bad = agent.handle_command({"cmd": "signal", "pid": victim.pid, "start": start,
                                "sig": "HUP", "id": 2})
    assert bad["ok"] is False and "TERM, INT, KILL" in bad["error"]


# --------------------------------------------------------------------------- over ssh


async def test_signal_through_the_agent(server: SshServer, tmp_path: Path,
                                        victim: subprocess.Popen[bytes]) -> None:
    fleet = await live_fleet(config_for(host_for(server), tmp=tmp_path))
    try:
        ref = await describe(fleet, "gpu1", victim.pid)
        assert ref.user == "root" or ref.user == os.environ.get("USER", ref.user)
        assert "time.sleep(120)" in ref.command
        assert await is_alive(fleet, ref)
        await send_signal(fleet, ref, "TERM")
        assert exited(victim) == -15
        assert not await is_alive(fleet, ref)
    finally:
        await fleet.stop()


async def test_a_reused_pid_is_never_hit(server: SshServer, tmp_path: Path,
                                         victim: subprocess.Popen[bytes]) -> None:
    """The user saw another process with this pid: its start time differs, so no signal."""
    fleet = await live_fleet(config_for(host_for(server), tmp=tmp_path))
    try:
        now = await describe(fleet, "gpu1", victim.pid)
        seen = ProcessRef("gpu1", victim.pid, now.start - 1, now.user, "an older process")
        with pytest.raises(ActionRefused, match="start time changed"):
            await send_signal(fleet, seen, "KILL")
    finally:
        await fleet.stop()
    assert victim.poll() is None


async def test_read_only_sends_nothing(server: SshServer, tmp_path: Path,
                                       victim: subprocess.Popen[bytes]) -> None:
    config = config_for(host_for(server), tmp=tmp_path)
    config.fleet.read_only = True
    fleet = await live_fleet(config)
    try:
        ref = await describe(fleet, "gpu1", victim.pid)
        with pytest.raises(ActionRefused, match="read-only"):
            await send_signal(fleet, ref, "KILL")
    finally:
        await fleet.stop()
    assert victim.poll() is None


# --------------------------------------------------------------------------- CLI


def test_cli_signal(server: SshServer, isolated_home: Path,
                    victim: subprocess.Popen[bytes]) -> None:
    write_config(isolated_home, host_block(server, "gpu1"))
    result = nomadlab("signal", "gpu1", str(victim.pid), "--signal", "INT")
    no_traceback(result)
    assert result.returncode == 0, result.stderr
    assert f"sent SIGINT to {victim.pid}" in result.stdout
    assert exited(victim) is not None


def test_cli_refusals_are_one_line(server: SshServer, isolated_home: Path,
                                   victim: subprocess.Popen[bytes]) -> None:
    config = write_config(isolated_home, host_block(server, "gpu1"))
    gone = nomadlab("signal", "gpu1", str(2**22 + 4321))
    no_traceback(gone)
    assert gone.returncode == 2 and len(our_lines(gone.stderr)) == 1
    assert "no process" in gone.stderr
    unknown = nomadlab("signal", "nope", "1")
    assert unknown.returncode == 2 and "unknown host 'nope'" in unknown.stderr
    config.write_text(config.read_text().replace('interval = "0.5s"',
                                                 'interval = "0.5s"\nread_only = true'))
    locked = nomadlab("signal", "gpu1", str(victim.pid))
    no_traceback(locked)
    assert locked.returncode == 2 and "read-only" in locked.stderr
    assert len(our_lines(locked.stderr)) == 1
    assert victim.poll() is None


# --------------------------------------------------------------------------- another user


def foreign_process() -> tuple[int, str]:
    """A live process of a user other than this one (for a non-root run), or none."""
    import pwd

    for entry in sorted(Path("/proc").iterdir(), key=lambda p: p.name):
        if entry.name.isdigit():
            try:
                uid = entry.stat().st_uid
            except OSError:
                continue
            if uid != os.getuid():
                return int(entry.name), pwd.getpwuid(uid).pw_name
    pytest.fail("no process of another user on this machine", pytrace=False)


@pytest.fixture
def unprivileged(make_sshd: Callable[..., SshServer], tmp_path: Path
                 ) -> Iterator[tuple[SshServer, str]]:
    """(sshd, SSH user) where the SSH user is not root.

    Run as root: a second user, OTHER_USER, is created and may log in with a test key.
    Run as a normal user: that user is already unprivileged.
    """
    if os.geteuid() != 0:
        server = make_sshd()
        server.write_known_hosts(server.base / "known_hosts")
        yield server, server.user
        return
    if shutil.which("useradd") is None:
        pytest.fail("running as root: useradd is needed to create a second user", pytrace=False)
    exists = subprocess.run(["id", OTHER_USER], capture_output=True, check=False).returncode == 0
    if not exists:
        subprocess.run(["useradd", "-m", "-s", "/bin/sh", OTHER_USER], check=True)
    subprocess.run(["usermod", "-p", "*", OTHER_USER], check=True)  # not locked, no password
    keys = Path(tempfile.mkdtemp(prefix="nomadlab-keys-"))
    try:
        keys.chmod(0o755)  # readable by OTHER_USER: sshd reads authorized_keys as that user
        client_key = keygen(tmp_path / "id_other")
        authorized = keys / "authorized_keys"
        authorized.write_text(Path(str(client_key) + ".pub").read_text())
        authorized.chmod(0o644)
        server = make_sshd(client_key=client_key,
                           extra=f"Match User {OTHER_USER}\n  AuthorizedKeysFile {authorized}")
        server.write_known_hosts(server.base / "known_hosts")
        yield server, OTHER_USER
    finally:
        shutil.rmtree(keys, ignore_errors=True)


async def test_a_process_of_another_user_is_refused(unprivileged: tuple[SshServer, str],
                                                    tmp_path: Path,
                                                    victim: subprocess.Popen[bytes]) -> None:
    server, user = unprivileged
    if os.geteuid() == 0:
        pid, owner = victim.pid, "root"  # the test's own process: root's
    else:
        pid, owner = foreign_process()
    fleet = await live_fleet(config_for(host_for(server, user=user), tmp=tmp_path))
    try:
        ref = await describe(fleet, "gpu1", pid)
        with pytest.raises(ActionRefused) as caught:
            await send_signal(fleet, ref, "TERM")
    finally:
        await fleet.stop()
    assert f"not permitted: process {pid} belongs to user {owner}" in str(caught.value)
    assert victim.poll() is None
