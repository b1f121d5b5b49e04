"""Path completion for logs: local paths, and remote ones over SFTP."""

from __future__ import annotations

import os
import stat

import asyncssh

COMPLETE_LIMIT = 200


def _split(partial: str) -> tuple[str, str]:
    """"logs/tr" -> ("logs/", "tr"): the folder as typed, and the name's beginning."""
    head, sep, prefix = partial.rpartition("/")
    return head + sep, prefix


def _wanted(name: str, prefix: str) -> bool:
    if name in (".", ".."):
        return False
    if name.startswith(".") and not prefix.startswith("."):
        return False
    return name.startswith(prefix)


def complete_local(partial: str, limit: int = COMPLETE_LIMIT) -> list[str]:
    if partial == "~":
        return ["~/"]
    typed, prefix = _split(partial)
    if typed.startswith("~") and not typed.startswith("~/"):
        folder = os.path.expanduser(typed)  # ~user/
        if folder == typed:
            return []
    else:
        folder = os.path.expanduser(typed) if typed else "."
    out: list[str] = []
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                if not _wanted(entry.name, prefix):
                    continue
                try:
                    is_dir = entry.is_dir()  # follows symlinks
                except OSError:
                    is_dir = False
                out.append(typed + entry.name + ("/" if is_dir else ""))
    except OSError:
        return []
    return sorted(out)[:limit]


async def complete_sftp(sftp: asyncssh.SFTPClient, partial: str,
                        limit: int = COMPLETE_LIMIT) -> list[str]:
    if partial == "~":
        return ["~/"]
    typed, prefix = _split(partial)
    if typed.startswith("~/"):
        home = await sftp.realpath(".")  # an SFTP session starts in the user's home
        folder = home.rstrip("/") + "/" + typed[2:]
    elif typed.startswith("~"):
        return []  # ~user: not resolvable over SFTP
    else:
        folder = typed or "."
    names = await sftp.readdir(folder)
    out: list[str] = []
    links: list[str] = []
    for entry in names:
        name = entry.filename
        if not isinstance(name, str) or not _wanted(name, prefix):
            continue
        mode = entry.attrs.permissions
        kind = entry.attrs.type
        if kind == asyncssh.FILEXFER_TYPE_DIRECTORY or (mode is not None and stat.S_ISDIR(mode)):
            out.append(typed + name + "/")
        elif kind == asyncssh.FILEXFER_TYPE_SYMLINK or (mode is not None and stat.S_ISLNK(mode)):
            links.append(name)
        else:
            out.append(typed + name)
    for name in links[:50]:  # a link to a folder completes as a folder
        try:
            attrs = await sftp.stat(folder.rstrip("/") + "/" + name)
            is_dir = attrs.permissions is not None and stat.S_ISDIR(attrs.permissions)
        except (asyncssh.SFTPError, OSError):
            is_dir = False
        out.append(typed + name + ("/" if is_dir else ""))
    out.extend(typed + name for name in links[50:])
    return sorted(out)[:limit]
