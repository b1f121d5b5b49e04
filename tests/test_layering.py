"""The layers, enforced by reading every module's imports (no module is run):

- core/ imports neither remote/, nor notify, nor the UI, nor the CLI, nor Textual;
- remote/ never imports ui/, the CLI, nor Textual;
- ui/ holds no SQL (no SQL text, no sqlite3 connections, no cursor calls);
- hostside/ (programs run ON the hosts, which have no nomadlab) imports only the
  standard library, and each program only its own modules.

Imports are read with ``ast`` from every ``.py`` file under ``nomadlab/``: plain and
``from`` imports (relative ones resolved), imports inside functions and under
``TYPE_CHECKING`` (a type-only import still couples the layers), and the dynamic ones
written as strings (``"nomadlab.x.y:Name"`` handed to ``importlib.import_module``).
Each violation is listed as ``module:line imports name (rule)``.
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import nomadlab

PACKAGE = Path(nomadlab.__file__).parent


@dataclass(frozen=True)
class Contract:
    """Modules under ``source`` never import a name under one of ``forbidden``."""

    source: str
    forbidden: tuple[str, ...]
    why: str


CONTRACTS = (
    Contract("nomadlab.core",
             ("nomadlab.remote", "nomadlab.notify", "nomadlab.ui", "nomadlab.cli", "textual"),
             "core imports neither remote, nor notify, nor the UI/CLI, nor Textual"),
    Contract("nomadlab.remote", ("nomadlab.ui", "nomadlab.cli", "textual"),
             "remote never imports the UI (nor the CLI)"),
)

# SQL in the UI: statement text, a connection, or a cursor call.
SQL_TEXT = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|CREATE|DROP|ALTER|PRAGMA|REPLACE"
                      r"|WITH\s+\w+\s+AS)\b")
SQL_CALLS = {"execute", "executemany", "executescript", "cursor"}
DYNAMIC = re.compile(r"^(nomadlab(?:\.\w+)+|textual(?:\.\w+)*)(?::\w+)?$")


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def under(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def imported_names(module: str, path: Path, tree: ast.Module) -> list[tuple[int, str]]:
    """(line, dotted name) for every import in the module, dynamic ones included."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            found += [(node.lineno, f"{target}.{alias.name}") for alias in node.names
                      if alias.name != "*"]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            match = DYNAMIC.match(node.value)
            if match:
                found.append((node.lineno, match.group(1)))
    return found


def sql_in(tree: ast.Module) -> list[tuple[int, str]]:
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            if SQL_TEXT.match(node.value):
                found.append((node.lineno, f"SQL text {node.value.strip()[:40]!r}"))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and (node.func.attr in SQL_CALLS
                   or (node.func.attr == "connect" and _is_sqlite3(node.func.value)))):
            found.append((node.lineno, f"a database call .{node.func.attr}()"))
    return found


def _is_sqlite3(node: ast.expr) -> bool:
    return isinstance(node, ast.Name) and node.id == "sqlite3"


def violations(package: Path = PACKAGE) -> list[str]:
    out: list[str] = []
    for path in sorted(package.rglob("*.py")):
        module = module_name(path, package)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for contract in CONTRACTS:
            if not under(module, contract.source):
                continue
            for line, name in imported_names(module, path, tree):
                if any(under(name, bad) for bad in contract.forbidden):
                    out.append(f"{module}:{line} imports {name} ({contract.why})")
        if under(module, "nomadlab.ui"):
            out += [f"{module}:{line} holds {what} (ui holds no SQL)"
                    for line, what in sql_in(tree)]
    return sorted(set(out))


HOSTSIDE = "nomadlab.hostside"
# Optional on a host, imported only inside a ``try``: the NVML binding (the agent
# normally gets its source in the bundle; one installed on the host is the fallback).
OPTIONAL_ON_HOST = {"pynvml"}


def _in_try(tree: ast.Module) -> set[int]:
    """ids of the import nodes inside the body of a ``try``."""
    return {id(inner) for node in ast.walk(tree) if isinstance(node, ast.Try)
            for stmt in node.body for inner in ast.walk(stmt)}


