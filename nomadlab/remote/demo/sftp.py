"""SFTP for the demo's simulated hosts: read-only, and only inside the demo's directory.

The "Open a log" dialog completes remote paths over SFTP, as on a real host. Each
simulated host's home is its own folder of runs (``<demo dir>/runs/<host>``), so
``~/`` lists its ``train.log``. Paths outside the demo's directory do not exist for
the client; nothing can be written, renamed or removed.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path

import asyncssh


def host_home(root: Path, user: str) -> Path:
    """A simulated host's home directory (its SSH user is its name)."""
    return root / "runs" / user


def expand_home(path: str, root: Path, user: str) -> str:
    """``~`` and ``~/x`` as the simulated host sees them (its own home)."""
    if path == "~" or path.startswith("~/"):
        return str(host_home(root, user)) + path[1:]
    return path


_WRITE_FLAGS = (asyncssh.FXF_WRITE | asyncssh.FXF_CREAT | asyncssh.FXF_TRUNC
                | asyncssh.FXF_APPEND)
_WRITE_ACCESS = asyncssh.ACE4_WRITE_DATA | asyncssh.ACE4_APPEND_DATA


class DemoSftp(asyncssh.SFTPServer):
    """Read-only SFTP confined to ``root`` (the demo's directory)."""

    def __init__(self, root: Path, chan: asyncssh.SSHServerChannel[bytes]) -> None:
        super().__init__(chan)
        self.root = Path(os.path.realpath(root))
        user = str(chan.get_extra_info("username", ""))
        self.home = host_home(self.root, user)

    def map_path(self, path: bytes) -> bytes:
        text = os.fsdecode(path) or "."
        if not text.startswith("/"):
            text = posixpath.join(str(self.home), text)
        real = Path(os.path.realpath(posixpath.normpath(text)))
        if real != self.root and self.root not in real.parents:
            raise asyncssh.SFTPNoSuchFile("no such file")
        return os.fsencode(real)

    def _refuse(self, *args: object) -> None:
        raise asyncssh.SFTPPermissionDenied("the demo's hosts are read-only")

    def open(self, path: bytes, pflags: int, attrs: asyncssh.SFTPAttrs) -> object:
        if pflags & _WRITE_FLAGS:
            self._refuse()
        return super().open(path, pflags, attrs)

    def open56(self, path: bytes, desired_access: int, flags: int,
               attrs: asyncssh.SFTPAttrs) -> object:
        if desired_access & _WRITE_ACCESS:
            self._refuse()
        return super().open56(path, desired_access, flags, attrs)

    setstat = lsetstat = fsetstat = remove = mkdir = rmdir = _refuse  # type: ignore[assignment]
    rename = posix_rename = symlink = link = write = _refuse  # type: ignore[assignment]
