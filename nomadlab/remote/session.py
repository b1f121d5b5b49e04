"""One sampling session on one live connection: the agent, or nvidia-smi over sh.

A session lasts as long as the connection (or until the agent ends). It reports
through a :class:`SessionSink`; it never changes host state itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import shlex
from collections.abc import Callable
from typing import Protocol

import asyncssh

from nomadlab.core.clock import Clock
from nomadlab.core.model import AgentInfo, GpuProcess, GpuSample, GpuSource, HostSample
from nomadlab.core.source import SourceError
from nomadlab.hostside.agent import smi as wire
from nomadlab.remote import bootstrap
from nomadlab.remote.protocol import AgentDecoder, AgentError, AgentReply, NoPython

READ_CHUNK = 1 << 16
STDERR_KEEP = 4096
# A host's samples are taken at most at the configured rate: a token bucket that
# refills one sample per interval and holds SAMPLE_BURST (samples bunched by a stalled
# link are kept; a flooding or broken agent costs decoding, never history or memory).
SAMPLE_BURST = 5


class CommandFailed(SourceError):
    """A command for the agent could not be delivered or was not answered."""


class SessionSink(Protocol):
    def on_info(self, info: AgentInfo) -> None: ...

    def on_sample(self, sample: HostSample) -> None: ...

    def on_garbage(self, total: int) -> None: ...


class RateGate:
    """Takes samples at most at the configured rate (a token bucket of
    :data:`SAMPLE_BURST`, one token per interval); counts the ones it drops."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.tokens = float(SAMPLE_BURST)
        self.last: float | None = None  # monotonic time of the last refill
        self.dropped = 0

    def take(self, interval: float) -> bool:
        now = self.clock.monotonic()
        if self.last is not None and interval > 0:
            self.tokens = min(float(SAMPLE_BURST),
                              self.tokens + max(0.0, now - self.last) / interval)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        self.dropped += 1
        return False

    def reset(self) -> None:
        """The next sample is taken whenever it comes (it was asked for)."""
        self.tokens = max(self.tokens, 1.0)