def hostside_violations(package: Path = PACKAGE) -> list[str]:
    """Imports in hostside/ of anything but the standard library and the program's own
    modules (a program is ``nomadlab.hostside.<name>``; it is shipped alone)."""
    out: list[str] = []
    for path in sorted((package / "hostside").rglob("*.py")):
        module = module_name(path, package)
        program = ".".join(module.split(".")[:3])
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        guarded = _in_try(tree)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [(alias.name, False) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [(node.module or "", bool(node.level))]
            else:
                continue
            for name, relative in names:
                if relative and isinstance(node, ast.ImportFrom):
                    base = module.split(".") if path.name == "__init__.py" \
                        else module.split(".")[:-1]
                    target = ".".join(base[:len(base) - (node.level - 1)]
                                      + ([name] if name else []))
                    if not under(target, program) or program == HOSTSIDE:
                        out.append(f"{module}:{node.lineno} imports relatively {target} "
                                   "(a host program imports only its own modules)")
                elif name.split(".")[0] not in sys.stdlib_module_names and not (
                        name in OPTIONAL_ON_HOST and id(node) in guarded):
                    out.append(f"{module}:{node.lineno} imports {name} "
                               "(hostside imports only the standard library)")
    return sorted(set(out))


def test_hostside_imports_only_the_standard_library() -> None:
    found = hostside_violations()
    for line in found:
        print(line)
    assert not found, "host-side imports:\n" + "\n".join(found)
    names = {module_name(p) for p in (PACKAGE / "hostside").rglob("*.py")}
    assert {"nomadlab.hostside.agent.run", "nomadlab.hostside.tailagent.follow"} <= names


def test_the_hostside_check_catches_a_foreign_import(tmp_path: Path) -> None:
    root = tmp_path / "nomadlab"
    for part in ("hostside/agent", "hostside/tailagent"):
        (root / part).mkdir(parents=True)
        (root / part / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "hostside" / "__init__.py").write_text("")
    (root / "hostside" / "agent" / "bad.py").write_text(
        "import json, os.path\n"
        "from . import wire\n"
        "from .wire import encode\n"
        "import pynvml\n"
        "from nomadlab.core import clock\n"
        "from ..tailagent import follow\n"
        "try:\n"
        "    import pynvml\n"
        "except ImportError:\n"
        "    pass\n")
    found = hostside_violations(root)
    assert found == sorted([
        "nomadlab.hostside.agent.bad:4 imports pynvml "
        "(hostside imports only the standard library)",
        "nomadlab.hostside.agent.bad:5 imports nomadlab.core "
        "(hostside imports only the standard library)",
        "nomadlab.hostside.agent.bad:6 imports relatively nomadlab.hostside.tailagent "
        "(a host program imports only its own modules)",
    ])


def test_every_module_keeps_to_its_layer() -> None:
    found = violations()
    for line in found:
        print(line)
    assert not found, "wrong-way imports:\n" + "\n".join(found)
    names = {module_name(p) for p in PACKAGE.rglob("*.py")}
    # the check reads the real tree: these layers exist and were read
    assert {"nomadlab.core.focus", "nomadlab.core.papers", "nomadlab.remote.fleet",
            "nomadlab.ui.app"} <= names


def test_the_check_catches_a_wrong_import(tmp_path: Path) -> None:
    """A tree with one wrong import of each kind is reported, line by line."""
    root = tmp_path / "nomadlab"
    for part in ("core", "remote", "ui"):
        (root / part).mkdir(parents=True)
        (root / part / "__init__.py").write_text("")
    (root / "__init__.py").write_text("")
    (root / "core" / "bad.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "from nomadlab.core import clock\n"
        "from ..remote.papers_api import PaperApi\n"
        "if TYPE_CHECKING:\n"
        "    from nomadlab.notify import AlertHub\n"
        "def later():\n"
        "    import textual.app\n"
        "SERVICES = {'jobs': 'nomadlab.remote.jobs_service:make_service'}\n"
        "from nomadlab.notify.hub import AlertHub\n")
    (root / "remote" / "bad.py").write_text("from nomadlab.ui import render\n")
    (root / "ui" / "bad.py").write_text(
        "def titles(store):\n"
        "    return store.query('SELECT title FROM papers')\n"
        "def raw(db):\n"
        "    db.execute('x')\n")
    found = violations(root)
    for line in found:
        print(line)
    assert found == sorted([
        "nomadlab.core.bad:3 imports nomadlab.remote.papers_api "
        "(core imports neither remote, nor notify, nor the UI/CLI, nor Textual)",
        "nomadlab.core.bad:3 imports nomadlab.remote.papers_api.PaperApi "
        "(core imports neither remote, nor notify, nor the UI/CLI, nor Textual)",
        "nomadlab.core.bad:5 imports nomadlab.notify "
        "(core imports neither remote, nor notify, nor the UI/CLI, nor Textual)",
        "nomadlab.core.bad:5 imports nomadlab.notify.AlertHub "
        "(core imports neither remote, nor notify, nor the UI/CLI, nor Textual)",
        "nomadlab.core.bad:7 imports textual.app "
        "(core imports neither remote, nor notify, nor the UI/CLI, nor Textual)",
        "nomadlab.core.bad:8 imports nomadlab.remote.jobs_service "
        "(core imports neither remote, nor notify, nor the UI/CLI, nor Textual)",
        "nomadlab.core.bad:9 imports nomadlab.notify.hub "
        "(core imports neither remote, nor notify, nor the UI/CLI, nor Textual)",
        "nomadlab.core.bad:9 imports nomadlab.notify.hub.AlertHub "
        "(core imports neither remote, nor notify, nor the UI/CLI, nor Textual)",
        "nomadlab.remote.bad:1 imports nomadlab.ui "
        "(remote never imports the UI (nor the CLI))",
        "nomadlab.remote.bad:1 imports nomadlab.ui.render "
        "(remote never imports the UI (nor the CLI))",
        "nomadlab.ui.bad:2 holds SQL text 'SELECT title FROM papers' (ui holds no SQL)",
        "nomadlab.ui.bad:4 holds a database call .execute() (ui holds no SQL)",
    ])
