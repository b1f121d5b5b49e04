"""Opening a paper's page and editing long text in the user's editor."""

from __future__ import annotations

import contextlib
import os
import shlex
import subprocess
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path


def open_method(environ: Mapping[str, str], platform: str) -> str:
    """How to open a paper's page: "browser" on a desktop (a display, or macOS), "copy"
    (show the URL and copy it with OSC 52) over SSH or on a headless box, where a
    browser would be a text one taking over the terminal, or none at all."""
    if environ.get("SSH_CONNECTION") or environ.get("SSH_TTY"):
        return "copy"
    if platform == "darwin" or environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"):
        return "browser"
    return "copy"


def editor_command(environ: Mapping[str, str], configured: str | None = None) -> list[str]:
    """The editor for long text: the configured one, $VISUAL, $EDITOR, then vi."""
    for value in (configured, environ.get("VISUAL"), environ.get("EDITOR")):
        if value and value.strip():
            try:
                parts = shlex.split(value)
            except ValueError:
                continue
            if parts:
                return parts
    return ["vi"]


def edit_in_editor(text: str, command: Sequence[str], *,
                   run: Callable[[list[str]], object] | None = None) -> str:
    """Let the user edit ``text`` in ``command`` (a terminal editor; the caller has
    given it the terminal) through a private temporary file; the text it left."""
    runner = run or (lambda argv: subprocess.run(argv, check=False))
    fd, name = tempfile.mkstemp(prefix="nomadlab-notes-", suffix=".md")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        runner([*command, name])
        return Path(name).read_text(encoding="utf-8", errors="replace")
    finally:
        with contextlib.suppress(OSError):
            os.unlink(name)
