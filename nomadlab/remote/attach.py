"""The system ``ssh -t ... tmux attach`` command line for a host.

Built from the same resolved target the fleet connects to (address, user, port, key,
jump host, known_hosts), with ``StrictHostKeyChecking=yes``: the interactive ssh
trusts exactly the host keys nomadlab trusts, and never adds one by itself.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping

from nomadlab.core.config import HostConfig, SshSettings
from nomadlab.core.paths import expand
from nomadlab.remote.ssh_target import parse_jump, resolve_target

SSH = "ssh"


def tmux_command(session: str | None) -> str:
    """The remote command: attach to ``session`` (the newest one, or a new one, without)."""
    if session is None:
        return "tmux attach-session 2>/dev/null || tmux new-session"
    return f"tmux attach-session -t {shlex.quote('=' + session)}"


def _options(known_hosts: str, config_file: str | None) -> list[str]:
    opts = ["-o", f"UserKnownHostsFile={known_hosts}", "-o", "StrictHostKeyChecking=yes"]
    if config_file:
        opts[:0] = ["-F", config_file]
    return opts


def _login(host: HostConfig, settings: SshSettings) -> tuple[list[str], str]:
    """(options, destination) for one host: port, user, key and its known_hosts."""
    target = resolve_target(host, settings)
    args = _options(str(target.known_hosts), target.config_files[0] if target.config_files
                    else None)
    if target.port:
        args += ["-p", str(target.port)]
    if target.user:
        args += ["-l", target.user]
    if host.identity_file:
        args += ["-i", str(expand(host.identity_file)), "-o", "IdentitiesOnly=yes"]
    return args, target.host


def ssh_argv(host: HostConfig, settings: SshSettings, session: str | None,
             hosts: Mapping[str, HostConfig] | None = None, ssh: str = SSH) -> list[str]:
    """``ssh -t [options] HOST -- 'tmux attach-session -t =NAME'``."""
    known = hosts or {}
    args, destination = _login(host, settings)
    target = resolve_target(host, settings)
    if target.jump:
        hops = [h.strip() for h in target.jump.split(",") if h.strip()]
        if len(hops) == 1:
            jump = known.get(hops[0]) or parse_jump(hops[0])
            jump_args, jump_dest = _login(jump, settings)
            proxy = [ssh, *jump_args, "-W", "%h:%p", "--", jump_dest]
            args += ["-o", "ProxyCommand=" + shlex.join(proxy)]
        else:  # a chain: ssh's own -J (its hops use ssh's own config for keys)
            args += ["-J", ",".join(hops)]
    return [ssh, "-t", *args, "--", destination, tmux_command(session)]
