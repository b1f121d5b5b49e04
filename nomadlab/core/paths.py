"""Where nomadlab keeps things: XDG on Linux (and, for the config, everywhere)."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs


def config_dir() -> Path:
    """$XDG_CONFIG_HOME/nomadlab, ~/.config/nomadlab when unset (also on macOS)."""
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "nomadlab"


def data_dir() -> Path:
    """The database lives here: $XDG_DATA_HOME/nomadlab on Linux."""
    return Path(platformdirs.user_data_dir("nomadlab", appauthor=False))


def expand(path: str) -> Path:
    return Path(os.path.expandvars(os.path.expanduser(path)))
