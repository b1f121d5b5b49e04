"""The agent's wire format -> model objects. Pure: bytes in, events out.

Everything here is untrusted input from a host. A line that is not what we expect
(not JSON, wrong types, absurd numbers, too long) is counted and skipped; it never
raises, never ends the connection, and never reaches the screen as markup.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from typing import Any

from nomadlab.core.model import (
    AgentInfo,
    Container,
    GpuProcess,
    GpuSample,
    GpuSource,
    HostSample,
    ProcessInfo,
)
from nomadlab.hostside.agent.wire import NO_PYTHON_MARKER
from nomadlab.remote.health_wire import decode_health, encode_health

MAX_LINE = 1 << 20  # a sample of 8 GPUs is about 1 kB; anything near this is garbage
MAX_GPUS = 256
MAX_PROCS = 512
MAX_TEXT = 512


@dataclass(slots=True, frozen=True)
class NoPython:
    """The host has no usable python3: fall back to nvidia-smi over the shell."""

    detail: str


@dataclass(slots=True, frozen=True)
class AgentError:
    message: str


@dataclass(slots=True, frozen=True)
class AgentReply:
    """The agent's answer to a command sent on its stdin (``proc``, ``signal``)."""

    id: int
    data: dict[str, Any]


Event = AgentInfo | HostSample | NoPython | AgentError | AgentReply


def _number(value: Any, low: float = -1e12, high: float = 1e12) -> float | None:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    if not math.isfinite(number) or number < low or number > high:
        return None
    return number


def _text(value: Any, default: str = "") -> str:
    if not isinstance(value, str):
        return default
    return value[:MAX_TEXT]


class Garbage(ValueError):
    pass


@dataclass(slots=True)
class AgentDecoder:
    """Feeds on raw channel bytes; yields events; counts what it could not use."""

    host: str
    garbage: int = 0
    info: AgentInfo | None = None
    inventory: dict[int, tuple[str, str]] = field(default_factory=dict)
    _buffer: bytearray = field(default_factory=bytearray)
    _skipping: bool = False  # inside an over-long line
    # pid -> (start, parents, container): sent when a process is first seen, kept here
    _proc_static: dict[int, ProcessInfo] = field(default_factory=dict)

    def feed(self, data: bytes, received: float) -> list[Event]:
        events: list[Event] = []
        self._buffer.extend(data)
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > MAX_LINE:
                    self._buffer.clear()
                    if not self._skipping:
                        self.garbage += 1
                    self._skipping = True
                break
            line = bytes(self._buffer[:end])
            del self._buffer[: end + 1]
            if self._skipping:
                self._skipping = False
                continue
            event = self.line(line, received)
            if event is not None:
                events.append(event)
        return events

    def line(self, raw: bytes, received: float) -> Event | None:
        text = raw.decode("utf-8", "replace").strip()
        if not text:
            return None
        if text.startswith(NO_PYTHON_MARKER):
            return NoPython(text[len(NO_PYTHON_MARKER):].strip() or "python3 not found")
        try:
            message = json.loads(text)
            if not isinstance(message, dict):
                raise Garbage("not an object")
            kind = message.get("type")
            if kind == "hello":
                return self.hello_event(message)
            if kind == "sample":
                return self.sample_event(message, received)
            if kind == "error":
                return AgentError(_text(message.get("error"), "agent error"))
            if kind == "reply":
                return reply_event(message)
            raise Garbage(f"unknown type {kind!r}")
        except (ValueError, TypeError, KeyError, AttributeError):
            self.garbage += 1
            return None

    def _process_info(self, pid: int, details: dict[str, Any]) -> ProcessInfo | None:
        """A process's details; parents and container from an earlier sample if not sent."""
        info = process_info(details.get(str(pid)))
        if info is None:
            return None
        raw = details.get(str(pid))
        if isinstance(raw, dict) and "chain" in raw:
            self._proc_static[pid] = info
            return info
        known = self._proc_static.get(pid)
        if known is not None and known.start == info.start:
            return replace(info, ppid=known.ppid, parents=known.parents,
                           container=known.container)
        return info

    def hello_event(self, message: dict[str, Any]) -> AgentInfo:
        gpus = message.get("gpus")
        if not isinstance(gpus, list):
            raise Garbage("gpus")
        self.inventory = {}
        for gpu in gpus[:MAX_GPUS]:
            index = _number(gpu.get("i"), 0, 10_000) if isinstance(gpu, dict) else None
            if index is None:
                raise Garbage("gpu index")
            self.inventory[int(index)] = (_text(gpu.get("name"), f"GPU {int(index)}"),
                                          _text(gpu.get("uuid")))
        source_text = _text(message.get("source"), "none")
        try:
            source = GpuSource(source_text)
        except ValueError:
            raise Garbage("source") from None
        version = _number(message.get("agent"), 0, 1_000_000)
        self.info = AgentInfo(
            hostname=_text(message.get("hostname"), "?"),
            agent_version=int(version) if version is not None else 0,
            python=_text(message.get("python")) or None,
            source=source,
            driver=_text(message.get("driver")) or None,
            gpu_count=len(self.inventory),
            reason=_text(message.get("reason")) or None,
        )
        return self.info

    def sample_event(self, message: dict[str, Any], received: float) -> HostSample:
        gpus_raw = message.get("gpus")
        if not isinstance(gpus_raw, list) or len(gpus_raw) > MAX_GPUS:
            raise Garbage("gpus")
        gpus: list[GpuSample] = []
        for raw in gpus_raw:
            if not isinstance(raw, dict):
                raise Garbage("gpu")
            index_value = _number(raw.get("i"), 0, 10_000)
            if index_value is None:
                raise Garbage("gpu index")
            index = int(index_value)
            name, uuid = self.inventory.get(index, (f"GPU {index}", ""))
            procs: list[GpuProcess] = []
            pinfo = message.get("pinfo")
            details = pinfo if isinstance(pinfo, dict) else {}
            procs_raw = raw.get("procs") or []
            if not isinstance(procs_raw, list):
                raise Garbage("procs")
            for proc in procs_raw[:MAX_PROCS]:
                if not isinstance(proc, list) or len(proc) != 4:
                    raise Garbage("proc")
                pid = _number(proc[0], 0, 2**32)
                if pid is None:
                    raise Garbage("pid")
                procs.append(GpuProcess(int(pid), _text(proc[1], "?"), _text(proc[2]),
                                        _number(proc[3], 0, 1e9),
                                        self._process_info(int(pid), details)))
            gpus.append(GpuSample(
                index=index,
                name=name,
                uuid=uuid,
                utilization=_number(raw.get("util"), 0, 100),
                memory_used_mib=_number(raw.get("mu"), 0, 1e9),
                memory_total_mib=_number(raw.get("mt"), 0, 1e9),
                temperature_c=_number(raw.get("temp"), -100, 300),
                power_w=_number(raw.get("pw"), 0, 1e6),
                power_limit_w=_number(raw.get("pl"), 0, 1e6),
                processes=procs,
                health=decode_health(raw.get("h")),
            ))
        for gone in [pid for pid in self._proc_static if str(pid) not in details]:
            del self._proc_static[gone]
        stamp = _number(message.get("t"), 0, 1e11)
        return HostSample(
            host=self.host,
            time=stamp if stamp is not None else received,
            cpu_percent=_number(message.get("cpu"), 0, 100),
            memory_used_mib=_number(message.get("ram_used"), 0, 1e12),
            memory_total_mib=_number(message.get("ram_total"), 0, 1e12),
            load1=_number(message.get("load1"), 0, 1e6),
            gpus=gpus,
            received=received,
        )


