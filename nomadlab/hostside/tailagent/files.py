"""Path helpers of the tail agent: globs, shown paths, errors, the last N lines."""

import errno
import os

from .output import BACK_BLOCK, GLOB_CHARS


def has_glob(path: str) -> bool:
    return any(char in path for char in GLOB_CHARS)


def shown(path: str) -> str:
    """A path for the wire: undecodable bytes become U+FFFD (JSON stays plain text)."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def describe(exc: OSError) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if exc.strerror:
        return exc.strerror.lower()
    return str(exc)


def last_lines_start(fd: int, size: int, lines: int) -> int:
    """Offset where the last ``lines`` complete lines of the file begin.

    Reads backwards from the end in blocks. A partial last line (no newline yet) is
    not counted: it starts after the returned lines and is sent once complete.
    """
    if lines < 0:
        return 0
    remaining = lines + 1  # the newline ending the last complete line, and one per line
    end = size
    while end > 0:
        begin = max(0, end - BACK_BLOCK)
        block = os.pread(fd, end - begin, begin)
        if len(block) < end - begin:  # shrank while we looked: take what is there
            return 0
        count = block.count(b"\n")
        if count >= remaining:
            index = len(block)
            for _ in range(remaining):
                index = block.rfind(b"\n", 0, index)
            return begin + index + 1
        remaining -= count
        end = begin
    return 0


