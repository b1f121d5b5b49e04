"""One host, supervised: connect, sample, notice staleness, reconnect with backoff.

States (see :class:`HostState`): CONNECTING -> LIVE <-> STALE -> RECONNECTING -> ...;
host-key and auth failures park the host until the user acts (trust, passphrase,
retry). One host's trouble never touches another's: each supervisor is its own task.
A supervisor is a one-host :class:`Source` of kind ``ssh``.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import replace
from typing import TYPE_CHECKING

import asyncssh

from nomadlab.core.clock import Clock
from nomadlab.core.config import HostConfig, SshSettings
from nomadlab.core.durations import compact
from nomadlab.core.model import AgentInfo, HostSample, HostState, HostStatus
from nomadlab.core.source import (
    UNHEARD,
    HostTeller,
    Source,
    SourceError,
    SourceListener,
    SourceStatus,
    one_host_status,
)
from nomadlab.core.tasks import BackgroundTask
from nomadlab.remote.ssh import Connector
from nomadlab.remote.ssh_errors import (
    AuthFailed,
    ConnectFailure,
    HostKeyProblem,
    PassphraseNeeded,
    Unreachable,
)

if TYPE_CHECKING:
    # The agent session (and its protocol and bootstrap modules) is imported when a
    # host connects: the TUI makes every host's supervisor before its first frame.
    from nomadlab.remote.session import AgentSession


class Backoff:
    """Exponential backoff with jitter: half the step fixed, half random; capped."""

    def __init__(self, initial: float, cap: float, rng: random.Random | None = None) -> None:
        self.initial = initial
        self.cap = cap
        self.attempt = 0
        self.rng = rng or random.Random()

    def next(self) -> float:
        # The exponent is capped: 2.0 ** 1024 overflows, and a host can stay down
        # for that many attempts (about 13 hours at a 60 s cap).
        step = min(self.cap, self.initial * (2.0 ** min(self.attempt, 64)))
        self.attempt += 1
        return step / 2 + self.rng.uniform(0, step / 2)

    def reset(self) -> None:
        self.attempt = 0


class HostSupervisor(Source):
    kind = "ssh"
    one_host = True

    def __init__(self, host: HostConfig, connector: Connector, settings: SshSettings,
                 clock: Clock, *, interval: float, stale_after: float,
                 rng: random.Random | None = None) -> None:
        self.host = host
        self.connector = connector
        self.clock = clock
        self.interval = interval
        self.stale_after = stale_after
        self.listener = UNHEARD
        self.backoff = Backoff(settings.backoff_initial, settings.backoff_max, rng)
        self.status = HostStatus(name=host.name, state=HostState.CONNECTING, since=clock.time())
        self._wake = asyncio.Event()
        self._task = BackgroundTask()
        self._conn: asyncssh.SSHClientConnection | None = None
        self._connected = asyncio.Event()
        self._session: AgentSession | None = None
        self._last_sample_mono: float | None = None
        self._probe_deadline: float | None = None
        self._teller = HostTeller(self.kind)

    # ------------------------------------------------------------------ as a source

    @property
    def name(self) -> str:
        return self.host.name

    @property
    def source_status(self) -> SourceStatus:
        return one_host_status(self.kind, self.status)

    def attach(self, listener: SourceListener) -> None:
        self.listener = listener

    def initial_hosts(self) -> list[HostStatus]:
        return [self.status]

    def retry(self, host: str) -> bool:
        self.backoff.reset()
        self.wake()
        return True

    def hourly_cost(self, host: str) -> float | None:
        return self.host.hourly_cost

    def on_status(self, status: HostStatus) -> None:
        """Tell the listener the host's state, and the source's when that changed."""
        self._teller.tell(self.listener, status)

    # ------------------------------------------------------------------ state

    def _set(self, state: HostState, **changes: object) -> None:
        now = self.clock.time()
        since = self.status.since if state is self.status.state else now
        clear: dict[str, object] = {"error": None, "retry_at": None, "hostkey": None,
                                    "key_path": None}
        clear.update(changes)
        self.status = replace(self.status, state=state, since=since, **clear)  # type: ignore[arg-type]
        self.on_status(self.status)

    # ------------------------------------------------------------------ user actions

    def wake(self) -> None:
        """Try again now: after the user acted, or after the laptop woke up."""
        self._wake.set()

    def recheck(self) -> None:
        """The machine slept: retry a waiting host now, probe a live one."""
        if self._session is not None and self.status.state in (HostState.LIVE, HostState.STALE):
            self._probe_deadline = self.clock.monotonic() + max(5.0, 3 * self.interval)
            self._session.ping()
        elif not self.status.state.waits_for_user:
            self.backoff.reset()  # the network may need a few quick tries to come back
            self.wake()

    def set_interval(self, interval: float) -> None:
        self.interval = interval
        if self._session is not None:
            self._session.set_interval(interval)

    # ------------------------------------------------------------------ session sink

    def on_info(self, info: AgentInfo) -> None:
        self.status = replace(self.status, info=info)
        self._set(HostState.LIVE)

    def on_sample(self, sample: HostSample) -> None:
        self._last_sample_mono = self.clock.monotonic()
        self._probe_deadline = None
        self.backoff.reset()
        self.status = replace(self.status, last_sample=sample.received)
        if self.status.state is not HostState.LIVE:
            self._set(HostState.LIVE)
        self.listener.host_sample(sample)

    def on_garbage(self, total: int) -> None:
        self.status = replace(self.status, garbage_lines=total)
        self.on_status(self.status)

    # ------------------------------------------------------------------ the loop

    def start(self) -> None:
        self._task.start(self.run, name=self.host.name)

    async def stop(self) -> None:
        await self._task.stop()
        if self._conn is not None:
            self._conn.close()
        self.status = replace(self.status, state=HostState.STOPPED)

    async def _wait_for_user(self) -> None:
        # Not cleared first: a retry pressed while connecting is not lost.
        await self._wake.wait()
        self._wake.clear()

    async def _sleep_backoff(self, reason: str) -> None:
        delay = self.backoff.next()
        self._set(HostState.RECONNECTING, error=reason, retry_at=self.clock.time() + delay)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):  # wait_for can drop a cancel: gh-86296
                await self._wake.wait()
        self._wake.clear()

    async def run(self) -> None:
        while True:
            self._set(HostState.CONNECTING)
            try:
                conn = await self.connector.connect(self.host)
            except HostKeyProblem as exc:
                state = HostState.HOSTKEY_CHANGED if exc.info.changed else HostState.HOSTKEY_UNKNOWN
                self._set(state, error=str(exc), hostkey=exc.info)
                await self._wait_for_user()
                continue
            except PassphraseNeeded as exc:
                self._set(HostState.PASSPHRASE, error=str(exc), key_path=exc.key_path)
                await self._wait_for_user()
                continue
            except AuthFailed as exc:
                self._set(HostState.AUTH_FAILED, error=str(exc))
                await self._wait_for_user()
                continue
            except (Unreachable, ConnectFailure) as exc:
                await self._sleep_backoff(str(exc))
                continue
            reason = await self._run_connected(conn)
            await self._sleep_backoff(reason)

    # ------------------------------------------------------------------ for others

    async def request(self, host: str, command: dict[str, object], timeout: float = 10.0
                      ) -> dict[str, object]:
        """A command for this host's agent (``proc``, ``signal``); its reply."""
        if host != self.host.name:
            raise SourceError(f"{host} is not {self.host.name}")
        session = self._session
        if session is None:
            from nomadlab.remote.session import CommandFailed

            raise CommandFailed(f"{self.host.name} is not connected ({self.status.state})")
        return await session.request(command, timeout)

    @property
    def connection(self) -> asyncssh.SSHClientConnection | None:
        """The live connection, for other channels on it (log tails), or None."""
        conn = self._conn
        return conn if conn is not None and not conn.is_closed() else None

    async def wait_connected(self) -> asyncssh.SSHClientConnection:
        """Wait until the host is connected (log tails ride on the same connection)."""
        while True:
            conn = self.connection
            if conn is not None:
                return conn
            self._connected.clear()
            await self._connected.wait()

    async def _run_connected(self, conn: asyncssh.SSHClientConnection) -> str:
        self._conn = conn
        self._connected.set()
        self._last_sample_mono = None
        from nomadlab.remote.session import AgentSession

        session = AgentSession(conn, self.host.name, self, self.clock,
                               interval=self.interval, python=self.host.python)
        self._session = session
        watchdog = asyncio.create_task(self._watch(conn))
        try:
            return await session.run()
        finally:
            watchdog.cancel()
            self._session = None
            self._conn = None
            conn.close()

    async def _watch(self, conn: asyncssh.SSHClientConnection) -> None:
        """Mark the host stale when samples stop; drop a link a wake-up probe found dead."""
        started = self.clock.monotonic()
        tick = min(1.0, self.interval)
        while True:
            await asyncio.sleep(tick)
            now = self.clock.monotonic()
            last = self._last_sample_mono if self._last_sample_mono is not None else started
            if now - last > self.stale_after and self.status.state is HostState.LIVE:
                self._set(HostState.STALE, error=f"no sample for {compact(now - last)}")
            if self._probe_deadline is not None and now > self._probe_deadline:
                self._probe_deadline = None
                self.backoff.reset()
                conn.close()  # dead after sleep: reconnect at once rather than wait
                return
