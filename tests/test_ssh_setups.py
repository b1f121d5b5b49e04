"""OpenSSH setups as users have them (issue 9, items 15-19 and 25).

Real sshd on 127.0.0.1, real ``ssh-agent`` processes, real ``~/.ssh/config`` files
with ``Include``, ``Match`` and ``Host *``; where it helps, the system ``ssh``
client is run on the same config to show that nomadlab connects where OpenSSH does.
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from clirun import run_main
from sshd import SshServer, keygen

from nomadlab.core.config import HostConfig, SshSettings
from nomadlab.remote import sshconfig
from nomadlab.remote.ssh import Connector
from nomadlab.remote.ssh_errors import AuthFailed, HostKeyProblem
from nomadlab.remote.ssh_target import resolve_target

CLI_TIMEOUT = 60


# --------------------------------------------------------------------------- helpers


def nomadlab(*args: str) -> subprocess.CompletedProcess[str]:
    """``main`` in this process (tests/clirun.py); the race test below keeps processes."""
    return run_main(*args)


def no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr + result.stdout, result.stderr


class Agent:
    """A real ssh-agent on a socket of its own."""

    def __init__(self, sock: Path) -> None:
        self.sock = sock
        self.proc = subprocess.Popen(["ssh-agent", "-D", "-a", str(sock)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not sock.exists():  # bounded: waiting for the process to start
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("ssh-agent did not start")
            time.sleep(0.02)

    def add(self, key: Path) -> None:
        subprocess.run(["ssh-add", "-q", str(key)], check=True, capture_output=True,
                       env={**os.environ, "SSH_AUTH_SOCK": str(self.sock)}, timeout=20)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)


@pytest.fixture
def agent() -> Iterator[Agent]:
    if shutil.which("ssh-agent") is None or shutil.which("ssh-add") is None:
        pytest.skip("ssh-agent not installed")
    directory = Path(tempfile.mkdtemp(prefix="nl-agent-"))  # unix socket paths are short
    running = Agent(directory / "agent.sock")
    yield running
    running.stop()
    shutil.rmtree(directory, ignore_errors=True)


def settings_for(config: Path | str) -> SshSettings:
    return SshSettings(connect_timeout=5, login_timeout=10, keepalive_interval=2,
                       config_file=str(config))


async def run_echo(settings: SshSettings, host: HostConfig) -> str:
    connector = Connector(settings, [host])
    try:
        conn = await connector.connect(host)
        async with conn:
            result = await conn.run("echo connected", check=True, timeout=10)
        return str(result.stdout).strip()
    finally:
        await connector.close()


def openssh_connects(config: Path, alias: str, env: dict[str, str] | None = None) -> bool:
    """The system ssh client, same config, no prompts: does OpenSSH get in?"""
    result = subprocess.run(
        ["ssh", "-F", str(config), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
         alias, "echo", "connected"], capture_output=True, text=True, timeout=30, check=False,
        stdin=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    return result.returncode == 0 and result.stdout.strip() == "connected"


def accepted(server: SshServer) -> int:
    return server.log.read_text(errors="replace").count("Accepted publickey")


def agent_key_server(make_sshd: Callable[..., SshServer], tmp_path: Path) -> SshServer:
    key = keygen(tmp_path / "agentkey")
    return make_sshd(client_key=key)


# --------------------------------------------------------------------------- item 15


async def test_identity_file_pub_with_the_private_key_in_an_agent(
        make_sshd: Callable[..., SshServer], agent: Agent, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``IdentityFile key.pub``, private key only in the agent (1Password, Secretive)."""
    server = agent_key_server(make_sshd, tmp_path)
    assert server.client_key is not None
    agent.add(server.client_key)
    server.client_key.unlink()  # the private key exists only in the agent now
    known = server.write_known_hosts(tmp_path / "known_hosts")
    config = tmp_path / "ssh_config"
    config.write_text(f"Host gpubox\n  HostName 127.0.0.1\n  Port {server.port}\n"
                      f"  User {server.user}\n  IdentityFile {server.client_key}.pub\n"
                      f"  IdentitiesOnly yes\n  UserKnownHostsFile {known}\n")
    monkeypatch.setenv("SSH_AUTH_SOCK", str(agent.sock))
    assert openssh_connects(config, "gpubox")
    before = accepted(server)
    host = HostConfig(name="gpu", hostname="gpubox")
    assert await run_echo(settings_for(config), host) == "connected"
    assert accepted(server) == before + 1


