"""The user's text editor for long text: which one, and a run of it on a private file.

One place for the board's card fields and the papers' notes: ``[board] editor`` in the
config, then $VISUAL, then $EDITOR, then vi. The caller hands the editor the terminal
(the TUI suspends itself around `edit_text`, see nomadlab.ui.editor).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path


class EditorExited(Exception):
    """The editor ended with a non-zero status (vim's :cq): the text is left as it was."""

    def __init__(self, program: str, code: int) -> None:
        super().__init__(f"{program} exited with status {code}; nothing changed")
        self.program = program
        self.code = code


def editor_command(environ: Mapping[str, str], configured: str | None = None) -> list[str]:
    """The editor for long text: the configured one, $VISUAL, $EDITOR, then vi.
    A value that is blank or does not split as a shell command line is skipped."""
    for value in (configured, environ.get("VISUAL"), environ.get("EDITOR")):
        if value and value.strip():
            try:
                parts = shlex.split(value)
            except ValueError:
                continue
            if parts:
                return parts
    return ["vi"]


def edit_text(text: str, command: Sequence[str], *, suffix: str = ".md") -> str:
    """Let the user edit ``text`` in ``command`` through a private temporary file
    (mode 0600, removed afterwards) and return what the editor left there.

    Raises `EditorExited` when the editor fails, OSError when it cannot be run."""
    fd, name = tempfile.mkstemp(prefix="nomadlab-edit-", suffix=suffix)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        code = subprocess.run([*command, name], check=False).returncode
        if code != 0:
            raise EditorExited(command[0] if command else "editor", code)
        return Path(name).read_text(encoding="utf-8", errors="replace")
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)


__all__ = ["EditorExited", "edit_text", "editor_command"]
