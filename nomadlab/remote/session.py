"""One sampling session on one live connection: the agent, or nvidia-smi over sh.

A session lasts as long as the connection (or until the agent ends). It reports
through a :class:`SessionSink`; it never changes host state itself.
"""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Callable
from typing import Protocol

import asyncssh

from nomadlab.core.clock import Clock
from nomadlab.core.model import AgentInfo, GpuProcess, GpuSample, GpuSource, HostSample
from nomadlab.remote import agent as wire
from nomadlab.remote import bootstrap
from nomadlab.remote.protocol import AgentDecoder, AgentError, NoPython

READ_CHUNK = 1 << 16
STDERR_KEEP = 4096


class SessionSink(Protocol):
    def on_info(self, info: AgentInfo) -> None: ...

    def on_sample(self, sample: HostSample) -> None: ...

    def on_garbage(self, total: int) -> None: ...


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

    def ping(self) -> None:
        """Ask for a sample now (after a wake-up): the agent answers 'interval' at once."""
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
                        self.sink.on_sample(event)
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
        if fallback is not None:
            self._shell = ShellSession(self.conn, self.host, self.sink, self.clock,
                                       interval=self.interval, detail=fallback.detail)
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
    GPUs and processes; a plain sh loop reads /proc for CPU, RAM and load. Each ends
    by SIGPIPE on its next write once the channel is gone.
    """

    def __init__(self, conn: asyncssh.SSHClientConnection, host: str, sink: SessionSink,
                 clock: Clock, *, interval: float, detail: str) -> None:
        self.conn = conn
        self.host = host
        self.sink = sink
        self.clock = clock
        self.interval = interval
        self.detail = detail
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
            self.sink.on_sample(self._host_sample(self.clock.time(), []))

    async def run(self) -> str:
        ms = max(100, int(self.interval * 1000))
        gpu_cmd = _SMI.format(what="gpu", fields=",".join(wire.SMI_GPU_FIELDS), ms=ms)
        app_cmd = _SMI.format(what="compute-apps", fields=",".join(wire.SMI_APP_FIELDS), ms=ms)
        host_cmd = _HOST_LOOP.replace("{interval}", f"{self.interval:g}")
        tasks = [
            asyncio.create_task(self._lines("exec sh -c " + shlex.quote(c), h))
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
