"""What OpenSSH would use for a host: ssh_config evaluated the supported way.

One job: turn ``(alias, config file, user?, port?)`` into :class:`SshOptions`, the
settings ``ssh ALIAS`` would connect with. Two routes, both public:

- ``ssh -G`` (preferred, used whenever an ``ssh`` binary is on PATH): OpenSSH
  itself evaluates ``Match`` (user, host, exec, ...), ``Include``, ``Host *``
  defaults, tokens in ``HostName``, and its own defaults (identity files, known
  hosts files). This is exactly what the user's ``ssh`` does.
- asyncssh's :class:`asyncssh.SSHClientConnectionOptions` (``config=[file]``,
  ``host=alias``), read back from the options object, where there is no ``ssh``.

Which files are read: the configured ``[ssh] config_file`` (default
``~/.ssh/config``). With the default, the system file ``/etc/ssh/ssh_config`` is read
after it, as ``ssh`` does; a config_file set to another path is read alone (like
``ssh -F``). A config file that does not exist is an empty config.

``~`` means ``$HOME``: OpenSSH expands it with the account's home directory, which
is the same in normal use; where ``HOME`` points elsewhere (tests, sandboxes) the
paths ssh printed under the account's home are re-rooted at ``$HOME``, so that
nomadlab reads one home consistently.

Running ``ssh -G`` is a subprocess: from async code call :func:`resolve_async`
(off the event loop).

Other code that starts ``ssh`` itself (e.g. ``ssh -t`` for an attach) should use
:func:`ssh_argv`, which passes the same config file, user and port, so the
command line connects exactly where nomadlab does.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

SYSTEM_CONFIG = "/etc/ssh/ssh_config"
DEFAULT_USER_CONFIG = "~/.ssh/config"
DEFAULT_IDENTITY_FILES = ("~/.ssh/id_rsa", "~/.ssh/id_ecdsa", "~/.ssh/id_ecdsa_sk",
                          "~/.ssh/id_ed25519", "~/.ssh/id_ed25519_sk", "~/.ssh/id_xmss",
                          "~/.ssh/id_dsa")
DEFAULT_USER_KNOWN_HOSTS = ("~/.ssh/known_hosts", "~/.ssh/known_hosts2")
DEFAULT_GLOBAL_KNOWN_HOSTS = ("/etc/ssh/ssh_known_hosts", "/etc/ssh/ssh_known_hosts2")
SSH_G_TIMEOUT = 10.0


class SshConfigError(Exception):
    """ssh_config could not be evaluated (a syntax error, a bad Include, ...)."""


@dataclass(frozen=True, slots=True)
class SshOptions:
    """The settings ``ssh ALIAS`` would use. Paths are absolute (``~`` expanded)."""

    alias: str  # what was asked for (a Host alias or an address)
    hostname: str  # where to connect (HostName, tokens expanded)
    port: int
    user: str
    identity_files: tuple[str, ...]  # in ssh's order; may not exist (ssh skips those)
    identities_only: bool = False
    # None: $SSH_AUTH_SOCK; "": no agent (IdentityAgent none); else the socket path
    identity_agent: str | None = None
    proxy_jump: str | None = None  # "a,b": through a, then b
    proxy_command: str | None = None  # tokens (%h %p %r %n %%) expanded
    host_key_alias: str | None = None
    user_known_hosts: tuple[str, ...] = DEFAULT_USER_KNOWN_HOSTS
    global_known_hosts: tuple[str, ...] = DEFAULT_GLOBAL_KNOWN_HOSTS
    config_file: str | None = None  # the user config file evaluated (None: none)
    source: str = "ssh -G"  # or "asyncssh", or "none" (no config at all)
    extra: dict[str, str] = field(default_factory=dict, repr=False)  # other ssh -G lines
    hash_known_hosts: bool = False  # HashKnownHosts: new known_hosts lines are hashed
    certificate_files: tuple[str, ...] = ()  # CertificateFile (key-cert.pub is implied)


# --------------------------------------------------------------------------- paths


def _account_home() -> str | None:
    try:
        return pwd.getpwuid(os.getuid()).pw_dir
    except (KeyError, OSError):
        return None


def _home() -> str:
    return os.path.expanduser("~")


def _rehome(path: str) -> str:
    """A path ssh expanded with the account's home, re-rooted at $HOME."""
    account, home = _account_home(), _home()
    if account and home and account != home:
        if path == account:
            return home
        if path.startswith(account.rstrip("/") + "/"):
            return home.rstrip("/") + path[len(account.rstrip("/")):]
    return path


