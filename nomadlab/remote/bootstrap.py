"""How the agent gets onto a host: one command line, and its source on stdin.

The command is a short ``sh -c`` script: it runs python3 (>= 3.8) with a tiny
bootstrap that reads a length line and then a zlib-compressed JSON bundle (the host
program's modules, the client's nvidia-ml-py source, arguments) from stdin, and execs
the program. A program is a package of :mod:`nomadlab.hostside`: the bootstrap serves
its modules (``bundle["modules"]``, module name -> source) from memory under the
package name ``bundle["package"]`` and execs its ``__main__`` (``bundle["agent"]``) in
that package, so the modules' relative imports resolve on a host without nomadlab.
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
from types import ModuleType

from nomadlab.hostside import agent, tailagent
from nomadlab.hostside.agent.wire import NO_PYTHON_MARKER

# Runs on the host with ``b`` = the bundle (and ``sys``): serves the program's modules
# from memory under the bundle's package name, then execs its ``__main__`` there.
RUN = (
    "m=b.get('modules') or {}\n"
    "import importlib.util as u\n"
    "class F(object):\n"
    " def find_spec(s,q,p=None,t=None):\n"
    "  return u.spec_from_loader(q,s,is_package='.' not in q) if q in m else None\n"
    " def create_module(s,spec):return None\n"
    " def exec_module(s,o):exec(compile(m[o.__name__],o.__name__+'.py','exec'),o.__dict__)\n"
    "sys.meta_path.insert(0,F())\n"
    "g={'__name__':'__nomadlab_remote__','__package__':b.get('package'),'BUNDLE':b}\n"
    "exec(compile(b['agent'],'nomadlab_agent.py','exec'),g)\n"
)

# Runs on the host. Python >= 3.8; the version check prints the same marker as
# "no python3 at all", so the client falls back in both cases.
BOOT = (
    "import sys,zlib,json\n"
    "if sys.version_info<(3,8):\n"
    " sys.stdout.write('" + NO_PYTHON_MARKER + " python too old\\n');sys.exit(0)\n"
    "r=sys.stdin.buffer\n"
    "n=int(r.readline())\n"
    "b=json.loads(zlib.decompress(r.read(n)).decode('utf-8'))\n"
) + RUN

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
        marker=shlex.quote(NO_PYTHON_MARKER),
    )
    return "exec sh -c " + shlex.quote(script)


# The package names the host programs' modules get on a host (no nomadlab there).
AGENT_PACKAGE = "nomadlab_agent"
TAIL_PACKAGE = "nomadlab_tailagent"


def package_modules(package: Path, name: str) -> dict[str, str]:
    """A host program's modules as the bootstrap serves them: ``name[.module]`` -> source.

    Every ``.py`` file of the package but ``__main__`` (that one is what is exec'd).
    """
    modules = {name: (package / "__init__.py").read_text(encoding="utf-8")}
    for path in sorted(package.glob("*.py")):
        if path.stem not in ("__init__", "__main__"):
            modules[f"{name}.{path.stem}"] = path.read_text(encoding="utf-8")
    return modules


def _program(module: ModuleType, name: str) -> dict[str, object]:
    """The bundle's program part: its package name, its modules, and its ``__main__``."""
    package = Path(str(module.__file__)).parent
    return {"package": name, "modules": package_modules(package, name),
            "agent": (package / "__main__.py").read_text(encoding="utf-8")}


@functools.cache
def agent_program() -> dict[str, object]:
    return _program(agent, AGENT_PACKAGE)


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
        **agent_program(),
        "pynvml": pynvml_source(),
        "args": {"interval": interval, "once": once, "heartbeat_timeout": heartbeat_timeout},
    }
    body = zlib.compress(json.dumps(bundle).encode("utf-8"), 9)
    return str(len(body)).encode("ascii") + b"\n" + body


def payload(interval: float, *, once: bool = False, heartbeat_timeout: float = 60.0) -> bytes:
    """What is written to the agent's stdin right after the exec request."""
    return _bundle_bytes(float(interval), once, float(heartbeat_timeout))


@functools.cache
def tailagent_program() -> dict[str, object]:
    return _program(tailagent, TAIL_PACKAGE)


def tailagent_source() -> str:
    """What the bootstrap execs for the tail agent (its ``__main__``)."""
    return str(tailagent_program()["agent"])


def tail_payload(args: dict[str, object]) -> bytes:
    """stdin for :func:`agent_command` that runs the log tail agent (hostside.tailagent).

    The same BOOT execs it: the bundle's program is the tail agent's package, and
    ``args`` (the path among them: it never appears on a command line) go with it.
    """
    bundle = {**tailagent_program(), "args": args}
    body = zlib.compress(json.dumps(bundle).encode("utf-8"), 6)
    return str(len(body)).encode("ascii") + b"\n" + body
