"""Hand the terminal to the user's editor: the app suspends, the editor runs, the app
comes back. The one place the TUI does this (board card fields, paper notes)."""

from __future__ import annotations

import os
from typing import Any

from textual.app import App, SuspendNotSupported

from nomadlab.core.editor import EditorExited, edit_text, editor_command
from nomadlab.ui import render


def run_editor(app: App[Any], text: str, configured: str | None, *,
               suffix: str = ".md") -> str | None:
    """``text`` edited in ``[board] editor`` / $VISUAL / $EDITOR / vi, or None when
    nothing changed because the editor failed or could not run (the user is told).

    Raises SuspendNotSupported where the terminal cannot be handed over, for the caller
    to offer its in-app text field instead. A headless app (tests) has no terminal to
    hand over: the editor just runs."""
    command = editor_command(os.environ, configured)
    try:
        if app.is_headless:
            return edit_text(text, command, suffix=suffix)
        with app.suspend():
            return edit_text(text, command, suffix=suffix)
    except EditorExited as exc:
        app.notify(render.clean(str(exc)), severity="warning", markup=False)
    except (OSError, ValueError) as exc:
        app.notify(f"Cannot run the editor {render.clean(' '.join(command))}: "
                   f"{render.clean(str(exc))}",
                   severity="error", markup=False, timeout=6)
    return None


__all__ = ["SuspendNotSupported", "run_editor"]
