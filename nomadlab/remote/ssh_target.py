"""Where and how to connect: a [[hosts]] entry combined with what ssh_config says
(:class:`Target`), and jump host specs."""

from __future__ import annotations

import asyncio
import getpass
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nomadlab.core.config import HostConfig, SshSettings
from nomadlab.core.paths import expand
from nomadlab.remote import sshconfig


@dataclass(slots=True)
class Target:
    """Where and how to connect: our [[hosts]] entry combined with what ssh would use
    (see :mod:`nomadlab.remote.sshconfig`)."""

    name: str
    host: str  # the address: HostName from ssh_config, or the hostname itself
    port: int
    user: str
    identity_files: list[str]  # in the order ssh tries them; may not exist
    known_hosts: Path  # where trusting a key writes: the first user known_hosts file
    jump: str | None  # a [[hosts]] name, an ssh alias, or user@host:port (comma: chain)
    config_files: list[str] = field(default_factory=list)
    alias: str = ""  # the name ssh_config was evaluated for ([[hosts]] hostname)
    known_hosts_files: list[Path] = field(default_factory=list)  # all checked, in order
    agent_path: str | None = None  # None: $SSH_AUTH_SOCK; "": no agent
    identities_only: bool = False
    proxy_command: str | None = None
    host_key_alias: str | None = None
    hash_known_hosts: bool = False  # write hashed lines (ssh's own files only)
    certificate_files: list[str] = field(default_factory=list)
    problem: str | None = None  # ssh_config could not be evaluated: connecting fails with it


def _ssh_config_value(config_files: Sequence[str], host: str, key: str) -> Any:
    """One resolved ssh_config value (Hostname, Port, User, ProxyJump, IdentityFile)."""
    try:
        options = sshconfig.resolve(host, config_files[0] if config_files else None)
    except sshconfig.SshConfigError:
        return None
    return {
        "hostname": options.hostname, "port": options.port, "user": options.user,
        "proxyjump": options.proxy_jump, "identityfile": list(options.identity_files),
        "identityagent": options.identity_agent,
    }.get(key.lower())


def resolve_target(host: HostConfig, settings: SshSettings) -> Target:
    """Combine ``host`` with ssh_config the way ``ssh -l USER -p PORT HOSTNAME`` would.

    Our own settings win (user, port, identity_file, jump, known_hosts), like ssh's
    command-line options; everything else is what ssh resolves. This may run
    ``ssh -G``: from async code use :func:`resolve_target_async`.
    """
    problem: str | None = None
    try:
        options = sshconfig.resolve(host.hostname, settings.config_file,
                                    user=host.user, port=host.port)
    except sshconfig.SshConfigError as exc:
        problem = f"ssh config: {exc}"
        options = sshconfig.SshOptions(
            alias=host.hostname, hostname=host.hostname, port=host.port or 22,
            user=host.user or getpass.getuser(), identity_files=(), source="none")
    if host.identity_file:
        identity = [str(expand(host.identity_file))]
    else:
        identity = list(options.identity_files)
    jump = host.jump if host.jump is not None else options.proxy_jump
    if jump:
        hops = [h.strip() for h in jump.split(",") if h.strip()]
        if hops and hops[-1] in (host.hostname, host.name):
            jump = None  # ``Host *`` with ProxyJump reaching the jump host itself
    explicit = host.known_hosts or settings.known_hosts
    if explicit:
        known_files = [expand(explicit)]
    else:
        known_files = [Path(p) for p in (*options.user_known_hosts,
                                         *options.global_known_hosts)]
        if not options.user_known_hosts:  # UserKnownHostsFile none: still somewhere to write
            known_files.insert(0, expand("~/.ssh/known_hosts"))
    return Target(
        name=host.name,
        host=options.hostname,
        port=options.port,
        user=options.user,
        identity_files=identity,
        known_hosts=known_files[0],
        jump=jump or None,
        config_files=[options.config_file] if options.config_file else [],
        alias=host.hostname,
        known_hosts_files=known_files,
        agent_path=options.identity_agent,
        identities_only=options.identities_only,
        proxy_command=options.proxy_command,
        host_key_alias=options.host_key_alias,
        # HashKnownHosts applies to ssh's files; a file named in nomadlab's config
        # keeps plain lines
        hash_known_hosts=options.hash_known_hosts and not explicit,
        certificate_files=list(options.certificate_files),
        problem=problem,
    )


async def resolve_target_async(host: HostConfig, settings: SshSettings) -> Target:
    """:func:`resolve_target` off the event loop (``ssh -G`` is a subprocess)."""
    return await asyncio.to_thread(resolve_target, host, settings)


def parse_jump(spec: str) -> HostConfig:
    """``[user@]host[:port]`` (or an ssh alias) -> a HostConfig for the jump host."""
    user = None
    rest = spec.removeprefix("ssh://")  # OpenSSH also takes ssh://[user@]host[:port]
    if "@" in rest:
        user, rest = rest.rsplit("@", 1)
    port = None
    if rest.startswith("[") and "]" in rest:
        inner, _, after = rest[1:].partition("]")
        rest = inner
        if after.startswith(":") and after[1:].isdigit():
            port = int(after[1:])
    elif rest.count(":") == 1:
        head, _, tail = rest.partition(":")
        if tail.isdigit():
            rest, port = head, int(tail)
    return HostConfig(name=spec, hostname=rest, user=user or None, port=port)