def expand_tokens(text: str, *, alias: str, hostname: str, port: int, user: str) -> str:
    """OpenSSH's ``%`` tokens and a leading ``~`` (as in IdentityFile, ProxyCommand)."""
    values = {
        "%": "%", "d": _home(), "h": hostname, "n": alias, "p": str(port), "r": user,
        "u": getpass.getuser(), "i": str(os.getuid()), "L": socket.gethostname().split(".")[0],
        "l": socket.gethostname(),
    }
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "%" and i + 1 < len(text) and text[i + 1] in values:
            out.append(values[text[i + 1]])
            i += 2
            continue
        out.append(ch)
        i += 1
    result = "".join(out)
    if result == "~" or result.startswith("~/"):
        result = _home() + result[1:]
    return result


def _env_path(value: str) -> str:
    """IdentityAgent may name an environment variable (``$VAR`` or ``${VAR}``)."""
    if value.startswith("${") and value.endswith("}"):
        return os.environ.get(value[2:-1], "")
    if value.startswith("$") and value[1:].replace("_", "").isalnum():
        return os.environ.get(value[1:], "")
    return value


def _agent(value: str | None, **tokens: str | int) -> str | None:
    if value is None:
        return None
    if value.lower() == "none":
        return ""
    if value == "SSH_AUTH_SOCK":
        return None
    value = _env_path(value)
    if not value:
        return ""
    return _rehome(expand_tokens(value, **tokens))  # type: ignore[arg-type]


# --------------------------------------------------------------------------- config files


def user_config_path(config_file: str | None) -> tuple[Path | None, bool]:
    """The user config to read and whether the system config is read after it."""
    if not config_file:
        return None, False
    path = Path(os.path.expanduser(config_file))
    default = Path(os.path.expanduser(DEFAULT_USER_CONFIG))
    return (path if path.is_file() else None), path == default


def _quote_config(path: str) -> str:
    return '"' + path.replace('"', "") + '"'


def ssh_binary() -> str | None:
    return shutil.which("ssh")


# --------------------------------------------------------------------------- ssh -G


def _run_ssh_g(ssh: str, alias: str, config: str, user: str | None,
               port: int | None) -> str:
    argv = [ssh, "-G", "-F", config]
    if user:
        argv += ["-l", user]
    if port:
        argv += ["-p", str(port)]
    argv += ["--", alias]
    try:
        done = subprocess.run(argv, capture_output=True, text=True, stdin=subprocess.DEVNULL,
                              timeout=SSH_G_TIMEOUT, check=False)
    except subprocess.TimeoutExpired:
        raise SshConfigError(f"ssh -G {alias} took over {SSH_G_TIMEOUT:.0f} s "
                             "(a slow Match exec in ssh_config?)") from None
    except OSError as exc:
        raise SshConfigError(f"cannot run {ssh}: {exc.strerror or exc}") from None
    if done.returncode != 0:
        lines = [ln.strip() for ln in done.stderr.splitlines()
                 if ln.strip() and "Pseudo-terminal" not in ln]
        raise SshConfigError(lines[-1] if lines else f"ssh -G exited {done.returncode}")
    return done.stdout


def _split_paths(value: str) -> list[str]:
    """``ssh -G`` prints a path list unquoted: a word that does not start a path
    (``/`` or ``~``) continues the one before (a path with a space)."""
    out: list[str] = []
    for word in value.split(" "):
        if out and not word.startswith(("/", "~")):
            out[-1] += " " + word
        else:
            out.append(word)
    return [p for p in out if p]