class AgentSession:
    """Runs the streaming agent; falls back to :class:`ShellSession` without python3."""

    def __init__(self, conn: asyncssh.SSHClientConnection, host: str, sink: SessionSink,
                 clock: Clock, *, interval: float = 1.0, python: str = "python3",
                 heartbeat: float = 10.0, heartbeat_timeout: float = 60.0) -> None:
        self.conn = conn
        self.host = host
        self.sink = sink
        self.clock = clock
        self.interval = interval
        self.python = python
        self.heartbeat = heartbeat
        self.heartbeat_timeout = heartbeat_timeout
        self.decoder = AgentDecoder(host)
        self._proc: asyncssh.SSHClientProcess[bytes] | None = None
        self._shell: ShellSession | None = None
        self.gate = RateGate(clock)
        self._replies: dict[int, asyncio.Future[dict[str, object]]] = {}
        self._next_id = 0

    def _take(self) -> bool:
        return self.gate.take(self.interval)

    async def request(self, command: dict[str, object], timeout: float = 10.0
                      ) -> dict[str, object]:
        """Send one command to the agent on its stdin and wait for its reply.

        Raises :class:`CommandFailed` when there is no agent to ask (no python3 on the
        host, or the session ended) or it did not answer in time.
        """
        if self._proc is None or self._shell is not None or self.decoder.info is None:
            raise CommandFailed("the host has no running agent to send this")
        self._next_id += 1
        ident = self._next_id
        future: asyncio.Future[dict[str, object]] = asyncio.get_running_loop().create_future()
        self._replies[ident] = future
        try:
            line = json.dumps({**command, "id": ident}, separators=(",", ":")) + "\n"
            self._proc.stdin.write(line.encode())
            return await asyncio.wait_for(future, timeout)
        except (OSError, asyncssh.Error) as exc:
            raise CommandFailed(f"cannot reach the agent: {exc}") from exc
        except TimeoutError:
            raise CommandFailed(f"the agent did not answer within {timeout:g}s") from None
        finally:
            self._replies.pop(ident, None)

    def _reply(self, reply: AgentReply) -> None:
        future = self._replies.pop(reply.id, None)
        if future is not None and not future.done():
            future.set_result(reply.data)

    def ping(self) -> None:
        """Ask for a sample now (after a wake-up): the agent answers 'interval' at once."""
        self.gate.reset()
        self.set_interval(self.interval)

    def set_interval(self, interval: float) -> None:
        self.interval = interval
        if self._proc is not None:
            try:
                self._proc.stdin.write(f"interval {interval:g}\n".encode())
            except (OSError, asyncssh.Error):
                pass

    def command(self) -> str:
        """The exec request's command line (a job's GPUs: inside its allocation)."""
        return bootstrap.agent_command(self.python)

    async def run(self) -> str:
        """Stream until the session ends; returns why it ended."""
        command = self.command()
        try:
            proc = await self.conn.create_process(command, encoding=None)
        except asyncssh.ChannelOpenError as exc:
            return f"cannot start agent: {exc.reason}"
        self._proc = proc
        stderr_tail = bytearray()

        async def collect_stderr() -> None:
            while True:
                data = await proc.stderr.read(READ_CHUNK)
                if not data:
                    return
                stderr_tail.extend(data)
                del stderr_tail[:-STDERR_KEEP]

        async def heartbeats() -> None:
            while True:
                await asyncio.sleep(self.heartbeat)
                proc.stdin.write(b"\n")

        stderr_task = asyncio.create_task(collect_stderr())
        beat_task = asyncio.create_task(heartbeats())
        fallback: NoPython | None = None
        reason = "agent ended"
        lost: str | None = None  # why the link broke, when asyncssh said so
        try:
            proc.stdin.write(bootstrap.payload(
                self.interval, heartbeat_timeout=self.heartbeat_timeout))
            while True:
                data = await proc.stdout.read(READ_CHUNK)
                if not data:
                    break
                before = self.decoder.garbage
                for event in self.decoder.feed(data, self.clock.time()):
                    if isinstance(event, NoPython):
                        fallback = event
                        break
                    if isinstance(event, AgentInfo):
                        self.sink.on_info(event)
                    elif isinstance(event, HostSample):
                        if self._take():
                            self.sink.on_sample(event)
                    elif isinstance(event, AgentReply):
                        self._reply(event)
                    elif isinstance(event, AgentError):
                        reason = f"agent error: {event.message}"
                if self.decoder.garbage != before:
                    self.sink.on_garbage(self.decoder.garbage)
                if fallback is not None:
                    break
        except (asyncssh.Error, OSError) as exc:
            lost = f"connection lost: {exc}"  # e.g. "server not responding to keepalive"
        finally:
            beat_task.cancel()
            proc.close()
            stderr_task.cancel()
            self._proc = None
            for future in self._replies.values():
                if not future.done():
                    future.set_exception(CommandFailed("the agent session ended"))
        if fallback is not None:
            self._shell = ShellSession(self.conn, self.host, self.sink, self.clock,
                                       interval=self.interval, detail=fallback.detail,
                                       heartbeat=self.heartbeat,
                                       heartbeat_timeout=self.heartbeat_timeout,
                                       gate=self.gate)
            return await self._shell.run()
        if lost is not None:
            return lost
        if self.conn.is_closed():
            return "connection closed"
        status = proc.exit_status
        last = bytes(stderr_tail).decode("utf-8", "replace").strip().splitlines()
        detail = f": {last[-1][:200]}" if last else ""
        if status not in (None, 0):
            return f"agent exited with status {status}{detail}"
        return reason + detail


# --------------------------------------------------------------------------- no python3

_HOST_LOOP = """
read -r h < /proc/sys/kernel/hostname 2>/dev/null || h=unknown
echo "N $h"
while :; do
  read -r _c u n s i w q sq st _rest < /proc/stat
  t=; a=
  while read -r k v _u; do
    case $k in MemTotal:) t=$v;; MemAvailable:) a=$v;; esac
  done < /proc/meminfo
  read -r l1 _l < /proc/loadavg
  echo "H $u $n $s $i $w $q $sq $st $t $a $l1" || exit 0
  sleep {interval} || exit 0
done
"""

_SMI = (
    "command -v nvidia-smi >/dev/null 2>&1 || {{ echo NOMADLAB-NO-NVIDIA-SMI; exit 0; }}; "
    "exec nvidia-smi --query-{what}={fields} --format=csv,noheader,nounits -lms {ms}"
)

