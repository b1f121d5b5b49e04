"""Opening SSH connections: jump hosts shared, ProxyCommand, keys offered, errors sorted.

One job: turn a :class:`HostConfig` into a live ``asyncssh`` connection, or into an
exception that says what kind of failure it was (:mod:`nomadlab.remote.ssh_errors`),
because that decides what happens next (see :mod:`nomadlab.remote.supervisor`). Its
parts: where to connect (:mod:`.ssh_target`), host keys (:mod:`.hostkeys`), client
keys and passphrases (:mod:`.ssh_keys`).

- :class:`HostKeyProblem` and :class:`AuthFailed` / :class:`PassphraseNeeded` wait
  for the user;
- :class:`Unreachable` retries with backoff.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import asyncssh

from nomadlab.core.config import HostConfig, SshSettings
from nomadlab.core.model import HostKeyInfo
from nomadlab.remote.ssh_errors import (
    AuthFailed,
    ConnectFailure,
    HostKeyProblem,
    PassphraseNeeded,
    Unreachable,
    os_reason,
)
from nomadlab.remote.ssh_keys import (
    KeyStore,
    OfferedKeys,
    has_cert,
    identity_pair,
    key_id,
    with_certificates,
)

if TYPE_CHECKING:
    from nomadlab.remote.ssh_target import Target

# How a host is resolved (ssh_config) and host keys checked are imported on the first
# connection: a TUI paints its first frame before any.


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
        from nomadlab.remote.ssh_target import parse_jump

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
        from nomadlab.remote.ssh_target import resolve_target_async

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

    async def _client_keys(self, target: Target) -> OfferedKeys:
        """The keys to offer, as OpenSSH picks them.

        Each IdentityFile in order: when the agent holds its key (found through the
        ``.pub`` next to it, or the file itself when it is a public key), the agent
        signs and the private file is never read, so no passphrase is asked for;
        otherwise the private file is loaded (see :class:`KeyStore`). Then the
        agent's other keys, unless IdentitiesOnly. A public key whose private half
        is in no agent is skipped, with a note for the error message.
        """
        keys = OfferedKeys()
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
            entries = in_agent.setdefault(key_id(pair), [])
            entries.insert(0 if has_cert(pair) else len(entries), pair)
        used: set[bytes] = set()
        for path in target.identity_files:
            public, private = identity_pair(path)
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
                keys.offered.extend(with_certificates(key, private, target.certificate_files))
        if not target.identities_only:
            keys.offered.extend(k for k in agent_keys if key_id(k) not in used)
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
                            keys: OfferedKeys, proxy: _Proxy | None
                            ) -> asyncssh.SSHClientConnection:
        from nomadlab.remote.hostkeys import host_key_client, host_key_info, read_known_hosts

        settings = self.settings
        locked = keys.locked
        if locked and not keys.offered:
            raise PassphraseNeeded(locked[0], f"{what}the key {locked[0]} needs its passphrase")
        client = host_key_client()
        options: dict[str, Any] = {
            "known_hosts": read_known_hosts(target.known_hosts_files or [target.known_hosts]),
            "connect_timeout": None,  # asyncio.timeout below, not asyncssh's wait_for
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
            # Not asyncssh's connect_timeout: that is asyncio.wait_for, which on Python
            # 3.11 hands the connection to a task cancelled in the loop turn the handshake
            # finished and drops the cancellation (a stopped host went on sampling).
            async with asyncio.timeout(settings.connect_timeout):
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
            raise Unreachable(f"{what}{os_reason(exc)}") from None
        except OSError as exc:
            raise Unreachable(f"{what}{os_reason(exc)}") from None
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


def _is_closed(conn: asyncssh.SSHClientConnection) -> bool:
    return conn.is_closed()


def _fields(host: HostConfig) -> dict[str, Any]:
    return {name: getattr(host, name) for name in host.__slots__}
