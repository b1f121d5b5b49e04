"""core/ never imports Textual: every core module (and the CLI modules that only use
core) imports in a process where any import of textual fails."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import nomadlab.core

CORE = sorted(f"nomadlab.core.{m.name}" for m in pkgutil.iter_modules(nomadlab.core.__path__))
CLI_WITHOUT_UI = ["nomadlab.cli.board"]


def test_core_never_imports_textual() -> None:
    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name == 'textual' or name.startswith('textual.'):\n"
            "            raise ImportError('textual is blocked')\n"
            "sys.meta_path.insert(0, Block())\n"
            f"import {', '.join(CORE + CLI_WITHOUT_UI)}\n"
            "print('ok')\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
    assert {"nomadlab.core.board", "nomadlab.core.focus", "nomadlab.core.papers"} <= set(CORE)
