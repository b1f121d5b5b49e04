"""Opening SSH connections: host keys, keys and passphrases, jump hosts, error sorting.

One job: turn a :class:`HostConfig` into a live ``asyncssh`` connection, or into an
exception that says what kind of failure it was, because that decides what happens
next (see :mod:`nomadlab.remote.supervisor`):

- :class:`HostKeyProblem` and :class:`AuthFailed` / :class:`PassphraseNeeded` wait
  for the user;
- :class:`Unreachable` retries with backoff.
"""

from __future__ import annotations

import asyncio
import getpass
import os
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

from nomadlab.core.config import HostConfig, SshSettings
from nomadlab.core.model import HostKeyInfo
from nomadlab.core.paths import expand

KEYRING_SERVICE = "nomadlab"
DEFAULT_KEY_FILES = ("id_ed25519_sk", "id_ecdsa_sk", "id_ed448", "id_ed25519", "id_ecdsa", "id_rsa")


class ConnectFailure(Exception):
    """Base class: a connection attempt failed in a known way."""

    retry = True


class Unreachable(ConnectFailure):
    """Network trouble: refused, timed out, reset. Retried with backoff."""


class AuthFailed(ConnectFailure):
    """The server refused every key. Waits for the user."""

    retry = False


class PassphraseNeeded(ConnectFailure):
    retry = False

    def __init__(self, key_path: str, message: str) -> None:
        super().__init__(message)
        self.key_path = key_path


class HostKeyProblem(ConnectFailure):
    """Unknown or changed host key. Never accepted automatically."""

    retry = False

    def __init__(self, info: HostKeyInfo, message: str) -> None:
        super().__init__(message)
        self.info = info


# --------------------------------------------------------------------------- keys


class KeyStore:
    """Private keys, decrypted once and kept as key objects (never the passphrase).

    A passphrase the user asked to remember is stored with ``keyring`` (the OS
    keychain), never in a file of ours; on a box without a keyring backend that step
    fails with a clear message and the key is still unlocked for this session.
    """

    def __init__(self, use_keyring: bool = True) -> None:
        self.use_keyring = use_keyring
        self._keys: dict[str, asyncssh.SSHKey] = {}
        self._locked: set[str] = set()
        self._keyring_checked = False
        self._keyring_problem: str | None = None

    def keyring_problem(self) -> str | None:
        """Why a passphrase cannot be remembered on this machine; None when it can.

        Asked of ``keyring`` once per process: no backend at all (``fail.Keyring``, the
        usual case on a headless jump box), one that keeps nothing (``null``), or one
        with no priority here all say no. Nothing is read or written to find out."""
        if not self._keyring_checked:
            self._keyring_checked = True
            self._keyring_problem = _keyring_backend_problem(self.use_keyring)
        return self._keyring_problem

    @staticmethod
    def _keyring_name(path: str) -> str:
        return f"ssh-key:{path}"

    def _from_keyring(self, path: str) -> str | None:
        if not self.use_keyring:
            return None
        try:
            import keyring

            return keyring.get_password(KEYRING_SERVICE, self._keyring_name(path))
        except Exception:  # no backend on a headless box, locked keychain, ...
            return None

    def load(self, path: str) -> asyncssh.SSHKey | None:
        """The key at ``path``; None (and remembered as locked) when it needs a passphrase."""
        if path in self._keys:
            return self._keys[path]
        try:
            key = asyncssh.read_private_key(path)
        except asyncssh.KeyImportError as exc:
            if "assphrase" not in str(exc):
                raise
            secret = self._from_keyring(path)
            if secret is not None:
                unlocked: asyncssh.SSHKey | None
                try:
                    unlocked = asyncssh.read_private_key(path, secret)
                except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError):
                    unlocked = None
                if unlocked is not None:
                    self._keys[path] = unlocked
                    self._locked.discard(path)
                    return unlocked
            self._locked.add(path)
            return None
        self._keys[path] = key
        return key

    def unlock(self, path: str, passphrase: str, remember: bool = False) -> str | None:
        """Decrypt ``path``. Raises ValueError on a wrong passphrase.

        Returns a warning when remembering was asked for but the keyring refused.
        """
        try:
            key = asyncssh.read_private_key(path, passphrase)
        except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as exc:
            raise ValueError(f"could not decrypt {path}: wrong passphrase?") from exc
        except OSError as exc:
            raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from exc
        self._keys[path] = key
        self._locked.discard(path)
        if remember:
            try:
                import keyring

                keyring.set_password(KEYRING_SERVICE, self._keyring_name(path), passphrase)
            except Exception as exc:
                return f"passphrase not remembered: no usable keyring ({type(exc).__name__})"
        return None

    def locked(self) -> set[str]:
        return set(self._locked)


