"""The feature registry (nomadlab/features.py): every feature is in it once, each part
it declares is what its kind promises, the app and the workspace are built from it,
and no feature is reached through a module or a method named in a string."""

from __future__ import annotations

import argparse
import ast
import re
from pathlib import Path

import pytest
import ui_data
from textual.screen import Screen
from textual.widget import Widget

import nomadlab
from nomadlab.cli import COMMANDS, build_parser
from nomadlab.core.board import BoardService
from nomadlab.core.clock import ManualClock
from nomadlab.core.config import PANE_KINDS
from nomadlab.core.features import BoardActivity, FeatureService, JobsLookup, PaperActivity
from nomadlab.core.focus import FocusService
from nomadlab.core.papers import PaperService
from nomadlab.core.store import MIGRATIONS, Store
from nomadlab.features import (
    APP_COMMANDS,
    BOARD,
    FEATURES,
    FOCUS,
    JOBS,
    PAPERS,
    FeatureContext,
    install_services,
)
from nomadlab.notify.hub import AlertHub
from nomadlab.remote.fleet import Fleet
from nomadlab.remote.jobs_service import JobsService
from nomadlab.remote.tail import Logs
from nomadlab.ui.navigate import Navigator
from nomadlab.ui.services import Services

PACKAGE = Path(nomadlab.__file__).parent


def test_the_registry_lists_every_feature_once() -> None:
    keys = [feature.key for feature in FEATURES]
    assert sorted(keys) == sorted(["fleet", "logs", "alerts", "board", "papers", "focus",
                                   "jobs"])
    assert len({feature.mode_key for feature in FEATURES}) == len(FEATURES)
    assert "0" not in {feature.mode_key for feature in FEATURES}  # home's key


def test_each_command_belongs_to_one_feature_or_to_the_app() -> None:
    owned = [name for feature in FEATURES for name in feature.commands] + list(APP_COMMANDS)
    assert sorted(owned) == sorted(command.name for command in COMMANDS)
    assert len(owned) == len(set(owned))
    # and each one's module adds a parser under that name (the full parser loads them all)
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert set(owned) == set(sub.choices)


def test_each_store_component_belongs_to_one_feature() -> None:
    owned = [name for feature in FEATURES for name in feature.schema.components]
    assert sorted([*owned, "core"]) == sorted(MIGRATIONS)
    assert len(owned) == len(set(owned))
    for feature in FEATURES:
        for component, steps in feature.schema.migrations().items():
            assert steps is MIGRATIONS[component] and steps


def test_the_workspace_panes_are_the_features_panes() -> None:
    from nomadlab.ui.panes import PANES

    assert set(PANES) == set(PANE_KINDS)
    assert {f.key for f in FEATURES if f.pane is not None} == set(PANE_KINDS)
    for key, kind in PANES.items():
        feature = next(f for f in FEATURES if f.key == key)
        assert (kind.title, kind.mode, kind.number) == (feature.title, key, feature.mode_key)


def _context(tmp_path: Path) -> tuple[FeatureContext, Services]:
    cfg = ui_data.config(tmp_path)
    clock = ManualClock(ui_data.START)
    store = Store(cfg.database)
    fleet = Fleet(cfg, store=store, clock=clock)
    logs = Logs(cfg, fleet, clock)
    alerts = AlertHub(cfg, store, clock=clock)
    context = FeatureContext(config=cfg, store=store, clock=clock, fleet=fleet, logs=logs,
                             alerts=alerts)
    services = Services(config=cfg, store=store, fleet=fleet, clock=clock, logs=logs,
                        alerts=alerts, start_fleet=False)
    return context, services


def test_each_service_is_made_into_its_typed_field(tmp_path: Path) -> None:
    context, services = _context(tmp_path)
    assert services.feature_services() == []
    made = install_services(context, services)
    assert isinstance(services.board, BoardService)
    assert isinstance(services.papers, PaperService)
    assert isinstance(services.focus, FocusService)
    assert isinstance(services.jobs, JobsService)
    assert made == services.feature_services() == [services.board, services.papers,
                                                   services.focus, services.jobs]
    assert all(isinstance(service, FeatureService) for service in made)
    # what the features ask of one another
    assert isinstance(services.board, BoardActivity)
    assert isinstance(services.papers, PaperActivity)
    assert isinstance(services.jobs, JobsLookup)
    assert services.board.jobs is services.jobs
    # each feature's part makes a fresh service into its own field
    for feature in (BOARD, PAPERS, FOCUS, JOBS):
        assert feature.service is not None
        before = services.feature_services()
        fresh = feature.service.install(context, services)
        after = services.feature_services()
        assert fresh in after and fresh not in before
        assert [s for s in after if s is not fresh] == [s for s in before
                                                        if type(s) is not type(fresh)]