# Every channel's command runs under this watchdog (POSIX sh: no ``read -t``). The
# work runs in the background; the shell reads heartbeat lines from stdin, and each
# one restarts a timer. When no line comes for T seconds (a black-holed link: nothing
# is closed, writes just pile up in sshd), when stdin ends (the channel closed), or
# when the work ends, ``kill 0`` ends the whole process group: sshd starts each
# session in a group of its own (setsid), so that is this command and nothing else.
_WATCHDOG = """t={timeout}
( ( {command}
) ; kill -TERM 0 ) &
timer() {{ trap 'kill $p 2>/dev/null; exit 0' TERM; sleep $t & p=$!; wait $p; kill -TERM 0; }}
timer >/dev/null 2>&1 & s=$!
while read -r _l; do
  kill $s 2>/dev/null
  timer >/dev/null 2>&1 & s=$!
done
kill -TERM 0
"""


def watched(command: str, timeout: float) -> str:
    """``command`` (sh) as a channel command that ends on the host when the client has
    been silent for ``timeout`` seconds (it writes a line at least that often)."""
    seconds = max(1, math.ceil(timeout))  # POSIX sleep takes whole seconds
    return "exec sh -c " + shlex.quote(_WATCHDOG.format(timeout=seconds, command=command))


class _HostStatsParser:
    def __init__(self) -> None:
        self.prev: tuple[int, int] | None = None
        self.hostname = "?"
        self.cpu: float | None = None
        self.ram_used: float | None = None
        self.ram_total: float | None = None
        self.load1: float | None = None

    def line(self, text: str) -> None:
        parts = text.split()
        if parts[:1] == ["N"] and len(parts) >= 2:
            self.hostname = parts[1][:255]
            return
        if parts[:1] != ["H"] or len(parts) != 12:
            return
        try:
            ticks = [int(v) for v in parts[1:9]]
            idle = ticks[3] + ticks[4]
            total = sum(ticks)
            if self.prev is not None and total > self.prev[1]:
                d_total = total - self.prev[1]
                self.cpu = round(100.0 * (d_total - (idle - self.prev[0])) / d_total, 1)
            self.prev = (idle, total)
            mem_total, mem_avail = int(parts[9]) / 1024.0, int(parts[10]) / 1024.0
            self.ram_total = round(mem_total, 1)
            self.ram_used = round(mem_total - mem_avail, 1)
            self.load1 = float(parts[11])
        except ValueError:
            return


