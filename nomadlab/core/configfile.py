"""Changing the config file without losing the user's comments.

``hosts add`` appends a ``[[hosts]]`` block (written by tomli_w, so quoting is
right); ``hosts remove`` cuts that host's block out of the text. Either way the
result is parsed again and must equal the intended data before it replaces the
file: temp file + fsync + rename, the previous version kept as ``config.toml.bak``.

Read-modify-write runs under an exclusive lock (``flock`` on the config's
directory), so two ``hosts add`` at once both land.
"""

from __future__ import annotations

import errno
import fcntl
import os
import re
import shutil
import tempfile
import time
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import tomli_w

from nomadlab.core.config import ConfigError, HostConfig, host_problems, load_config_text

_HEADER = re.compile(r"^\s*\[")
_HOSTS_HEADER = re.compile(r"^\s*\[\[\s*hosts\s*\]\]\s*(#.*)?$")


def atomic_write(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step; keep the old file as ``.bak``.

    A symlinked config (dotfiles repositories) keeps its link: the file it points
    to is the one replaced.
    """
    if path.is_symlink():
        path = path.resolve()
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
    except UnicodeDecodeError as exc:
        raise ConfigError(path, [f"not UTF-8 text (byte {exc.start})"]) from None
    except OSError as exc:
        raise ConfigError(path, [f"cannot read: {exc.strerror or exc}"]) from None


def _write(path: Path, text: str) -> None:
    try:
        atomic_write(path, text)
    except OSError as exc:
        raise ConfigError(path, [f"cannot write: {exc.strerror or exc}"]) from None


def _dumps(data: dict[str, Any]) -> str:
    """The whole file from data (comments are lost): hosts as ``[[hosts]]`` blocks."""
    rest = {k: v for k, v in data.items() if k != "hosts"}
    text = tomli_w.dumps(rest) if rest else ""
    for table in data.get("hosts", []):
        text += ("\n" if text else "") + _host_block(table)
    return text


def _host_block(table: dict[str, Any]) -> str:
    # An explicit header: tomli_w writes a short array of tables inline
    # (``hosts = [{...}]``), which a later append could not extend. A host table is
    # flat (strings, numbers, a list of strings), so all its keys go under it.
    return "[[hosts]]\n" + tomli_w.dumps(table)


def _loads(text: str) -> dict[str, Any] | None:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return None


LOCK_TIMEOUT = 30.0


@contextmanager
def locked(path: Path, timeout: float = LOCK_TIMEOUT) -> Iterator[None]:
    """Hold the config's lock while changing it: ``flock`` on its directory.

    The rename in :func:`atomic_write` replaces the config's inode, so the lock
    cannot be on the file itself; the directory is there as long as the file is and
    leaves nothing behind. A symlinked config is locked where it points.
    """
    target = path.resolve() if path.is_symlink() else path
    fd: int | None = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target.parent, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        pass  # no directory to lock is no place for the config either: read/write say why
    if fd is None:
        yield
        return
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    raise ConfigError(path, [f"cannot lock: {exc.strerror or exc}"]) from None
                if time.monotonic() > deadline:
                    raise ConfigError(path, [f"another nomadlab has been changing this file "
                                             f"for {timeout:.0f} s; try again"]) from None
                time.sleep(0.01)
        yield
    finally:
        os.close(fd)  # releases the lock


def add_host(path: Path, host: HostConfig) -> None:
    """Append ``host`` (under the config's lock)."""
    with locked(path):
        _add_host(path, host)


def remove_host(path: Path, name: str) -> None:
    """Remove the host named ``name`` (under the config's lock)."""
    with locked(path):
        _remove_host(path, name)


def _add_host(path: Path, host: HostConfig) -> None:
    text = _read(path)
    config = load_config_text(text, path)  # the current file must be valid first
    if config.host(host.name) is not None:
        raise ConfigError(path, [f"a host named {host.name!r} already exists"])
    wrong = host_problems(host_table(host))
    if wrong:
        raise ConfigError(path, [f"host {host.name!r}: {problem}" for problem in wrong])
    before = tomllib.loads(text)
    expected = dict(before)
    expected["hosts"] = [*before.get("hosts", []), host_table(host)]
    new_text = text + ("" if not text or text.endswith("\n") else "\n") + ("\n" if text else "")
    new_text += _host_block(host_table(host))
    if _loads(new_text) != expected:  # ``hosts = [...]`` written inline: rewrite
        new_text = _dumps(expected)
        if _loads(new_text) != expected:
            raise ConfigError(path, ["could not add the host without changing other "
                                     "settings; edit the file by hand"])
    load_config_text(new_text, path)  # validates the new host too
    _write(path, new_text)


def _remove_host(path: Path, name: str) -> None:
    text = _read(path)
    config = load_config_text(text, path)  # the current file must be valid first
    if config.host(name) is None:
        known = ", ".join(h.name for h in config.hosts) or "none"
        raise ConfigError(path, [f"no host named {name!r} (hosts: {known})"])
    before = tomllib.loads(text)
    hosts = before["hosts"]
    index = next(i for i, h in enumerate(hosts) if h.get("name") == name)
    expected = dict(before)
    expected["hosts"] = [h for i, h in enumerate(hosts) if i != index]
    if not expected["hosts"]:
        del expected["hosts"]
    lines = text.splitlines(keepends=True)
    starts = [i for i, line in enumerate(lines) if _HOSTS_HEADER.match(line)]
    new_text: str | None = None
    if len(starts) == len(hosts):
        start = starts[index]
        end = start + 1
        while end < len(lines) and not _HEADER.match(lines[end]):
            end += 1
        # Comments directly above a header belong to that block: this one's go,
        # the next one's stay.
        while start > 0 and lines[start - 1].lstrip().startswith("#"):
            start -= 1
        if end < len(lines):
            while end > start + 1 and lines[end - 1].lstrip().startswith("#"):
                end -= 1
        candidate = "".join(lines[:start] + lines[end:])
        if _loads(candidate) == expected:
            new_text = candidate
    if new_text is None:  # inline arrays or odd layouts: rewrite (comments are lost)
        new_text = _dumps(expected)
    load_config_text(new_text, path)
    _write(path, new_text)