def test_the_registry_does_not_load_the_ui_or_ssh() -> None:
    import subprocess
    import sys

    code = ("import sys, nomadlab.features\n"
            "print(' '.join(m for m in sys.modules if m.startswith(('textual', 'asyncssh',"
            " 'nomadlab.ui', 'nomadlab.remote', 'nomadlab.notify'))))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=True)
    assert result.stdout.strip() == ""


async def test_each_screen_and_pane_is_built_by_the_app(tmp_path: Path) -> None:
    from nomadlab.ui.app import MODE_KEYS, MODE_TITLES, MODES

    app, _fleet, _clock = ui_data.build(tmp_path)
    modes = ["workspace", *(f.key for f in FEATURES)]
    assert list(MODES) == modes
    assert MODE_TITLES["alerts"] == "Alerts" and MODE_KEYS["alerts"] == "!"
    assert isinstance(app, Navigator)
    async with app.run_test(size=(160, 48)) as pilot:
        for feature in FEATURES:
            screen = feature.screen(app.services)
            assert isinstance(screen, Screen)
            if feature.pane is not None:
                assert isinstance(feature.pane(app.services), Widget)
            await app.switch_mode(feature.key)
            await pilot.pause()
            assert app.current_mode == feature.key
            assert type(app.screen) is type(screen)


# --------------------------------------------------------------------------- no strings

# Attribute access by name that stays, and why: objects that are not ours (argparse,
# os, pynvml on the GPU host, keyring, urllib, bibtexparser, Textual's internals), and
# a dataclass's own fields walked in a loop. Keyed by (object, name) as written, not
# by file, so that moving code keeps it valid.
ALLOWED_BY_NAME: dict[tuple[str, str], str] = {
    **{("args", name): "argparse: an option only some subcommands define"
       for name in ("'stub_of'", "'log'", "'config'", "'json'")},
    **{("os", name): "a flag some platforms lack" for name in ("'O_CLOEXEC'", "'O_NONBLOCK'")},
    ("self.nv", "name"): "pynvml functions by name on the GPU host (versions differ)",
    ("self.nv", "getter"): "pynvml functions by name on the GPU host (versions differ)",
    ("self.nv", "'nvmlSystemGetProcessName'"): "pynvml: absent in older versions",
    ("fn", "'__name__'"): "pynvml: the function's name for its unsupported-set",
    ("data", "'eventType'"): "pynvml event data",
    ("data", "'time'"): "pynvml event data",
    ("p", "'usedGpuMemory'"): "pynvml process info",
    ("backend", "'priority'"): "keyring backends",
    ("reason", "'strerror'"): "urllib's URLError reason: an OSError or a string",
    ("block", "'start_line'"): "bibtexparser's failed blocks",
    ("block", "'error'"): "bibtexparser's failed blocks",
    ("host", "name"): "ssh.py: a slotted host copied field by field",
    ("textual", "'__version__'"): "Textual's version, for its render patch",
    ("ChopsUpdate.render_segments", "'_nomadlab'"): "the render patch's own mark",
    ("widget._on_key", "'_nomadlab'"): "the render patch's own mark",
    ("owner", "name"): "the render patch installs and removes its methods",
    **{(obj, name): "a dataclass's fields, walked by dataclasses.fields or a table"
       for obj, name in (("meta", "f.name"), ("meta", "name"), ("paper", "name"),
                         ("other", "name"), ("keep", "name"), ("out", "key"),
                         ("retro", "key"), ("self.retro", "key"), ("report.retro", "key"),
                         ("old", "key"))},
    # Still duck-typed: the sources work in remote/fleet.py owns this listener hook.
    ("listener", "'fleet_source'"): "an optional fleet listener hook (remote/fleet.py)",
}
DYNAMIC_IMPORTS = {"import_module", "__import__", "find_loader", "load_module"}
# The CLI's lazy command table: `nomadlab --version` imports no command module, and a
# command imports only its own (tests/test_cli_start.py), so cli/__init__.py names each
# command's module and register function in a table.
LAZY_TABLE = PACKAGE / "cli" / "__init__.py"
# The TUI's deferred import of a third-party module (asyncssh after the first frame,
# benchmarks/tui_start.py): a module stand-in that imports the real one on first use.
LAZY_IMPORT = PACKAGE / "core" / "lazyimport.py"
TARGET = re.compile(r"^nomadlab(\.\w+)+:\w+$")  # "module:function", a call named in a string


def string_dispatch(package: Path = PACKAGE) -> list[str]:
    found: list[str] = []
    for path in sorted(package.rglob("*.py")):
        where = path.relative_to(package.parent)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        lazy_table = path == LAZY_TABLE
        lazy_import = path == LAZY_IMPORT
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom) and not (lazy_table or lazy_import):
                names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                         else [node.module or ""])
                if any(n == "importlib" for n in names) or (
                        isinstance(node, ast.ImportFrom) and node.module == "importlib"):
                    found.append(f"{where}:{node.lineno} imports importlib")
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                if TARGET.match(node.value):
                    found.append(f"{where}:{node.lineno} names {node.value!r}")
            elif isinstance(node, ast.Call):
                func = node.func
                name = (func.id if isinstance(func, ast.Name)
                        else func.attr if isinstance(func, ast.Attribute) else "")
                if name in DYNAMIC_IMPORTS and not (lazy_table or lazy_import):
                    found.append(f"{where}:{node.lineno} calls {name}")
                elif name in ("getattr", "hasattr", "setattr", "delattr") and len(node.args) >= 2:
                    key = (ast.unparse(node.args[0]), ast.unparse(node.args[1]))
                    if key not in ALLOWED_BY_NAME and not (
                            lazy_table and key == ("module", "command.register")) and not (
                            lazy_import and key == ("_load(self)", "attr")):
                        found.append(f"{where}:{node.lineno} {name}({key[0]}, {key[1]})")
    return found


def test_no_feature_is_reached_by_a_name_in_a_string() -> None:
    found = string_dispatch()
    assert not found, "dynamic imports or attribute access by name:\n" + "\n".join(found)


@pytest.mark.parametrize("source", [
    "import importlib\nm = importlib.import_module('nomadlab.core.board')\n",
    "SERVICES = {'board': 'nomadlab.core.board:make_service'}\n",
    "def start(service):\n    getattr(service, 'startup')()\n",
    "def link(services, key, value):\n    setattr(services, key, value)\n",
])
def test_the_check_catches_each_kind(tmp_path: Path, source: str) -> None:
    root = tmp_path / "nomadlab"
    (root / "ui").mkdir(parents=True)
    (root / "ui" / "wiring.py").write_text(source)
    assert string_dispatch(root)
