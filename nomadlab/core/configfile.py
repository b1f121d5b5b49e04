"""Changing the config file without losing the user's comments.

``hosts add`` appends a ``[[hosts]]`` block (written by tomli_w, so quoting is
right); ``hosts remove`` cuts that host's block out of the text. Either way the
result is parsed again and must equal the intended data before it replaces the
file: temp file + fsync + rename, the previous version kept as ``config.toml.bak``.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import tomllib
from dataclasses import asdict
from pathlib import Path
from typing import Any

import tomli_w

from nomadlab.core.config import ConfigError, HostConfig, load_config_text

_HEADER = re.compile(r"^\s*\[")
_HOSTS_HEADER = re.compile(r"^\s*\[\[\s*hosts\s*\]\]\s*(#.*)?$")


def atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step; keep the old file as ``.bak``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = 0o600
    if path.exists():
        mode = path.stat().st_mode & 0o777
        shutil.copy2(path, path.with_name(path.name + ".bak"))
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def host_table(host: HostConfig) -> dict[str, Any]:
    """The TOML table for a host: only what differs from the defaults."""
    defaults = asdict(HostConfig(name="", hostname=""))
    data: dict[str, Any] = {"name": host.name, "hostname": host.hostname}
    for key, value in asdict(host).items():
        if key in data or value == defaults[key] or value is None:
            continue
        data[key] = value
    return data


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""


def add_host(path: Path, host: HostConfig) -> None:
    text = _read(path)
    config = load_config_text(text, path)  # the current file must be valid first
    if config.host(host.name) is not None:
        raise ConfigError(path, [f"a host named {host.name!r} already exists"])
    block = tomli_w.dumps({"hosts": [host_table(host)]})
    new_text = text + ("" if not text or text.endswith("\n") else "\n") + ("\n" if text else "")
    new_text += block
    before = tomllib.loads(text) if text else {}
    after = tomllib.loads(new_text)
    expected = dict(before)
    expected["hosts"] = [*before.get("hosts", []), host_table(host)]
    if after != expected:
        raise ConfigError(path, ["could not add the host without changing other settings; "
                                 "edit the file by hand"])
    load_config_text(new_text, path)  # validates the new host too
    atomic_write(path, new_text)


def remove_host(path: Path, name: str) -> None:
    text = _read(path)
    before = tomllib.loads(text) if text else {}
    hosts = before.get("hosts", [])
    index = next((i for i, h in enumerate(hosts) if h.get("name") == name), None)
    if index is None:
        known = ", ".join(h.get("name", "?") for h in hosts) or "none"
        raise ConfigError(path, [f"no host named {name!r} (hosts: {known})"])
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if _HOSTS_HEADER.match(line)]
    new_text: str | None = None
    if len(starts) == len(hosts):
        start = starts[index]
        end = start + 1
        while end < len(lines) and not _HEADER.match(lines[end]):
            end += 1
        # Comments directly above the block belong to it.
        while start > 0 and lines[start - 1].lstrip().startswith("#"):
            start -= 1
        candidate = "".join(lines[:start] + lines[end:])
        expected = dict(before)
        expected["hosts"] = [h for i, h in enumerate(hosts) if i != index]
        if not expected["hosts"]:
            del expected["hosts"]
        try:
            if tomllib.loads(candidate) == expected:
                new_text = candidate
        except tomllib.TOMLDecodeError:
            new_text = None
    if new_text is None:  # inline arrays or odd layouts: rewrite (comments are lost)
        data = dict(before)
        data["hosts"] = [h for i, h in enumerate(hosts) if i != index]
        if not data["hosts"]:
            del data["hosts"]
        new_text = tomli_w.dumps(data)
    load_config_text(new_text, path)
    atomic_write(path, new_text)