def parse_ssh_g(text: str, alias: str, config_file: str | None) -> SshOptions:
    """``ssh -G`` output -> :class:`SshOptions`."""
    single: dict[str, str] = {}
    identity: list[str] = []
    certificates: list[str] = []
    for raw in text.splitlines():
        key, _, value = raw.strip().partition(" ")
        key = key.lower()
        if not key:
            continue
        if key == "identityfile":
            identity.append(value.strip())
        elif key == "certificatefile":
            certificates.append(value.strip())
        else:
            single.setdefault(key, value.strip())
    hostname = single.get("hostname", alias)
    port = int(single.get("port", "22") or 22)
    user = single.get("user") or getpass.getuser()
    tokens: dict[str, str | int] = {"alias": alias, "hostname": hostname, "port": port,
                                    "user": user}
    jump = single.get("proxyjump")
    command = single.get("proxycommand")
    alias_key = single.get("hostkeyalias")

    def paths(key: str, default: Sequence[str]) -> tuple[str, ...]:
        if key not in single:
            return tuple(_rehome(expand_tokens(p, **tokens)) for p in default)  # type: ignore[arg-type]
        value = single[key]
        if value.lower() == "none":
            return ()
        return tuple(_rehome(expand_tokens(p, **tokens))  # type: ignore[arg-type]
                     for p in _split_paths(value))

    known = {"hostname", "port", "user", "proxyjump", "proxycommand", "hostkeyalias",
             "identitiesonly", "identityagent", "userknownhostsfile", "globalknownhostsfile",
             "hashknownhosts"}
    return SshOptions(
        alias=alias,
        hostname=hostname,
        port=port,
        user=user,
        identity_files=tuple(_rehome(expand_tokens(p, **tokens))  # type: ignore[arg-type]
                             for p in identity),
        identities_only=single.get("identitiesonly", "no").lower() == "yes",
        identity_agent=_agent(single.get("identityagent"), **tokens),
        proxy_jump=None if not jump or jump.lower() == "none" else jump,
        proxy_command=(None if not command or command.lower() == "none"
                       else expand_tokens(command, **tokens))  # type: ignore[arg-type]
        ,
        host_key_alias=None if not alias_key or alias_key.lower() == "none" else alias_key,
        user_known_hosts=paths("userknownhostsfile", DEFAULT_USER_KNOWN_HOSTS),
        global_known_hosts=paths("globalknownhostsfile", DEFAULT_GLOBAL_KNOWN_HOSTS),
        config_file=config_file,
        source="ssh -G",
        extra={k: v for k, v in single.items() if k not in known},
        hash_known_hosts=single.get("hashknownhosts", "no").lower() == "yes",
        certificate_files=tuple(_rehome(expand_tokens(p, **tokens))  # type: ignore[arg-type]
                                for p in certificates),
    )


def _resolve_ssh_g(ssh: str, alias: str, config_file: str | None, user: str | None,
                   port: int | None) -> SshOptions:
    path, with_system = user_config_path(config_file)
    if with_system and os.path.isfile(SYSTEM_CONFIG):
        # ssh reads the user file, then the system file; -F alone would skip the
        # system file, so a two-line wrapper includes both in that order.
        with tempfile.TemporaryDirectory(prefix="nomadlab-ssh-") as tmp:
            wrapper = Path(tmp) / "config"
            lines = [f"Include {_quote_config(str(path))}"] if path else []
            lines.append(f"Include {_quote_config(SYSTEM_CONFIG)}")
            wrapper.write_text("\n".join(lines) + "\n", encoding="utf-8")
            text = _run_ssh_g(ssh, alias, str(wrapper), user, port)
    else:
        text = _run_ssh_g(ssh, alias, str(path) if path else os.devnull, user, port)
    return parse_ssh_g(text, alias, str(path) if path else None)


# --------------------------------------------------------------------------- asyncssh