def _keyring_backend_problem(use_keyring: bool) -> str | None:
    if not use_keyring:
        return "the keyring is turned off for nomadlab"
    try:
        import keyring

        backend = keyring.get_keyring()
        priority = float(getattr(backend, "priority", 1))
    except Exception as exc:  # a broken backend or its dependencies
        return f"the keyring does not work here ({type(exc).__name__})"
    module = type(backend).__module__
    if module.endswith((".fail", ".null")) or priority <= 0:
        return "there is no keyring backend on this machine"
    return None


def agent_hint(key_path: str) -> str:
    """What works without a keyring: the key in an ssh-agent, unlocked once per login."""
    import shlex

    add = f"ssh-add {shlex.quote(key_path)}"
    if os.environ.get("SSH_AUTH_SOCK"):
        return (f"Instead, add the key to the ssh-agent running here: {add} "
                "(nomadlab uses the agent's keys; then no passphrase is asked).")
    return (f"Instead, use an ssh-agent: eval \"$(ssh-agent)\" && {add} in the shell that "
            "starts nomadlab (it uses the agent's keys; then no passphrase is asked), "
            "or forward your laptop's agent (ssh -A).")


# --------------------------------------------------------------------------- host keys


def _known_hosts_pattern(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


def read_known_hosts(path: Path) -> asyncssh.SSHKnownHosts:
    try:
        return asyncssh.read_known_hosts(str(path))
    except FileNotFoundError:
        return asyncssh.import_known_hosts("")
    except (OSError, ValueError) as exc:
        raise AuthFailed(f"cannot read known_hosts {path}: {exc}") from exc


def host_key_info(known_hosts: Path, host: str, addr: str, port: int,
                  key: asyncssh.SSHKey) -> HostKeyInfo:
    """Describe a key known_hosts did not trust: unknown, or a changed key."""
    try:
        known = asyncssh.read_known_hosts(str(known_hosts))
        trusted = known.match(host, addr, port if port != 22 else None)[0]
    except (OSError, ValueError):
        trusted = []
    algorithm = key.get_algorithm()
    changed = any(k.get_algorithm() == algorithm and k != key for k in trusted)
    public = key.export_public_key("openssh").decode("ascii").split()
    line = f"{_known_hosts_pattern(host, port)} {public[0]} {public[1]}"
    return HostKeyInfo(
        host=host,
        port=port,
        key_type=algorithm,
        fingerprint=key.get_fingerprint("sha256"),
        known_hosts=str(known_hosts),
        line=line,
        changed=changed,
    )


def trust_host_key(info: HostKeyInfo) -> None:
    """Append an unknown key to known_hosts. A changed key is refused here too."""
    if info.changed:
        raise ValueError(
            f"the host key of {info.host} changed; remove the old key from "
            f"{info.known_hosts} yourself (ssh-keygen -R) if you are sure"
        )
    path = Path(info.known_hosts)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    prefix = ""
    if path.exists() and path.stat().st_size > 0:
        with path.open("rb") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                prefix = "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="ascii") as f:
        f.write(prefix + info.line + "\n")


class _Client(asyncssh.SSHClient):
    """Remembers the host key that known_hosts did not trust (and refuses it)."""

    def __init__(self) -> None:
        self.untrusted: tuple[str, str, int, asyncssh.SSHKey] | None = None

    def validate_host_public_key(self, host: str, addr: str, port: int,
                                 key: asyncssh.SSHKey) -> bool:
        self.untrusted = (host, addr, port, key)
        return False


# --------------------------------------------------------------------------- targets


@dataclass(slots=True)
class Target:
    """Where to connect, after our config and ~/.ssh/config are combined."""

    name: str
    host: str
    port: int | None
    user: str | None
    identity_files: list[str]
    known_hosts: Path
    jump: str | None  # a [[hosts]] name, an ssh alias, or user@host:port (comma: chain)
    config_files: list[str] = field(default_factory=list)


def _ssh_config_value(config_files: Sequence[str], host: str, key: str) -> Any:
    if not config_files:
        return None
    try:
        from asyncssh.config import SSHClientConfig

        config = SSHClientConfig.load(
            None, list(config_files), False, False, False, getpass.getuser(), (), host, ()
        )
        return config.get(key)
    except Exception:  # a config asyncssh cannot read: let connect() report it
        return None


def resolve_target(host: HostConfig, settings: SshSettings) -> Target:
    config_file = expand(settings.config_file)
    config_files = [str(config_file)] if config_file.is_file() else []
    identity: list[str] = []
    if host.identity_file:
        identity = [str(expand(host.identity_file))]
    else:
        from_config = _ssh_config_value(config_files, host.hostname, "IdentityFile")
        if from_config:
            identity = [str(expand(p)) for p in from_config]
        else:
            ssh_dir = Path(os.path.expanduser("~")) / ".ssh"
            identity = [str(ssh_dir / n) for n in DEFAULT_KEY_FILES if (ssh_dir / n).is_file()]
    jump = host.jump
    if jump is None:
        proxy = _ssh_config_value(config_files, host.hostname, "ProxyJump")
        if isinstance(proxy, str) and proxy.lower() != "none":
            jump = proxy
        elif isinstance(proxy, list | tuple) and proxy:
            jump = ",".join(str(p) for p in proxy)
    return Target(
        name=host.name,
        host=host.hostname,
        port=host.port,
        user=host.user,
        identity_files=identity,
        known_hosts=expand(host.known_hosts or settings.known_hosts),
        jump=jump,
        config_files=config_files,
    )


def parse_jump(spec: str) -> HostConfig:
    """``[user@]host[:port]`` (or an ssh alias) -> a HostConfig for the jump host."""
    user = None
    rest = spec
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


# --------------------------------------------------------------------------- connecting


class Connector:
    """Connects hosts; hosts behind one jump host share one connection to it."""

    def __init__(self, settings: SshSettings, hosts: Sequence[HostConfig] = (),
                 keys: KeyStore | None = None) -> None:
        self.settings = settings
        self.hosts = {h.name: h for h in hosts}
        self.keys = keys if keys is not None else KeyStore()
        self._bastions: dict[str, asyncssh.SSHClientConnection] = {}
        self._bastion_users: dict[str, int] = {}
        self._bastion_locks: dict[str, asyncio.Lock] = {}

    # ---- jump hosts

    def _jump_host(self, spec: str) -> HostConfig:
        return self.hosts.get(spec) or parse_jump(spec)

    async def acquire_bastion(self, spec: str) -> asyncssh.SSHClientConnection:
        """One shared connection per jump spec (``a,b`` = through a, then b)."""
        lock = self._bastion_locks.setdefault(spec, asyncio.Lock())
        async with lock:
            conn = self._bastions.get(spec)
            if conn is not None and not _is_closed(conn):
                self._bastion_users[spec] = self._bastion_users.get(spec, 0) + 1
                return conn
            hops = [h.strip() for h in spec.split(",") if h.strip()]
            if not hops:
                raise AuthFailed(f"empty jump host {spec!r}")
            last = self._jump_host(hops[-1])
            if len(hops) > 1:
                last = HostConfig(**{**_fields(last), "jump": ",".join(hops[:-1])})
            conn = await self.connect(last, label=f"jump host {hops[-1]}")
            self._bastions[spec] = conn
            self._bastion_users[spec] = 1
            return conn

    def release_bastion(self, spec: str,
                        bastion: asyncssh.SSHClientConnection | None = None) -> None:
        """One user of the jump connection is done; the last one closes it.

        ``bastion`` is the connection that user got: a release for an older, already
        replaced connection must not count against (or close) the new one.
        """
        if bastion is not None and self._bastions.get(spec) is not bastion:
            return
        users = self._bastion_users.get(spec, 0) - 1
        self._bastion_users[spec] = max(0, users)
        if users <= 0:
            conn = self._bastions.pop(spec, None)
            if conn is not None:
                conn.close()

    def bastion_count(self) -> int:
        return sum(1 for c in self._bastions.values() if not _is_closed(c))

    async def close(self) -> None:
        for conn in list(self._bastions.values()):
            conn.close()
        self._bastions.clear()

    # ---- one host

    async def connect(self, host: HostConfig, *, label: str | None = None,
                      tunnel: asyncssh.SSHClientConnection | None = None
                      ) -> asyncssh.SSHClientConnection:
        """Connect ``host`` (through its jump host, acquired here, when it has one)."""
        target = resolve_target(host, self.settings)
        what = label or ""
        bastion_spec = target.jump if tunnel is None else None
        if bastion_spec:
            tunnel = await self.acquire_bastion(bastion_spec)
        try:
            conn = await self._connect_target(target, what, tunnel)
        except BaseException:
            if bastion_spec:
                self.release_bastion(bastion_spec, tunnel)
            raise
        if bastion_spec:
            spec, bastion = bastion_spec, tunnel

            async def _release_when_closed() -> None:
                await conn.wait_closed()
                self.release_bastion(spec, bastion)

            task = asyncio.get_running_loop().create_task(_release_when_closed())
            _BACKGROUND.add(task)
            task.add_done_callback(_BACKGROUND.discard)
        return conn

    def _client_keys(self, target: Target) -> tuple[list[asyncssh.SSHKey], list[str]]:
        loaded: list[asyncssh.SSHKey] = []
        locked: list[str] = []
        for path in target.identity_files:
            try:
                key = self.keys.load(path)
            except (OSError, asyncssh.KeyImportError) as exc:
                if target.identity_files == [path] and not os.path.exists(path):
                    raise AuthFailed(f"identity file {path} does not exist") from exc
                if isinstance(exc, FileNotFoundError):
                    continue
                raise AuthFailed(f"cannot use identity file {path}: {exc}") from exc
            if key is None:
                locked.append(path)
            else:
                loaded.append(key)
        return loaded, locked

    async def _connect_target(self, target: Target, label: str,
                              tunnel: asyncssh.SSHClientConnection | None
                              ) -> asyncssh.SSHClientConnection:
        settings = self.settings
        what = f"{label}: " if label else ""
        loaded, locked = self._client_keys(target)
        have_agent = bool(os.environ.get("SSH_AUTH_SOCK"))
        if locked and not loaded and not have_agent:
            raise PassphraseNeeded(locked[0], f"{what}the key {locked[0]} needs its passphrase")
        client = _Client()
        options: dict[str, Any] = {
            "known_hosts": read_known_hosts(target.known_hosts),
            "connect_timeout": settings.connect_timeout,
            "login_timeout": settings.login_timeout,
            "keepalive_interval": settings.keepalive_interval,
            "keepalive_count_max": settings.keepalive_count_max,
            "client_factory": lambda: client,
            "config": target.config_files or None,
            "agent_forwarding": False,
            "x11_forwarding": False,
            "tunnel": tunnel,
        }
        if target.port is not None:
            options["port"] = target.port
        if target.user is not None:
            options["username"] = target.user
        if loaded:
            options["client_keys"] = loaded
        elif target.identity_files:
            # Only locked keys: let the agent try; asyncssh skips encrypted files.
            options["client_keys"] = ()
            options["ignore_encrypted"] = True
        try:
            return await asyncssh.connect(target.host, **options)
        except asyncssh.HostKeyNotVerifiable as exc:
            if client.untrusted is None:
                raise HostKeyProblem(
                    HostKeyInfo(target.host, target.port or 22, "?", "?",
                                str(target.known_hosts), "", True),
                    f"{what}host key not verifiable: {exc.reason}",
                ) from None
            host, addr, port, key = client.untrusted
            info = host_key_info(target.known_hosts, host, addr, port, key)
            if info.changed:
                message = (f"{what}HOST KEY CHANGED for {host} (now {info.key_type} "
                           f"{info.fingerprint}). Possible man-in-the-middle; not connecting.")
            else:
                message = f"{what}unknown host key {info.key_type} {info.fingerprint}"
            raise HostKeyProblem(info, message) from None
        except asyncssh.PermissionDenied as exc:
            if locked:
                raise PassphraseNeeded(
                    locked[0], f"{what}the key {locked[0]} needs its passphrase"
                ) from None
            raise AuthFailed(f"{what}authentication refused ({exc.reason})") from None
        except asyncssh.DisconnectError as exc:
            raise Unreachable(f"{what}disconnected: {exc.reason}") from None
        except asyncssh.ChannelOpenError as exc:  # the jump host could not reach it
            raise Unreachable(f"{what}via jump host: {exc.reason}") from None
        except TimeoutError:
            raise Unreachable(f"{what}timed out") from None
        except ConnectionError as exc:
            raise Unreachable(f"{what}{_os_reason(exc)}") from None
        except OSError as exc:
            raise Unreachable(f"{what}{_os_reason(exc)}") from None
        except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as exc:
            raise AuthFailed(f"{what}{exc}") from None
        except ValueError as exc:  # e.g. an ssh config asyncssh rejects
            raise AuthFailed(f"{what}{exc}") from None


_BACKGROUND: set[asyncio.Task[None]] = set()


def _os_reason(exc: OSError) -> str:
    """'connection refused', not asyncio's "Connect call failed ('10.0.0.7', 22)"."""
    if isinstance(exc, socket.gaierror):
        text = f"cannot resolve host name ({exc.strerror or exc})"
    elif exc.errno is not None and exc.errno > 0:
        text = os.strerror(exc.errno)
    else:
        text = exc.strerror or str(exc) or type(exc).__name__
    return text[:1].lower() + text[1:]


def _is_closed(conn: asyncssh.SSHClientConnection) -> bool:
    return conn.is_closed()


def _fields(host: HostConfig) -> dict[str, Any]:
    return {name: getattr(host, name) for name in host.__slots__}