class ShellSession:
    """No python3 on the host: three cheap channels on the same connection.

    ``nvidia-smi --query-gpu ... -lms`` and ``--query-compute-apps ... -lms`` stream
    GPUs and processes; a plain sh loop reads /proc for CPU, RAM and load. Each runs
    under a watchdog (:func:`watched`) that this side feeds a line every ``heartbeat``
    seconds: it ends on the host when the channel closes or when no line came for
    ``heartbeat_timeout`` seconds, whatever happened to the link.
    """

    def __init__(self, conn: asyncssh.SSHClientConnection, host: str, sink: SessionSink,
                 clock: Clock, *, interval: float, detail: str, heartbeat: float = 10.0,
                 heartbeat_timeout: float = 60.0, gate: RateGate | None = None) -> None:
        self.conn = conn
        self.gate = gate if gate is not None else RateGate(clock)
        self.host = host
        self.sink = sink
        self.clock = clock
        self.interval = interval
        self.detail = detail
        self.heartbeat = heartbeat
        self.heartbeat_timeout = heartbeat_timeout
        self.stats = _HostStatsParser()
        self.garbage = 0
        self._batch: list[dict[str, object]] = []
        self._gpu_count: int | None = None
        self._apps: dict[str, list[tuple[int, str, float | None]]] = {}
        self._apps_stamp: str | None = None
        self._apps_seen = 0.0
        self._has_smi = True
        self._info_sent = False

    async def _lines(self, command: str, handle: Callable[[str], None]) -> None:
        proc = await self.conn.create_process(command, encoding=None, stderr=asyncssh.DEVNULL)

        async def heartbeats() -> None:
            with contextlib.suppress(asyncssh.Error, OSError, RuntimeError):
                while True:
                    await asyncio.sleep(self.heartbeat)
                    proc.stdin.write(b"\n")

        beat = asyncio.create_task(heartbeats())
        buffer = bytearray()
        try:
            while True:
                data = await proc.stdout.read(READ_CHUNK)
                if not data:
                    return
                buffer.extend(data)
                while (end := buffer.find(b"\n")) >= 0:
                    handle(bytes(buffer[:end]).decode("utf-8", "replace"))
                    del buffer[: end + 1]
                if len(buffer) > 1 << 20:
                    buffer.clear()
                    self.garbage += 1
        finally:
            beat.cancel()
            proc.close()

    def _send_info(self, gpus: list[dict[str, object]]) -> None:
        source = GpuSource.NVIDIA_SMI if self._has_smi else GpuSource.NONE
        reason = (None if self._has_smi
                  else f"no NVIDIA driver ({self.detail}; nvidia-smi not found)")
        self.sink.on_info(AgentInfo(
            hostname=self.stats.hostname, agent_version=0, python=None, source=source,
            driver=None, gpu_count=len(gpus), reason=reason))
        self._info_sent = True

    def _gpu_line(self, text: str) -> None:
        if text.strip() == "NOMADLAB-NO-NVIDIA-SMI":
            self._has_smi = False
            return
        gpu = wire.parse_smi_gpu_line(text)
        if gpu is None:
            if text.strip():
                self.garbage += 1
                self.sink.on_garbage(self.garbage)
            return
        if self._batch and int(gpu["i"]) <= int(self._batch[-1]["i"]):  # type: ignore[call-overload]
            if self._gpu_count is None:
                self._gpu_count = len(self._batch)
            self._emit()
        self._batch.append(gpu)
        if self._gpu_count is not None and len(self._batch) >= self._gpu_count:
            self._emit()

    def _emit(self) -> None:
        batch, self._batch = self._batch, []
        if not batch:
            return
        if not self._info_sent:
            self._send_info(batch)
        now = self.clock.time()
        if self.clock.monotonic() - self._apps_seen > 2.5 * self.interval + 0.5:
            self._apps = {}
        gpus = []
        for raw in batch:
            procs = [GpuProcess(pid, "?", name, mib) for pid, name, mib in
                     self._apps.get(str(raw["uuid"]), [])]
            gpus.append(GpuSample(
                index=int(raw["i"]),  # type: ignore[call-overload]
                name=str(raw["name"])[:512], uuid=str(raw["uuid"])[:512],
                utilization=raw["util"], memory_used_mib=raw["mu"],  # type: ignore[arg-type]
                memory_total_mib=raw["mt"], temperature_c=raw["temp"],  # type: ignore[arg-type]
                power_w=raw["pw"], power_limit_w=raw["pl"],  # type: ignore[arg-type]
                processes=procs))
        if self.gate.take(self.interval):
            self.sink.on_sample(self._host_sample(now, gpus))

    def _host_sample(self, now: float, gpus: list[GpuSample]) -> HostSample:
        return HostSample(host=self.host, time=now, cpu_percent=self.stats.cpu,
                          memory_used_mib=self.stats.ram_used,
                          memory_total_mib=self.stats.ram_total, load1=self.stats.load1,
                          gpus=gpus, received=now)

    def _app_line(self, text: str) -> None:
        row = wire.parse_smi_app_line(text)
        if row is None:
            return
        stamp, uuid, pid, name, mib = row
        if stamp != self._apps_stamp:
            self._apps = {}
            self._apps_stamp = stamp
        self._apps.setdefault(uuid, []).append((pid, name[:512], mib))
        self._apps_seen = self.clock.monotonic()

    def _host_line(self, text: str) -> None:
        self.stats.line(text)
        if not self._has_smi and text.startswith("H "):
            if not self._info_sent:
                self._send_info([])
            if self.gate.take(self.interval):
                self.sink.on_sample(self._host_sample(self.clock.time(), []))

    async def run(self) -> str:
        ms = max(100, int(self.interval * 1000))
        gpu_cmd = _SMI.format(what="gpu", fields=",".join(wire.SMI_GPU_FIELDS), ms=ms)
        app_cmd = _SMI.format(what="compute-apps", fields=",".join(wire.SMI_APP_FIELDS), ms=ms)
        host_cmd = _HOST_LOOP.replace("{interval}", f"{self.interval:g}")
        tasks = [
            asyncio.create_task(self._lines(watched(c, self.heartbeat_timeout), h))
            for c, h in ((host_cmd, self._host_line), (gpu_cmd, self._gpu_line),
                         (app_cmd, self._app_line))
        ]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            for task in done:
                exc = task.exception()
                if exc is not None:
                    return f"connection lost: {exc}"
            # gpu/app channels end at once without nvidia-smi; the host loop goes on
            await asyncio.gather(*tasks)
        except (asyncssh.Error, OSError) as exc:
            return f"connection lost: {exc}"
        finally:
            for task in tasks:
                task.cancel()
        return "shell sampler ended"
