"""Opening a paper's page and editing long text in the user's editor."""

from __future__ import annotations

from collections.abc import Mapping

from nomadlab.core import editor as _editor


def open_method(environ: Mapping[str, str], platform: str) -> str:
    """How to open a paper's page: "browser" on a desktop (a display, or macOS), "copy"
    (show the URL and copy it with OSC 52) over SSH or on a headless box, where a
    browser would be a text one taking over the terminal, or none at all."""
    if environ.get("SSH_CONNECTION") or environ.get("SSH_TTY"):
        return "copy"
    if platform == "darwin" or environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"):
        return "browser"
    return "copy"


# The editor for long text is shared with the board: nomadlab.core.editor.
editor_command = _editor.editor_command
edit_in_editor = _editor.edit_text
