"""How the agent gets onto a host: one command line, and its source on stdin.

The command is a short ``sh -c`` script: it runs python3 (>= 3.8) with a tiny
bootstrap that reads a length line and then a zlib-compressed JSON bundle (agent
source, the client's nvidia-ml-py source, arguments) from stdin, and execs the agent.
stdin stays open afterwards for heartbeats, so its EOF can end the agent. Without a
usable python3 the script prints a marker line instead, and the client falls back to
streaming nvidia-smi directly (see :mod:`nomadlab.remote.shell`).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import shlex
import zlib
from pathlib import Path

from nomadlab.remote import agent, tailagent

# Runs on the host. Python >= 3.8; the version check prints the same marker as
# "no python3 at all", so the client falls back in both cases.
BOOT = (
    "import sys,zlib,json\n"
    "if sys.version_info<(3,8):\n"
    " sys.stdout.write('" + agent.NO_PYTHON_MARKER + " python too old\\n');sys.exit(0)\n"
    "r=sys.stdin.buffer\n"
    "n=int(r.readline())\n"
    "b=json.loads(zlib.decompress(r.read(n)).decode('utf-8'))\n"
    "g={'__name__':'__nomadlab_remote__','BUNDLE':b}\n"
    "exec(compile(b['agent'],'nomadlab_agent.py','exec'),g)\n"
)

SCRIPT = (
    "if command -v {python} >/dev/null 2>&1; then exec {python} -u -c {boot}; "
    "else echo {marker}; fi"
)


def agent_command(python: str = "python3") -> str:
    """The command line sent in the exec request (through the user's login shell).

    The user's login shell may be fish or csh: everything runs inside ``sh -c``.
    """
    script = SCRIPT.format(
        python=shlex.quote(python),
        boot=shlex.quote(BOOT),
        marker=shlex.quote(agent.NO_PYTHON_MARKER),
    )
    return "exec sh -c " + shlex.quote(script)


@functools.cache
def agent_source() -> str:
    return Path(agent.__file__).read_text(encoding="utf-8")


@functools.cache
def pynvml_source() -> str | None:
    """The installed nvidia-ml-py binding's source, shipped so hosts need no install."""
    try:
        spec = importlib.util.find_spec("pynvml")
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return None
    try:
        return Path(spec.origin).read_text(encoding="utf-8")
    except OSError:
        return None


@functools.cache
def _bundle_bytes(interval: float, once: bool, heartbeat_timeout: float) -> bytes:
    bundle = {
        "agent": agent_source(),
        "pynvml": pynvml_source(),
        "args": {"interval": interval, "once": once, "heartbeat_timeout": heartbeat_timeout},
    }
    body = zlib.compress(json.dumps(bundle).encode("utf-8"), 9)
    return str(len(body)).encode("ascii") + b"\n" + body


def payload(interval: float, *, once: bool = False, heartbeat_timeout: float = 60.0) -> bytes:
    """What is written to the agent's stdin right after the exec request."""
    return _bundle_bytes(float(interval), once, float(heartbeat_timeout))


@functools.cache
def tailagent_source() -> str:
    return Path(tailagent.__file__).read_text(encoding="utf-8")


def tail_payload(args: dict[str, object]) -> bytes:
    """stdin for :func:`agent_command` that runs the log tail agent (tailagent.py).

    The same BOOT execs it: the bundle's 'agent' is the tail agent's source, and
    ``args`` (the path among them: it never appears on a command line) go with it.
    """
    bundle = {"agent": tailagent_source(), "args": args}
    body = zlib.compress(json.dumps(bundle).encode("utf-8"), 6)
    return str(len(body)).encode("ascii") + b"\n" + body
