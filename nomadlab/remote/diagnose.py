"""``nomadlab hosts check``: walk one host through every step and say where it stops.

TCP -> host key -> auth -> python3 -> GPU source (NVML or nvidia-smi) -> GPU count ->
round trip. Each step is a line; the first failure says what to do about it.
"""

from __future__ import annotations

import asyncio
import shlex
import time
from dataclasses import dataclass, field

import asyncssh

from nomadlab.core.config import Config, HostConfig
from nomadlab.core.model import AgentInfo
from nomadlab.remote import bootstrap
from nomadlab.remote.protocol import AgentDecoder
from nomadlab.remote.ssh import Connector
from nomadlab.remote.ssh_errors import (
    AuthFailed,
    HostKeyProblem,
    PassphraseNeeded,
    Unreachable,
    os_reason,
)
from nomadlab.remote.ssh_target import resolve_target


@dataclass(slots=True)
class Step:
    name: str
    ok: bool | None  # None: skipped / informational
    detail: str


@dataclass(slots=True)
class Diagnosis:
    host: str
    steps: list[Step] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.ok is not False for s in self.steps)

    def add(self, name: str, ok: bool | None, detail: str) -> None:
        self.steps.append(Step(name, ok, detail))


async def _tcp(host: str, port: int, timeout: float) -> float:
    start = time.monotonic()
    async with asyncio.timeout(timeout):  # wait_for can drop a cancel: gh-86296
        _reader, writer = await asyncio.open_connection(host, port)
    elapsed = time.monotonic() - start
    writer.close()
    try:
        await writer.wait_closed()
    except OSError:
        pass
    return elapsed


async def diagnose(config: Config, host: HostConfig, connector: Connector | None = None
                   ) -> Diagnosis:
    result = Diagnosis(host.name)
    settings = config.ssh
    target = resolve_target(host, settings)
    if target.jump:
        result.add("tcp", None, f"through jump host {target.jump}")
    elif target.proxy_command:
        result.add("tcp", None, "through ProxyCommand")
    else:
        address, port = target.host, target.port  # as ssh resolves them (Match user, ...)
        try:
            elapsed = await _tcp(str(address), int(port), settings.connect_timeout)
        except (OSError, TimeoutError) as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else os_reason(exc)
            result.add("tcp", False, f"{address}:{port}: {reason}")
            return result
        result.add("tcp", True, f"{address}:{port} open ({elapsed * 1000:.0f} ms)")
    connector = connector or Connector(settings, config.hosts)
    try:
        conn = await connector.connect(host)
    except HostKeyProblem as exc:
        result.add("host key", False, str(exc) + (
            "" if exc.info.changed else f" - run `nomadlab hosts trust {host.name}`"))
        return result
    except PassphraseNeeded as exc:
        result.add("host key", True, "trusted")
        result.add("auth", False, f"{exc} (start nomadlab to enter it, or ssh-add the key)")
        return result
    except AuthFailed as exc:
        result.add("host key", True, "trusted")
        result.add("auth", False, str(exc))
        return result
    except Unreachable as exc:
        result.add("ssh", False, str(exc))
        return result
    result.add("host key", True, "trusted (known_hosts)")
    result.add("auth", True, f"logged in as {conn.get_extra_info('username')}")
    try:
        async with conn:
            start = time.monotonic()
            probe = await conn.run(
                f"{shlex.quote(host.python)} -c 'import sys; print(sys.version.split()[0])'",
                timeout=settings.login_timeout)
            round_trip = time.monotonic() - start
            version = str(probe.stdout or "").strip()
            has_python = False
            if probe.exit_status == 0 and version:
                too_old = tuple(int(p) for p in version.split(".")[:2] if p.isdigit()) < (3, 8)
                has_python = not too_old
                result.add("python3", not too_old,
                           f"{host.python} {version}" + (" (needs >= 3.8)" if too_old else ""))
            else:
                result.add("python3", None, f"{host.python} not found: nvidia-smi is streamed "
                                            "instead")
            smi = await conn.run("command -v nvidia-smi", timeout=settings.login_timeout)
            smi_path = str(smi.stdout or "").strip()
            result.add("nvidia-smi", None, smi_path or "not on PATH")
            if not has_python:  # the agent cannot run: the fleet streams nvidia-smi
                result.add("gpu source", True if smi_path else None,
                           "nvidia-smi" if smi_path else "none - no python3 and no nvidia-smi")
                result.add("round trip", None, f"{round_trip * 1000:.0f} ms per command")
                return result
            proc = await conn.create_process(bootstrap.agent_command(host.python), encoding=None)
            proc.stdin.write(bootstrap.payload(1.0, once=True))
            decoder = AgentDecoder(host.name)
            info: AgentInfo | None = None
            try:
                async with asyncio.timeout(settings.login_timeout):
                    while info is None:
                        data = await proc.stdout.read(65536)
                        if not data:
                            break
                        for event in decoder.feed(data, time.time()):
                            if isinstance(event, AgentInfo):
                                info = event
            except TimeoutError:
                pass
            proc.close()
            if info is None:
                result.add("agent", False, "the agent did not answer")
            else:
                result.add("gpu source", info.gpu_count > 0 or None,
                           f"{info.source}" + (f", driver {info.driver}" if info.driver else "")
                           + ("" if info.gpu_count else f" - {info.reason or 'no GPU'}"))
                result.add("gpus", None, f"{info.gpu_count}")
            result.add("round trip", None, f"{round_trip * 1000:.0f} ms per command")
    except (asyncssh.Error, OSError, TimeoutError) as exc:
        result.add("session", False, f"lost the connection: {exc}")
    return result
