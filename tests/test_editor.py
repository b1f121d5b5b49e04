"""The one editor helper: which editor, and a real run of one on a private file."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from nomadlab.core.editor import EditorExited, edit_text, editor_command


def test_editor_command_order() -> None:
    assert editor_command({"EDITOR": "nano -R"}) == ["nano", "-R"]
    assert editor_command({"EDITOR": "nano", "VISUAL": "vim"}) == ["vim"]
    assert editor_command({"EDITOR": "nano"}, "code --wait") == ["code", "--wait"]
    assert editor_command({"VISUAL": "  ", "EDITOR": "'unclosed"}) == ["vi"]
    assert editor_command({}) == ["vi"]


def test_edit_text_runs_the_editor_on_a_private_file(tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    script = tmp_path / "editor.py"
    script.write_text(
        "import os, sys\n"
        "p = sys.argv[-1]\n"
        f"open({str(seen)!r}, 'w').write(p + ' ' + oct(os.stat(p).st_mode & 0o777))\n"
        "open(p, 'a').write('more\\n')\n")
    command = shlex.split(f"{sys.executable} {script}")
    assert edit_text("notes\n", command, suffix=".txt") == "notes\nmore\n"
    path, mode = seen.read_text().split()
    assert path.endswith(".txt") and mode == "0o600"
    assert not Path(path).exists()


def test_a_failing_editor_changes_nothing(tmp_path: Path) -> None:
    with pytest.raises(EditorExited, match="exited with status 3"):
        edit_text("notes\n", [sys.executable, "-c", "raise SystemExit(3)"])
    with pytest.raises(OSError):
        edit_text("notes\n", [str(tmp_path / "no-such-editor")])