def _resolve_asyncssh(alias: str, config_file: str | None, user: str | None,
                      port: int | None) -> SshOptions:
    import asyncssh

    path, with_system = user_config_path(config_file)
    files = [str(path)] if path else []
    if with_system and os.path.isfile(SYSTEM_CONFIG):
        files.append(SYSTEM_CONFIG)
    kwargs: dict[str, object] = {"host": alias, "config": files or None,
                                 "client_keys": None, "known_hosts": None}
    if user:
        kwargs["username"] = user
    if port:
        kwargs["port"] = port
    try:
        options = asyncssh.SSHClientConnectionOptions(**kwargs)
    except (OSError, ValueError) as exc:
        raise SshConfigError(str(exc)) from None
    config = options.config
    hostname = str(options.host or alias)
    resolved_port = int(options.port or 22)
    username = str(options.username or getpass.getuser())
    tokens: dict[str, str | int] = {"alias": alias, "hostname": hostname,
                                    "port": resolved_port, "user": username}
    raw_identity = config.get("IdentityFile") or DEFAULT_IDENTITY_FILES
    tunnel = config.get("ProxyJump")
    command = config.get("ProxyCommand")
    agent = config.get("IdentityAgent")
    user_known = config.get("UserKnownHostsFile")
    global_known = config.get("GlobalKnownHostsFile")

    def paths(values: object, default: Sequence[str]) -> tuple[str, ...]:
        items = default if values is None else [str(v) for v in values]  # type: ignore[attr-defined]
        return tuple(expand_tokens(p, **tokens) for p in items  # type: ignore[arg-type]
                     if p.lower() != "none")

    return SshOptions(
        alias=alias,
        hostname=hostname,
        port=resolved_port,
        user=username,
        identity_files=paths(raw_identity, ()),
        identities_only=bool(config.get("IdentitiesOnly")),
        identity_agent=_agent(str(agent), **tokens) if agent else None,
        proxy_jump=(None if not tunnel or str(tunnel).lower() == "none"
                    else ",".join(tunnel) if isinstance(tunnel, list | tuple) else str(tunnel)),
        proxy_command=(" ".join(command) if isinstance(command, list | tuple)
                       else str(command)) if command else None,
        host_key_alias=str(config.get("HostKeyAlias")) if config.get("HostKeyAlias") else None,
        user_known_hosts=paths(user_known, DEFAULT_USER_KNOWN_HOSTS),
        global_known_hosts=paths(global_known, DEFAULT_GLOBAL_KNOWN_HOSTS),
        config_file=str(path) if path else None,
        source="asyncssh",
        hash_known_hosts=bool(config.get("HashKnownHosts")),
        certificate_files=paths(config.get("CertificateFile") or [], ()),
    )


# --------------------------------------------------------------------------- public API


def resolve(alias: str, config_file: str | None = DEFAULT_USER_CONFIG, *,
            user: str | None = None, port: int | None = None,
            use_ssh: bool | None = None) -> SshOptions:
    """What ``ssh [-l user] [-p port] ALIAS`` would use, given ``config_file``.

    ``user``/``port`` are the ones nomadlab's own config sets (they win over
    ssh_config, like ``-l``/``-p``, and ``Match user`` sees them). ``use_ssh``:
    None = ``ssh -G`` when ssh is installed, else asyncssh; True/False force one.
    Raises :class:`SshConfigError` for a config ssh rejects.
    """
    ssh = ssh_binary() if use_ssh is not False else None
    if use_ssh and ssh is None:
        raise SshConfigError("ssh is not installed")
    if ssh is not None:
        return _resolve_ssh_g(ssh, alias, config_file, user, port)
    return _resolve_asyncssh(alias, config_file, user, port)


async def resolve_async(alias: str, config_file: str | None = DEFAULT_USER_CONFIG, *,
                        user: str | None = None, port: int | None = None) -> SshOptions:
    """:func:`resolve`, run in a worker thread (it may start ``ssh -G``)."""
    return await asyncio.to_thread(resolve, alias, config_file, user=user, port=port)


def ssh_argv(alias: str, config_file: str | None = DEFAULT_USER_CONFIG, *,
             user: str | None = None, port: int | None = None) -> list[str]:
    """``ssh`` arguments that connect where :func:`resolve` says (add ``-t``, a command).

    The config file is passed with ``-F`` when it is not ssh's own default, so a
    custom ``[ssh] config_file`` applies to the command line too.
    """
    argv = ["ssh"]
    path, with_system = user_config_path(config_file)
    if not with_system:
        argv += ["-F", str(path) if path else os.devnull]
    if user:
        argv += ["-l", user]
    if port:
        argv += ["-p", str(port)]
    return [*argv, "--", alias]