async def test_encrypted_key_held_by_the_agent_needs_no_passphrase(
        make_sshd: Callable[..., SshServer], agent: Agent, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenSSH finds the agent's key through ``key.pub`` and never opens ``key``."""
    server = agent_key_server(make_sshd, tmp_path)
    assert server.client_key is not None
    agent.add(server.client_key)
    subprocess.run(["ssh-keygen", "-q", "-p", "-N", "a passphrase", "-f",
                    str(server.client_key)], check=True, capture_output=True)
    known = server.write_known_hosts(tmp_path / "known_hosts")
    config = tmp_path / "ssh_config"
    config.write_text(f"Host gpubox\n  HostName 127.0.0.1\n  Port {server.port}\n"
                      f"  User {server.user}\n  IdentityFile {server.client_key}\n"
                      f"  UserKnownHostsFile {known}\n")
    monkeypatch.setenv("SSH_AUTH_SOCK", str(agent.sock))
    host = HostConfig(name="gpu", hostname="gpubox")
    assert await run_echo(settings_for(config), host) == "connected"


async def test_public_key_without_agent_says_why(make_sshd: Callable[..., SshServer],
                                                 tmp_path: Path) -> None:
    server = agent_key_server(make_sshd, tmp_path)
    assert server.client_key is not None
    server.client_key.unlink()
    known = server.write_known_hosts(tmp_path / "known_hosts")
    config = tmp_path / "ssh_config"
    config.write_text(f"Host gpubox\n  HostName 127.0.0.1\n  Port {server.port}\n"
                      f"  IdentityFile {server.client_key}.pub\n  IdentitiesOnly yes\n"
                      f"  UserKnownHostsFile {known}\n")
    with pytest.raises(AuthFailed) as failed:
        await run_echo(settings_for(config), HostConfig(name="gpu", hostname="gpubox"))
    assert "is a public key and its private key is not in an agent" in str(failed.value)
    assert "Invalid private key" not in str(failed.value)


# --------------------------------------------------------------------------- item 16


async def test_identity_agent_from_ssh_config(make_sshd: Callable[..., SshServer],
                                              agent: Agent, tmp_path: Path) -> None:
    """An agent at a path of its own, named by IdentityAgent; SSH_AUTH_SOCK unset."""
    assert "SSH_AUTH_SOCK" not in os.environ
    server = agent_key_server(make_sshd, tmp_path)
    assert server.client_key is not None
    agent.add(server.client_key)
    server.client_key.unlink()
    known = server.write_known_hosts(tmp_path / "known_hosts")
    config = tmp_path / "ssh_config"
    config.write_text(f"Host gpubox\n  HostName 127.0.0.1\n  Port {server.port}\n"
                      f"  IdentityFile {server.client_key}.pub\n"
                      f"  IdentityAgent {agent.sock}\n  UserKnownHostsFile {known}\n")
    assert openssh_connects(config, "gpubox")
    target = resolve_target(HostConfig(name="gpu", hostname="gpubox"), settings_for(config))
    assert target.agent_path == str(agent.sock)
    assert await run_echo(settings_for(config),
                          HostConfig(name="gpu", hostname="gpubox")) == "connected"


async def test_identity_agent_none_turns_the_agent_off(
        make_sshd: Callable[..., SshServer], agent: Agent, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    server = agent_key_server(make_sshd, tmp_path)
    assert server.client_key is not None
    agent.add(server.client_key)
    server.client_key.unlink()
    known = server.write_known_hosts(tmp_path / "known_hosts")
    config = tmp_path / "ssh_config"
    config.write_text(f"Host gpubox\n  HostName 127.0.0.1\n  Port {server.port}\n"
                      f"  IdentityFile {server.client_key}.pub\n  IdentityAgent none\n"
                      f"  UserKnownHostsFile {known}\n")
    monkeypatch.setenv("SSH_AUTH_SOCK", str(agent.sock))
    assert not openssh_connects(config, "gpubox")
    with pytest.raises(AuthFailed):
        await run_echo(settings_for(config), HostConfig(name="gpu", hostname="gpubox"))


# --------------------------------------------------------------------------- item 17


def write_nomadlab_config(path: Path, ssh_config: Path, hostname: str = "gpubox") -> Path:
    path.write_text(f'show_local = false\ndata_dir = "{path.parent / "data"}"\n\n'
                    f'[ssh]\nconfig_file = "{ssh_config}"\nconnect_timeout = "5s"\n\n'
                    f'[[hosts]]\nname = "gpu"\nhostname = "{hostname}"\n')
    return path


async def test_global_known_hosts_file_from_ssh_config_is_trusted(
        make_sshd: Callable[..., SshServer], tmp_path: Path) -> None:
    server = make_sshd()
    user_known = tmp_path / "user_known_hosts"  # empty: the key is only in the global file
    global_known = server.write_known_hosts(tmp_path / "global_known_hosts")
    config = tmp_path / "ssh_config"
    config.write_text(f"Host gpubox\n  HostName 127.0.0.1\n  Port {server.port}\n"
                      f"  IdentityFile {server.client_key}\n"
                      f"  UserKnownHostsFile {user_known}\n"
                      f"  GlobalKnownHostsFile {global_known}\n")
    assert openssh_connects(config, "gpubox")
    assert await run_echo(settings_for(config),
                          HostConfig(name="gpu", hostname="gpubox")) == "connected"
    assert not user_known.exists()


async def test_hosts_trust_writes_the_first_user_known_hosts_file(
        make_sshd: Callable[..., SshServer], tmp_path: Path) -> None:
    server = make_sshd()
    first, second = tmp_path / "kh first", tmp_path / "kh_second"
    config = tmp_path / "ssh_config"
    config.write_text(f"Host gpubox\n  HostName 127.0.0.1\n  Port {server.port}\n"
                      f"  IdentityFile {server.client_key}\n"
                      f'  UserKnownHostsFile "{first}" {second}\n'
                      f"  GlobalKnownHostsFile {tmp_path / 'none'}\n")
    nl_config = write_nomadlab_config(tmp_path / "config.toml", config)
    assert not openssh_connects(config, "gpubox")  # unknown key: OpenSSH refuses too
    result = nomadlab("--config", str(nl_config), "hosts", "trust", "gpu", "--yes")
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith(f"Added to {first}.\n")
    assert first.read_text() == server.host_key_line + "\n"
    assert not second.exists()
    assert openssh_connects(config, "gpubox")  # OpenSSH trusts what nomadlab wrote
    assert await run_echo(settings_for(config),
                          HostConfig(name="gpu", hostname="gpubox")) == "connected"


def test_hosts_trust_by_default_writes_home_ssh_known_hosts(
        make_sshd: Callable[..., SshServer], isolated_home: Path, tmp_path: Path) -> None:
    server = make_sshd()
    config = tmp_path / "ssh_config"
    config.write_text(f"Host gpubox\n  HostName 127.0.0.1\n  Port {server.port}\n"
                      f"  IdentityFile {server.client_key}\n")
    nl_config = write_nomadlab_config(tmp_path / "config.toml", config)
    result = nomadlab("--config", str(nl_config), "hosts", "trust", "gpu", "--yes")
    assert result.returncode == 0, result.stderr
    known = isolated_home / ".ssh" / "known_hosts"
    assert result.stdout.endswith(f"Added to {known}.\n")
    assert known.read_text() == server.host_key_line + "\n"
    again = nomadlab("--config", str(nl_config), "hosts", "trust", "gpu", "--yes")
    assert again.stdout == "gpu: the host key is already trusted.\n"


async def test_changed_key_in_the_global_file_is_refused(make_sshd: Callable[..., SshServer],
                                                         tmp_path: Path) -> None:
    server = make_sshd()
    impostor = keygen(tmp_path / "impostor")
    kind, blob = Path(str(impostor) + ".pub").read_text().split()[:2]
    global_known = tmp_path / "global_known_hosts"
    global_known.write_text(f"[127.0.0.1]:{server.port} {kind} {blob}\n")
    config = tmp_path / "ssh_config"
    config.write_text(f"Host gpubox\n  HostName 127.0.0.1\n  Port {server.port}\n"
                      f"  IdentityFile {server.client_key}\n"
                      f"  UserKnownHostsFile {tmp_path / 'user_known_hosts'}\n"
                      f"  GlobalKnownHostsFile {global_known}\n")
    with pytest.raises(HostKeyProblem) as problem:
        await run_echo(settings_for(config), HostConfig(name="gpu", hostname="gpubox"))
    assert problem.value.info.changed
    assert problem.value.info.known_hosts == str(global_known)


# --------------------------------------------------------------------------- item 18


def match_include_config(tmp_path: Path, server: SshServer) -> Path:
    """A config using what users use: Include, Match user, Host * defaults last."""
    included = tmp_path / "ssh_config.d"
    included.mkdir()
    (included / "lab.conf").write_text("Host gpubox\n  HostName 127.0.0.1\n")
    known = server.write_known_hosts(tmp_path / "known_hosts")
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Include {included}/*.conf\n\n"
        f"Match user someone-else\n  Port 1\n\n"
        f"Match user {server.user}\n  Port {server.port}\n\n"
        f"Host *\n  IdentityFile {server.client_key}\n  UserKnownHostsFile {known}\n"
        f"  ProxyJump none\n")
    return config


@pytest.mark.parametrize("use_ssh", [True, False], ids=["ssh -G", "asyncssh"])
def test_match_include_and_host_star_resolve(make_sshd: Callable[..., SshServer],
                                             tmp_path: Path, use_ssh: bool) -> None:
    server = make_sshd()
    config = match_include_config(tmp_path, server)
    options = sshconfig.resolve("gpubox", str(config), user=server.user, use_ssh=use_ssh)
    assert (options.hostname, options.port, options.user) == \
        ("127.0.0.1", server.port, server.user)
    assert options.identity_files == (str(server.client_key),)
    assert options.user_known_hosts == (str(tmp_path / "known_hosts"),)
    assert options.proxy_jump is None
    other = sshconfig.resolve("gpubox", str(config), user="someone-else", use_ssh=use_ssh)
    assert other.port == 1


async def test_match_user_config_connects(make_sshd: Callable[..., SshServer],
                                          tmp_path: Path) -> None:
    server = make_sshd()
    config = match_include_config(tmp_path, server)
    host = HostConfig(name="gpu", hostname="gpubox", user=server.user)
    assert openssh_connects(config, "gpubox")
    assert await run_echo(settings_for(config), host) == "connected"


def test_a_broken_ssh_config_is_one_clear_line(tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    config.write_text("Host gpubox\n  Port notaport\n")
    nl_config = write_nomadlab_config(tmp_path / "config.toml", config)
    target = resolve_target(HostConfig(name="gpu", hostname="gpubox"), settings_for(config))
    assert target.problem is not None and "ssh config" in target.problem
    result = nomadlab("--config", str(nl_config), "hosts", "list")
    no_traceback(result)
    assert result.returncode == 0
    assert result.stderr.startswith("gpu: ssh config: ")
    assert len(result.stderr.splitlines()) == 1


# --------------------------------------------------------------------------- item 19


def test_hosts_add_refuses_names_that_break_host_path_or_shells(isolated_home: Path) -> None:
    path = isolated_home / ".config" / "nomadlab" / "config.toml"
    assert nomadlab("hosts", "add", "gpu-a", "10.0.0.7").returncode == 0
    before = path.read_text()
    for name in ("bad name", "a:b", "x;reboot", "$(id)", "gpu`id`", "é" * 3, "a/b", "*"):
        result = nomadlab("hosts", "add", name, "10.0.0.8")
        assert result.returncode == 2, name
        no_traceback(result)
        assert len(result.stderr.splitlines()) == 1, result.stderr
        assert result.stderr.startswith("nomadlab: invalid host name "), result.stderr
        assert "no spaces, ':' or shell characters" in result.stderr
    hints = {"ana@10.0.0.8": "use '10.0.0.8' with --user 'ana'",
             "10.0.0.8:2222": "use '10.0.0.8' with --port 2222",
             "two words": "no spaces"}
    for hostname, hint in hints.items():
        result = nomadlab("hosts", "add", "gpu-b", hostname)
        assert result.returncode == 2, hostname
        assert hint in result.stderr and len(result.stderr.splitlines()) == 1
    assert path.read_text() == before
    ok = nomadlab("hosts", "add", "lab.gpu_1-b", "fe80::1")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.endswith("Next: nomadlab hosts check lab.gpu_1-b\n")


def test_hosts_list_shows_what_ssh_would_use(tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    config.write_text("Host gpubox\n  HostName 10.1.2.3\n  Port 2222\n  ProxyJump bastion\n"
                      "Host *\n  User ana\n")
    nl_config = write_nomadlab_config(tmp_path / "config.toml", config)
    with nl_config.open("a") as f:
        f.write('\n[[hosts]]\nname = "direct"\nhostname = "10.9.9.9"\nuser = "bo"\n')
    result = nomadlab("--config", str(nl_config), "hosts", "list")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1].split() == ["gpu", "gpubox", "(10.1.2.3)", "ana", "2222", "bastion"]
    assert lines[2].split() == ["direct", "10.9.9.9", "bo", "22"]


# --------------------------------------------------------------------------- item 25


def test_concurrent_hosts_add_keeps_every_host(isolated_home: Path) -> None:
    count = 8  # enough writers to lose an update without the lock; not dozens at once
    procs = [subprocess.Popen([sys.executable, "-m", "nomadlab", "hosts", "add", f"gpu-{i}",
                               f"10.0.0.{i + 1}"], stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(count)]
    try:
        results = [(p.communicate(timeout=CLI_TIMEOUT * 2), p.returncode) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    assert [code for _, code in results] == [0] * count, [err for (_, err), _ in results]
    listed = nomadlab("hosts", "list")
    names = {line.split()[0] for line in listed.stdout.splitlines()[1:]}
    assert names == {f"gpu-{i}" for i in range(count)}


async def test_proxy_command_runs_through_the_shell(make_sshd: Callable[..., SshServer],
                                                    tmp_path: Path) -> None:
    """ProxyCommand from ssh_config (here: OpenSSH's own ``ssh -W`` via the same sshd)."""
    server = make_sshd()
    known = server.write_known_hosts(tmp_path / "known_hosts")
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host jumpbox\n  HostName 127.0.0.1\n  Port {server.port}\n\n"
        f"Host gpubox\n  HostName 127.0.0.1\n  Port {server.port}\n"
        f"  ProxyCommand ssh -F {config} -o BatchMode=yes -W %h:%p jumpbox 2>/dev/null\n\n"
        f"Host *\n  IdentityFile {server.client_key}\n  UserKnownHostsFile {known}\n")
    before = accepted(server)
    assert await run_echo(settings_for(config),
                          HostConfig(name="gpu", hostname="gpubox")) == "connected"
    assert accepted(server) == before + 2  # the proxy's login and ours


@pytest.mark.parametrize("use_ssh", [True, False], ids=["ssh -G", "asyncssh"])
def test_known_hosts_defaults_are_ssh_defaults(isolated_home: Path, use_ssh: bool) -> None:
    """No UserKnownHostsFile/GlobalKnownHostsFile and no [ssh] known_hosts: ssh's files."""
    options = sshconfig.resolve("gpubox", None, use_ssh=use_ssh)
    assert options.user_known_hosts == (str(isolated_home / ".ssh" / "known_hosts"),
                                        str(isolated_home / ".ssh" / "known_hosts2"))
    assert options.global_known_hosts == ("/etc/ssh/ssh_known_hosts",
                                          "/etc/ssh/ssh_known_hosts2")
    settings = SshSettings(config_file=str(isolated_home / "no_such_config"))
    assert settings.known_hosts is None
    target = resolve_target(HostConfig(name="gpu", hostname="gpubox"), settings)
    assert [str(p) for p in target.known_hosts_files] == \
        [*options.user_known_hosts, *options.global_known_hosts]
    assert target.known_hosts == isolated_home / ".ssh" / "known_hosts"


async def test_hosts_trust_hashes_when_ssh_config_says_so(make_sshd: Callable[..., SshServer],
                                                          tmp_path: Path) -> None:
    """HashKnownHosts yes (Debian's default): the line names no host, OpenSSH reads it."""
    server = make_sshd()
    known = tmp_path / "known_hosts"
    config = tmp_path / "ssh_config"
    config.write_text(f"Host gpubox\n  HostName 127.0.0.1\n  Port {server.port}\n"
                      f"  IdentityFile {server.client_key}\n  UserKnownHostsFile {known}\n"
                      f"  GlobalKnownHostsFile {tmp_path / 'none'}\n  HashKnownHosts yes\n")
    nl_config = write_nomadlab_config(tmp_path / "config.toml", config)
    result = nomadlab("--config", str(nl_config), "hosts", "trust", "gpu", "--yes")
    assert result.returncode == 0, result.stderr
    line = known.read_text()
    assert line.startswith("|1|") and "127.0.0.1" not in line
    assert line.split()[1:] == server.host_key_line.split()[1:]
    assert openssh_connects(config, "gpubox")
    assert await run_echo(settings_for(config),
                          HostConfig(name="gpu", hostname="gpubox")) == "connected"


async def test_proxy_jump_from_ssh_config_through_an_alias(
        make_sshd: Callable[..., SshServer], tmp_path: Path) -> None:
    server = make_sshd()
    known = server.write_known_hosts(tmp_path / "known_hosts")
    config = tmp_path / "ssh_config"
    config.write_text(
        f"Host jumpbox\n  HostName 127.0.0.1\n  Port {server.port}\n\n"
        f"Host gpubox\n  HostName 127.0.0.1\n  Port {server.port}\n  ProxyJump jumpbox\n\n"
        f"Host *\n  IdentityFile {server.client_key}\n  UserKnownHostsFile {known}\n")
    target = resolve_target(HostConfig(name="gpu", hostname="gpubox"), settings_for(config))
    assert target.jump == "jumpbox"
    assert openssh_connects(config, "gpubox")
    before = accepted(server)
    assert await run_echo(settings_for(config),
                          HostConfig(name="gpu", hostname="gpubox")) == "connected"
    assert accepted(server) == before + 2  # the jump host's login and ours


def signed_user_key(tmp_path: Path, user: str) -> tuple[Path, Path]:
    """A user CA and a key it signed (``key-cert.pub``); the key is in no authorized_keys."""
    ca = keygen(tmp_path / "user_ca")
    key = keygen(tmp_path / "certkey")
    subprocess.run(["ssh-keygen", "-q", "-s", str(ca), "-I", "nomadlab-test", "-n", user,
                    str(key) + ".pub"], check=True, capture_output=True)
    assert Path(str(key) + "-cert.pub").exists()
    return ca, key


@pytest.mark.parametrize("in_agent", [False, True], ids=["file", "agent"])
async def test_user_certificate_is_offered(make_sshd: Callable[..., SshServer],
                                           agent: Agent, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch,
                                           in_agent: bool) -> None:
    """Certificates signed by a user CA (``key-cert.pub`` next to the key), as ssh does."""
    ca, key = signed_user_key(tmp_path, getpass.getuser())
    server = make_sshd(extra=f"TrustedUserCAKeys {ca}.pub")
    known = server.write_known_hosts(tmp_path / "known_hosts")
    identity = str(key)
    if in_agent:
        agent.add(key)  # ssh-add adds key-cert.pub along
        key.unlink()
        identity = f"{key}.pub"
        monkeypatch.setenv("SSH_AUTH_SOCK", str(agent.sock))
    config = tmp_path / "ssh_config"
    config.write_text(f"Host gpubox\n  HostName 127.0.0.1\n  Port {server.port}\n"
                      f"  IdentityFile {identity}\n  IdentitiesOnly yes\n"
                      f"  UserKnownHostsFile {known}\n")
    assert await run_echo(settings_for(config),
                          HostConfig(name="gpu", hostname="gpubox")) == "connected"
    assert "ED25519-CERT" in server.log.read_text(errors="replace")


def test_hosts_check_probes_the_port_ssh_would_use(make_sshd: Callable[..., SshServer],
                                                   tmp_path: Path) -> None:
    """``Match user`` sets the port only for the user nomadlab logs in as."""
    server = make_sshd()
    config = tmp_path / "ssh_config"
    config.write_text(f"Host gpubox\n  HostName 127.0.0.1\n\n"
                      f"Match user nomadlab-nobody\n  Port {server.port}\n")
    nl_config = write_nomadlab_config(tmp_path / "config.toml", config)
    with nl_config.open("a") as f:
        f.write('user = "nomadlab-nobody"\n')
    result = nomadlab("--config", str(nl_config), "hosts", "check", "gpu")
    no_traceback(result)
    assert f"127.0.0.1:{server.port} open" in result.stdout, result.stdout