MAX_CHAIN = 32


def process_info(raw: Any) -> ProcessInfo | None:
    """One ``pinfo`` entry -> ProcessInfo; None for anything malformed."""
    if not isinstance(raw, dict):
        return None
    start = _number(raw.get("start"), 0, 2**63)
    ppid = _number(raw.get("ppid", 0), 0, 2**32)  # sent with the parents only
    if start is None or ppid is None:
        return None
    parents: list[tuple[int, str]] = []
    chain = raw.get("chain")
    for link in chain[:MAX_CHAIN] if isinstance(chain, list) else []:
        if isinstance(link, list) and len(link) == 2:
            pid = _number(link[0], 0, 2**32)
            if pid is not None:
                parents.append((int(pid), _text(link[1], "?")[:64]))
    container = None
    ctr = raw.get("ctr")
    if isinstance(ctr, dict) and ctr.get("kind") in ("docker", "pod") and _text(ctr.get("id")):
        name = _text(ctr.get("name")) or None
        container = Container(str(ctr["kind"]), _text(ctr.get("id"))[:64],
                              name[:128] if name else None)
    return ProcessInfo(
        start=int(start),
        cpu_percent=_number(raw.get("cpu"), 0, 1e6),
        rss_mib=_number(raw.get("rss"), 0, 1e9),
        age_s=_number(raw.get("age"), 0, 1e10),
        ppid=int(ppid),
        parents=tuple(parents),
        container=container,
    )


def reply_event(message: dict[str, Any]) -> AgentReply:
    ident = _number(message.get("id"), 0, 2**53)
    if ident is None:
        raise Garbage("reply id")
    data = {k: v for k, v in message.items() if k not in ("type", "id")}
    return AgentReply(int(ident), data)


def wire_sample(sample: HostSample) -> dict[str, Any]:
    """A model sample back to the agent's wire dict (demo server, benchmarks)."""
    return {
        "type": "sample",
        "t": sample.time,
        "cpu": sample.cpu_percent,
        "ram_used": sample.memory_used_mib,
        "ram_total": sample.memory_total_mib,
        "load1": sample.load1,
        "gpus": [
            {
                "i": g.index, "util": g.utilization, "mu": g.memory_used_mib,
                "mt": g.memory_total_mib, "temp": g.temperature_c, "pw": g.power_w,
                "pl": g.power_limit_w,
                "procs": [[p.pid, p.user, p.command, p.memory_mib] for p in g.processes],
                **({"h": encode_health(g.health)} if g.health is not None else {}),
            }
            for g in sample.gpus
        ],
    }


def dumps(message: dict[str, Any]) -> bytes:
    return (json.dumps(message, separators=(",", ":")) + "\n").encode("ascii")
