"""The demo's hosts behind real SSH: in-process asyncssh servers on 127.0.0.1.

:class:`DemoFleet` starts in-process asyncssh servers on 127.0.0.1 with a host key
and a client key it generates into a temp dir of its own, and writes a known_hosts
file, so the client's ordinary host-key checking and public-key login run unchanged.
Each simulated host answers the exec request of :func:`bootstrap.agent_command`,
reads the bootstrap payload from stdin exactly as the bootstrap would (a length line
and a zlib-compressed JSON bundle), and then streams what the REAL agent code builds
(:class:`agent.NvmlGpus`, :func:`agent.hello_message`, :func:`agent.sample_message`)
from a :class:`SimulatedNvml`. Streaming cadence uses the event loop's own time; only
the values follow the clock.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import shlex
import shutil
import sys
import tempfile
import time
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import asyncssh

from nomadlab.core.clock import SYSTEM_CLOCK, Clock
from nomadlab.core.config import Config, HostConfig, LogConfig, SshSettings
from nomadlab.hostside import agent as _agent_module
from nomadlab.remote import bootstrap
from nomadlab.remote.demo.logs import DemoLogs
from nomadlab.remote.demo.profiles import PROFILES, HostProfile
from nomadlab.remote.demo.sftp import DemoSftp, expand_home
from nomadlab.remote.demo.world import HostCounters, SimHost, build_hosts

# The agent module is Python 3.8 stdlib code without annotations: use it through Any.
_agent: Any = _agent_module

LOCALHOST = "127.0.0.1"
MAX_PAYLOAD = 64 << 20  # a bootstrap bundle is ~100 kB; anything near this is not ours


@functools.cache
def _boot_quoted() -> str:
    return shlex.quote(bootstrap.BOOT)


def agent_python(command: str | None) -> str | None:
    """The interpreter named by a :func:`bootstrap.agent_command` line, or None when
    ``command`` is not exactly such a line."""
    if not command:
        return None
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    if len(words) != 4 or words[:3] != ["exec", "sh", "-c"] or _boot_quoted() not in words[3]:
        return None
    try:
        python = shlex.split(words[3])[3]  # if command -v <python> ...
    except (ValueError, IndexError):
        return None
    return python if command == bootstrap.agent_command(python) else None


class _BadPayload(Exception):
    pass


async def _read_bundle(stdin: asyncssh.SSHReader[bytes]) -> dict[str, Any]:
    """What the bootstrap does with stdin: a length line, then a zlib JSON bundle."""
    line = await stdin.readline()
    try:
        size = int(line)
    except ValueError:
        raise _BadPayload(f"invalid length line {line[:40]!r}") from None
    if not 0 < size <= MAX_PAYLOAD:
        raise _BadPayload(f"bundle size {size} out of range")
    try:
        body = await stdin.readexactly(size)
    except asyncio.IncompleteReadError:
        raise _BadPayload("stdin ended inside the bundle") from None
    try:
        bundle = json.loads(zlib.decompress(body).decode("utf-8"))
    except (zlib.error, UnicodeDecodeError, ValueError) as exc:
        raise _BadPayload(f"cannot decode the bundle: {exc}") from None
    if not isinstance(bundle, dict):
        raise _BadPayload("the bundle is not an object")
    if not isinstance(bundle.get("agent"), str) or not bundle["agent"]:
        raise _BadPayload("KeyError: 'agent'")
    if not isinstance(bundle.get("args", {}), dict):
        raise _BadPayload("args is not an object")
    return bundle


class _DemoServer(asyncssh.SSHServer):
    """Public-key login for the demo's users (one per simulated host) and key only."""

    def __init__(self, fleet: DemoFleet, users: dict[str, SimHost]) -> None:
        self.fleet = fleet
        self.users = users
        self.conn: asyncssh.SSHServerConnection | None = None

    def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
        self.conn = conn
        self.fleet._connections.add(conn)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.conn is not None:
            self.fleet._connections.discard(self.conn)

    def begin_auth(self, username: str) -> bool:
        return True  # always authenticate, whoever it claims to be

    def password_auth_supported(self) -> bool:
        return False

    def kbdint_auth_supported(self) -> bool:
        return False

    def public_key_auth_supported(self) -> bool:
        return True

    def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
        return username in self.users and key == self.fleet._client_public


