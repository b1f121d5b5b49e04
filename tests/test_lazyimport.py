"""core/lazyimport.py: a deferred module costs nothing until a name of it is used,
then is the real module for everyone (the TUI defers asyncssh until after its first
frame). Each case runs in a fresh interpreter, on a real module written to disk."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

PROBE = """
import sys
from nomadlab.core import lazyimport
print(lazyimport.defer("heavy"), lazyimport.is_loaded("heavy"))
import heavy                      # an import statement does not load it
print("loads" in sys.modules, lazyimport.is_loaded("heavy"))
print(heavy.VALUE, "loads" in sys.modules, lazyimport.is_loaded("heavy"))
print(sys.modules["heavy"].VALUE, heavy.twice(4), sys.modules["heavy"] is not heavy)
import heavy.sub                  # a submodule of the real package
print(heavy.sub.NAME, lazyimport.defer("heavy"))
"""


def run(tmp_path: Path, code: str) -> list[str]:
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def package(tmp_path: Path) -> None:
    pkg = tmp_path / "heavy"
    pkg.mkdir()
    (pkg / "__init__.py").write_text(
        "import loads  # a side effect that says the real module ran\n"
        "VALUE = 42\n"
        "def twice(x):\n    return 2 * x\n")
    (pkg / "sub.py").write_text("NAME = 'sub'\n")
    (tmp_path / "loads.py").write_text("")


def test_deferred_until_a_name_is_used(tmp_path: Path) -> None:
    package(tmp_path)
    assert run(tmp_path, PROBE) == [
        "True False",
        "False False",  # imported, not loaded
        "42 True True",  # the first name used runs the real import
        "42 8 True",  # sys.modules holds the real module; the stand-in has its names
        "sub False",  # submodules import as usual; deferring again does nothing
    ]


def test_load_on_purpose_and_missing_modules(tmp_path: Path) -> None:
    package(tmp_path)
    code = ("import sys\nfrom nomadlab.core import lazyimport\n"
            "print(lazyimport.defer('heavy'), lazyimport.defer('no_such_module_here'))\n"
            "lazyimport.load('heavy')\n"
            "print('loads' in sys.modules, lazyimport.is_loaded('heavy'))\n"
            "import heavy\nprint(heavy.VALUE)\n")
    assert run(tmp_path, code) == ["True False", "True True", "42"]


def test_the_tui_modules_leave_asyncssh_deferred(tmp_path: Path) -> None:
    """What the TUI imports before its first frame uses no asyncssh name at import
    time (a class deriving from an asyncssh class is made on first use instead), so
    the ~0.1 s of importing it comes after the first frame (benchmarks/tui_start.py)."""
    code = ("import sys\nfrom nomadlab.core import lazyimport\n"
            "lazyimport.defer('asyncssh')\n"
            "import nomadlab.cli.tui, nomadlab.ui.app\n"
            "print(lazyimport.is_loaded('asyncssh'), 'cryptography' in sys.modules)\n"
            "from nomadlab.remote import hostkeys, tail_links\n"
            "lazyimport.load('asyncssh')\n"
            "import asyncssh\n"
            "print(isinstance(hostkeys.host_key_client(), asyncssh.SSHClient),"
            " isinstance(tail_links.tail_channel(1), asyncssh.SSHClientSession))\n")
    assert run(tmp_path, code) == ["False False", "True True"]
