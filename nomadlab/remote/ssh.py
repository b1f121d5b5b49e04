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
import base64
import functools
import getpass
import hashlib
import hmac
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
from nomadlab.remote import sshconfig

KEYRING_SERVICE = "nomadlab"


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


def _as_paths(known_hosts: Path | Sequence[Path]) -> list[Path]:
    return [known_hosts] if isinstance(known_hosts, Path) else list(known_hosts)


def read_known_hosts(known_hosts: Path | Sequence[Path]) -> asyncssh.SSHKnownHosts:
    """All the given known_hosts files as one (missing files are empty)."""
    known = asyncssh.import_known_hosts("")
    for path in _as_paths(known_hosts):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise AuthFailed(f"cannot read known_hosts {path}: {exc.strerror or exc}") from exc
        try:
            known.load(text)
        except ValueError as exc:
            raise AuthFailed(f"cannot read known_hosts {path}: {exc}") from exc
    return known


def _hashed_pattern(pattern: str) -> str:
    """OpenSSH's hashed known_hosts name (HashKnownHosts): ``|1|salt|HMAC-SHA1``."""
    salt = os.urandom(20)
    digest = hmac.new(salt, pattern.encode("utf-8"), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


def host_key_info(known_hosts: Path | Sequence[Path], host: str, addr: str, port: int,
                  key: asyncssh.SSHKey, *, hashed: bool = False) -> HostKeyInfo:
    """Describe a key known_hosts did not trust: unknown, or a changed key.

    ``known_hosts``: the files checked, the first being the one trusting writes to
    (ssh's first UserKnownHostsFile). For a changed key ``info.known_hosts`` names
    the file that holds the old key, the one to clean up.
    """
    files = _as_paths(known_hosts)
    algorithm = key.get_algorithm()
    changed_in: Path | None = None
    for path in files:
        try:
            trusted = read_known_hosts(path).match(host, addr, port if port != 22 else None)[0]
        except AuthFailed:
            continue
        if any(k.get_algorithm() == algorithm and k != key for k in trusted):
            changed_in = path
            break
    public = key.export_public_key("openssh").decode("ascii").split()
    pattern = _known_hosts_pattern(host, port)
    line = f"{_hashed_pattern(pattern) if hashed else pattern} {public[0]} {public[1]}"
    return HostKeyInfo(
        host=host,
        port=port,
        key_type=algorithm,
        fingerprint=key.get_fingerprint("sha256"),
        known_hosts=str(changed_in or files[0]),
        line=line,
        changed=changed_in is not None,
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


class _KeyRecorder:
    """Remembers the host key that known_hosts did not trust (and refuses it)."""

    def __init__(self) -> None:
        self.untrusted: tuple[str, str, int, asyncssh.SSHKey] | None = None

    def validate_host_public_key(self, host: str, addr: str, port: int,
                                 key: asyncssh.SSHKey) -> bool:
        self.untrusted = (host, addr, port, key)
        return False


@functools.cache
def _client_class() -> type[_KeyRecorder]:
    """The asyncssh client: an ``asyncssh.SSHClient`` with :class:`_KeyRecorder`'s
    methods, made on first use (the TUI imports asyncssh after its first frame:
    core/lazyimport.py)."""
    return type("_Client", (_KeyRecorder, asyncssh.SSHClient), {})


# --------------------------------------------------------------------------- targets


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
        target = await resolve_target_async(host, self.settings)
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

    async def _client_keys(self, target: Target) -> _Keys:
        """The keys to offer, as OpenSSH picks them.

        Each IdentityFile in order: when the agent holds its key (found through the
        ``.pub`` next to it, or the file itself when it is a public key), the agent
        signs and the private file is never read, so no passphrase is asked for;
        otherwise the private file is loaded (see :class:`KeyStore`). Then the
        agent's other keys, unless IdentitiesOnly. A public key whose private half
        is in no agent is skipped, with a note for the error message.
        """
        keys = _Keys()
        agent_path = (target.agent_path if target.agent_path is not None
                      else os.environ.get("SSH_AUTH_SOCK", ""))
        agent_keys: list[asyncssh.SSHKeyPair] = []
        if agent_path:
            try:
                keys.agent = await asyncssh.connect_agent(agent_path)
                agent_keys = list(await keys.agent.get_keys())
            except (OSError, asyncssh.Error, ValueError):
                keys.notes.append(f"no agent at {agent_path}")
                if keys.agent is not None:
                    keys.agent.close()
                keys.agent = None
        in_agent: dict[bytes, list[asyncssh.SSHKeyPair]] = {}
        for pair in agent_keys:  # a key's certificates first, then the key
            entries = in_agent.setdefault(_key_id(pair), [])
            entries.insert(0 if _has_cert(pair) else len(entries), pair)
        used: set[bytes] = set()
        for path in target.identity_files:
            public, private = _identity_pair(path)
            if public is not None and public.public_data in in_agent:
                if public.public_data not in used:
                    keys.offered.extend(in_agent[public.public_data])
                    used.add(public.public_data)
                continue
            if private is None:
                if public is not None:
                    where = f"the agent at {agent_path}" if agent_path else "no agent is set"
                    keys.notes.append(f"{path} is a public key and its private key is not "
                                      f"in an agent ({where})")
                elif target.identity_files == [path]:
                    keys.notes.append(f"identity file {path} does not exist")
                continue
            try:
                key = self.keys.load(private)
            except (OSError, asyncssh.KeyImportError) as exc:
                if isinstance(exc, FileNotFoundError):
                    continue
                raise AuthFailed(f"cannot use identity file {private}: {exc}") from exc
            if key is None:
                keys.locked.append(private)
            else:
                keys.offered.extend(_with_certificates(key, private, target.certificate_files))
        if not target.identities_only:
            keys.offered.extend(k for k in agent_keys if _key_id(k) not in used)
        if not keys.offered and not keys.locked and keys.notes:
            if keys.agent is not None:
                keys.agent.close()
            raise AuthFailed("no key to offer: " + "; ".join(keys.notes))
        return keys

    async def _connect_target(self, target: Target, label: str,
                              tunnel: asyncssh.SSHClientConnection | None
                              ) -> asyncssh.SSHClientConnection:
        what = f"{label}: " if label else ""
        if target.problem:
            raise AuthFailed(f"{what}{target.problem}")
        keys = await self._client_keys(target)
        proxy: _Proxy | None = None
        try:
            if tunnel is None and target.proxy_command:
                proxy = await _Proxy.start(target.proxy_command)
            conn = await self._connect_with(target, what, tunnel, keys, proxy)
        except ConnectFailure as exc:
            if proxy is not None:
                await proxy.stop()
                if isinstance(exc, Unreachable) and proxy.last_error:
                    raise Unreachable(f"{exc} (ProxyCommand: {proxy.last_error})") from None
            raise
        except BaseException:
            if proxy is not None:
                await proxy.stop()
            raise
        finally:
            if keys.agent is not None:
                keys.agent.close()
        if proxy is not None:
            running = proxy

            async def _stop_proxy_when_closed() -> None:
                await conn.wait_closed()
                await running.stop()

            task = asyncio.get_running_loop().create_task(_stop_proxy_when_closed())
            _BACKGROUND.add(task)
            task.add_done_callback(_BACKGROUND.discard)
        return conn

    async def _connect_with(self, target: Target, what: str,
                            tunnel: asyncssh.SSHClientConnection | None,
                            keys: _Keys, proxy: _Proxy | None
                            ) -> asyncssh.SSHClientConnection:
        settings = self.settings
        locked = keys.locked
        if locked and not keys.offered:
            raise PassphraseNeeded(locked[0], f"{what}the key {locked[0]} needs its passphrase")
        client = _client_class()()
        options: dict[str, Any] = {
            "known_hosts": read_known_hosts(target.known_hosts_files or [target.known_hosts]),
            "connect_timeout": settings.connect_timeout,
            "login_timeout": settings.login_timeout,
            "keepalive_interval": settings.keepalive_interval,
            "keepalive_count_max": settings.keepalive_count_max,
            "client_factory": lambda: client,
            # ssh_config was evaluated already (sshconfig.py): asyncssh reads no file
            "config": None,
            "agent_forwarding": False,
            "x11_forwarding": False,
            "tunnel": tunnel,
            "port": target.port,
            "username": target.user,
            # The agent's keys are in the list already (signing through keys.agent).
            "client_keys": keys.offered or None,
            "agent_path": None,
        }
        if target.host_key_alias:
            options["host_key_alias"] = target.host_key_alias
        if proxy is not None:
            options["sock"] = proxy.sock
        try:
            return await asyncssh.connect(target.host, **options)
        except asyncssh.HostKeyNotVerifiable as exc:
            if client.untrusted is None:
                raise HostKeyProblem(
                    HostKeyInfo(target.host, target.port, "?", "?",
                                str(target.known_hosts), "", True),
                    f"{what}host key not verifiable: {exc.reason}",
                ) from None
            host, addr, port, key = client.untrusted
            info = host_key_info(target.known_hosts_files or [target.known_hosts],
                                 host, addr, port, key, hashed=target.hash_known_hosts)
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
            notes = "".join(f"; {note}" for note in keys.notes)
            raise AuthFailed(f"{what}authentication refused ({exc.reason}){notes}") from None
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


class _Proxy:
    """A ProxyCommand, run as OpenSSH runs it: through the shell, its stdin and
    stdout the connection (a socket pair), its stderr kept apart (the last line is
    told when connecting fails; asyncssh's own proxy support reads stderr as data)."""

    def __init__(self, proc: asyncio.subprocess.Process, sock: socket.socket) -> None:
        self.proc = proc
        self.sock = sock
        self.last_error = ""
        self._reader = asyncio.get_running_loop().create_task(self._read_stderr())

    @classmethod
    async def start(cls, command: str) -> _Proxy:
        ours, theirs = socket.socketpair()
        try:
            proc = await asyncio.create_subprocess_exec(
                "/bin/sh", "-c", f"exec {command}", stdin=theirs.fileno(), stdout=theirs.fileno(),
                stderr=asyncio.subprocess.PIPE, start_new_session=True)
        except OSError as exc:
            ours.close()
            raise Unreachable(f"cannot run ProxyCommand: {exc.strerror or exc}") from None
        finally:
            theirs.close()
        return cls(proc, ours)

    async def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        while True:
            line = await self.proc.stderr.readline()
            if not line:
                return
            text = line.decode("utf-8", "replace").strip()
            if text:
                self.last_error = text[:300]

    async def stop(self) -> None:
        if self.proc.returncode is None:
            try:
                self.proc.terminate()
            except ProcessLookupError:
                pass
            try:
                await asyncio.wait_for(self.proc.wait(), 5)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        self.sock.close()
        self._reader.cancel()


@dataclass(slots=True)
class _Keys:
    """What one connection attempt offers: keys in order, and what it could not use."""

    offered: list[asyncssh.SSHKeyPair | asyncssh.SSHKey] = field(default_factory=list)
    locked: list[str] = field(default_factory=list)  # private keys needing a passphrase
    notes: list[str] = field(default_factory=list)  # said when the server refuses
    agent: asyncssh.SSHAgentClient | None = None  # open while connecting


def _has_cert(pair: asyncssh.SSHKeyPair) -> bool:
    return pair.algorithm.endswith(b"-cert-v01@openssh.com")


def _key_id(pair: asyncssh.SSHKeyPair) -> bytes:
    """The plain public key of an agent entry (a certificate's key for a certificate)."""
    if not _has_cert(pair):
        return pair.public_data
    try:
        blob = pair.algorithm + b" " + base64.b64encode(pair.public_data)
        return asyncssh.import_certificate(blob).key.public_data
    except (asyncssh.KeyImportError, ValueError):
        return pair.public_data


def _with_certificates(key: asyncssh.SSHKey, path: str, certificate_files: Sequence[str]
                       ) -> list[asyncssh.SSHKeyPair | asyncssh.SSHKey]:
    """The key, after its certificates (``key-cert.pub`` and matching CertificateFiles),
    as OpenSSH offers them."""
    out: list[asyncssh.SSHKeyPair | asyncssh.SSHKey] = []
    for cert_path in dict.fromkeys([path + "-cert.pub", *certificate_files]):
        if not os.path.isfile(cert_path):
            continue
        try:
            cert = asyncssh.read_certificate(cert_path)
            if cert.key.public_data != key.public_data:
                continue
            out.extend(asyncssh.load_keypairs([(key, cert)])[:1])
        except (OSError, asyncssh.KeyImportError, ValueError):
            continue
    out.append(key)
    return out


def _read_public(path: str) -> asyncssh.SSHKey | None:
    try:
        return asyncssh.read_public_key(path)
    except (OSError, asyncssh.KeyImportError, ValueError):
        return None


def _identity_pair(path: str) -> tuple[asyncssh.SSHKey | None, str | None]:
    """(public key, private key file) for an IdentityFile, as OpenSSH reads it.

    ``key`` -> its ``key.pub`` when there is one; ``key.pub`` (or any file holding
    a public key) -> that key, with ``key`` as the private file when it exists.
    """
    if not os.path.exists(path):
        return None, None
    if not _is_private_key_file(path):
        public = _read_public(path)
        if public is not None:  # the IdentityFile is a public key
            private = path[:-4] if path.endswith(".pub") else None
            return public, private if private and os.path.isfile(private) else None
    return _read_public(path + ".pub"), path


def _is_private_key_file(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return True  # let loading it report the problem
    return b"PRIVATE KEY" in head or b"PuTTY-User-Key-File" in head


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