class DemoFleet:
    """Simulated GPU hosts behind in-process asyncssh servers on 127.0.0.1.

    ::

        async with DemoFleet(hosts=4, seed=1) as demo:
            fleet = Fleet(demo.config(tmp / "data"))

    Each host's SSH user is its name. ``servers`` is how many listening servers the
    hosts share (each with its own port and host key); default one per host.
    Everything it writes (keys, known_hosts) is in :attr:`dir`, a temp dir it makes
    (under ``base_dir`` when given) and removes on :meth:`stop`.
    """

    def __init__(self, hosts: int = 4, gpus: int = 8, *, seed: int = 0,
                 clock: Clock = SYSTEM_CLOCK, epoch: float | None = None,
                 servers: int | None = None, base_dir: str | os.PathLike[str] | None = None,
                 profiles: Sequence[HostProfile] = PROFILES) -> None:
        self.clock = clock
        self.seed = seed
        self.hosts = build_hosts(hosts, gpus, seed=seed, clock=clock, epoch=epoch,
                                 profiles=profiles)
        self.server_count = len(self.hosts) if servers is None else max(1, min(servers, hosts))
        self.base_dir = None if base_dir is None else Path(base_dir)
        self.dir: Path | None = None
        self.client_key_path: Path | None = None
        self.known_hosts_path: Path | None = None
        self.ports: list[int] = []
        self.host_ports: dict[str, int] = {}
        self._acceptors: list[asyncssh.SSHAcceptor] = []
        self._connections: set[asyncssh.SSHServerConnection] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._client_public: asyncssh.SSHKey | None = None
        self._started = False
        self.logs: DemoLogs | None = None

    # ------------------------------------------------------------------ lifecycle

    async def __aenter__(self) -> DemoFleet:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> DemoFleet:
        if self._started:
            return self
        if self.base_dir is not None:
            self.base_dir.mkdir(parents=True, exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix="nomadlab-demo-",
                                         dir=None if self.base_dir is None else str(self.base_dir)))
        try:
            await self._start_servers(self.dir)
            self.logs = DemoLogs(self.dir / "runs", [h.name for h in self.hosts], self.clock,
                                 self.seed)
            self.logs.start()
        except BaseException:
            await self.stop()
            raise
        self._started = True
        return self

    async def _start_servers(self, base: Path) -> None:
        self.ports, self.host_ports = [], {}
        client_key = asyncssh.generate_private_key("ssh-ed25519", comment="nomadlab-demo")
        self._client_public = client_key.convert_to_public()
        self.client_key_path = base / "id_ed25519"
        client_key.write_private_key(str(self.client_key_path))
        os.chmod(self.client_key_path, 0o600)
        client_key.write_public_key(str(base / "id_ed25519.pub"))
        groups: list[dict[str, SimHost]] = [{} for _ in range(self.server_count)]
        for i, host in enumerate(self.hosts):
            groups[i % self.server_count][host.name] = host
        lines = []
        for users in groups:
            host_key = asyncssh.generate_private_key("ssh-ed25519")
            acceptor = await asyncssh.create_server(
                functools.partial(_DemoServer, self, users), LOCALHOST, 0,
                server_host_keys=[host_key],
                process_factory=functools.partial(self._session, users),
                encoding=None,
                line_editor=False,
                agent_forwarding=False,
                x11_forwarding=False,
                allow_scp=False,
                sftp_factory=functools.partial(DemoSftp, base),
                allow_pty=False,
            )
            self._acceptors.append(acceptor)
            port = acceptor.get_port()
            self.ports.append(port)
            for name in users:
                self.host_ports[name] = port
            kind, blob = host_key.export_public_key("openssh").decode("ascii").split()[:2]
            lines.append(f"[{LOCALHOST}]:{port} {kind} {blob}\n")
        self.known_hosts_path = base / "known_hosts"
        self.known_hosts_path.write_text("".join(lines), encoding="ascii")

    async def stop(self) -> None:
        """Close the listeners and every connection, end every session, remove the dir."""
        if self.logs is not None:
            await self.logs.stop()
        for acceptor in self._acceptors:
            acceptor.close()
        for conn in list(self._connections):
            conn.close()
        for conn in list(self._connections):
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.wait_closed(), 5.0)
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        for acceptor in self._acceptors:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(acceptor.wait_closed(), 5.0)
        self._acceptors.clear()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
        self._started = False

    # ------------------------------------------------------------------ the client side

    def host_configs(self) -> list[HostConfig]:
        if self.client_key_path is None or self.known_hosts_path is None:
            raise RuntimeError("start the DemoFleet first")
        return [
            HostConfig(name=h.name, hostname=LOCALHOST, port=self.host_ports[h.name],
                       user=h.name, identity_file=str(self.client_key_path),
                       known_hosts=str(self.known_hosts_path), hourly_cost=h.hourly_cost,
                       tags=["demo"])
            for h in self.hosts
        ]

    def config(self, data_dir: str | os.PathLike[str] | None = None, *, interval: float = 1.0,
               ssh: SshSettings | None = None, show_local: bool = False) -> Config:
        """A client config for this fleet. Nothing outside :attr:`dir` and ``data_dir``
        is read: no ~/.ssh/config, no ~/.ssh/known_hosts."""
        if self.dir is None or self.known_hosts_path is None:
            raise RuntimeError("start the DemoFleet first")
        settings = ssh if ssh is not None else SshSettings(connect_timeout=10.0,
                                                          login_timeout=20.0)
        # A path that does not exist: the user's ~/.ssh/config must not apply here.
        settings.config_file = str(self.dir / "no_ssh_config")
        settings.known_hosts = str(self.known_hosts_path)
        config = Config(source=None, show_local=show_local,
                        data_dir=Path(data_dir) if data_dir is not None else self.dir / "data",
                        hosts=self.host_configs(), ssh=settings)
        config.fleet.interval = interval
        if self.logs is not None:
            config.logs = [LogConfig(name=f"{host}/train", host=host, path=str(path))
                           for host, path in self.logs.paths().items()]
        return config

    # ------------------------------------------------------------------ counters

    @property
    def counters(self) -> dict[str, HostCounters]:
        return {h.name: h.counters for h in self.hosts}

    @property
    def active_sessions(self) -> int:
        return sum(h.counters.active for h in self.hosts)

    @property
    def samples_sent(self) -> int:
        return sum(h.counters.samples for h in self.hosts)

    @property
    def bytes_sent(self) -> int:
        return sum(h.counters.bytes_sent for h in self.hosts)

    @property
    def connections(self) -> int:
        return len(self._connections)

    # ------------------------------------------------------------------ one session

    async def _session(self, users: dict[str, SimHost],
                       process: asyncssh.SSHServerProcess[bytes]) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        username = str(process.get_extra_info("username", ""))
        host = users.get(username)
        try:
            if host is None:  # authentication makes this unreachable; be safe anyway
                process.stderr.write(b"nomadlab-demo: no such host\n")
                process.exit(127)
                return
            if agent_python(process.command) is None:
                host.counters.refused += 1
                word = (process.command or "").split(maxsplit=1)[:1] or ["(shell)"]
                process.stderr.write(
                    f"nomadlab-demo: {host.name} runs only the nomadlab agent; "
                    f"refused {word[0][:40]!r}\n".encode("utf-8", "replace"))
                process.exit(127)
                return
            try:
                bundle = await _read_bundle(process.stdin)
            except _BadPayload as exc:
                process.stderr.write(f"Traceback (most recent call last):\n  {exc}\n".encode())
                process.exit(1)
                return
            if bundle["agent"] == bootstrap.tailagent_source():
                code = await self._run_tail(process, bundle)
                process.exit(code)
                return
            code = await self._run_agent(host, process, bundle.get("args", {}))
            process.exit(code)
        except (OSError, asyncssh.Error):
            pass  # the channel or the connection went away
        finally:
            if task is not None:
                self._tasks.discard(task)

    async def _run_tail(self, process: asyncssh.SSHServerProcess[bytes],
                        bundle: dict[str, Any]) -> int:
        """The log tail agent, for real: a local process on the demo's own log files.

        Only paths inside the demo's directory are tailed; anything else is refused
        the way a host refuses a file it does not have.
        """
        args = dict(bundle.get("args", {}))
        assert self.dir is not None
        root = self.dir.resolve()
        user = str(process.get_extra_info("username", ""))
        raw = expand_home(str(args.get("path", "")), root, user)
        args["path"] = raw
        target = Path(os.path.expanduser(raw)).resolve() if raw else root
        if root not in target.parents:
            args["path"] = str(root / "not-in-the-demo" / Path(raw).name)
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-u", "-c", bootstrap.BOOT, stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(bootstrap.tail_payload(args))

        async def upstream() -> None:  # heartbeats and EOF from the client
            assert child.stdin is not None
            try:
                while data := await process.stdin.read(65536):
                    child.stdin.write(data)
                    await child.stdin.drain()
            except (OSError, asyncssh.Error):
                pass
            with contextlib.suppress(OSError):
                child.stdin.close()

        pump = asyncio.create_task(upstream())
        try:
            while data := await child.stdout.read(65536):
                process.stdout.write(data)
                await process.stdout.drain()
        except (OSError, asyncssh.Error):
            pass
        finally:
            pump.cancel()
            if child.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    child.kill()
            code = await child.wait()
        return max(0, code)

    async def _run_agent(self, host: SimHost, process: asyncssh.SSHServerProcess[bytes],
                         args: dict[str, Any]) -> int:
        """The agent's main loop (:meth:`agent.Agent.run`), on asyncio instead of threads."""
        counters = host.counters
        try:
            interval = max(0.1, float(args.get("interval", 1.0)))
            heartbeat_timeout = float(args.get("heartbeat_timeout", 60.0))
        except (TypeError, ValueError):
            process.stderr.write(b"ValueError: bad agent arguments\n")
            return 1
        once = bool(args.get("once", False))
        loop = asyncio.get_running_loop()
        counters.sessions += 1
        counters.active += 1
        sim = host.agent()
        stop = asyncio.Event()
        wake = asyncio.Event()
        state = {"interval": interval, "last_input": loop.time()}

        async def write(build: str) -> None:
            started = time.perf_counter()
            message = sim.hello() if build == "hello" else sim.sample()
            data: bytes = _agent.encode(message)
            counters.build_seconds += time.perf_counter() - started
            process.stdout.write(data)
            counters.bytes_sent += len(data)
            if build == "hello":
                counters.hellos += 1
            else:
                counters.samples += 1
            await process.stdout.drain()

        async def listen() -> None:
            """Heartbeats and commands on stdin; EOF (or a closed channel) ends it."""
            try:
                while True:
                    raw = await process.stdin.readline()
                    if not raw:
                        break
                    state["last_input"] = loop.time()
                    words = raw.decode("utf-8", "replace").split()
                    if len(words) == 2 and words[0] == "interval":
                        try:
                            state["interval"] = min(3600.0, max(0.1, float(words[1])))
                        except ValueError:
                            continue
                        wake.set()
                    elif words == ["quit"]:
                        break
            except (OSError, asyncssh.Error):
                pass
            stop.set()
            wake.set()

        listener: asyncio.Task[None] | None = None
        try:
            await write("hello")
            if once:
                counters.once += 1
                await write("sample")
                return 0
            listener = asyncio.create_task(listen())
            next_tick = loop.time()
            while not stop.is_set():
                if loop.time() - state["last_input"] > heartbeat_timeout:
                    return 3  # the client is gone without closing stdin
                await write("sample")
                next_tick += state["interval"]
                delay = next_tick - loop.time()
                if delay < 0:  # fell behind: do not burst
                    next_tick = loop.time()
                    delay = 0.0
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await wake.wait()
                if wake.is_set() and not stop.is_set():
                    wake.clear()
                    next_tick = loop.time()
            return 0
        except (OSError, asyncssh.Error):
            return 2  # stdout gone: the channel closed
        finally:
            counters.active -= 1
            if listener is not None:
                listener.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await listener
            sim.close()
