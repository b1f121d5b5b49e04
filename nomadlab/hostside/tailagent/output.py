"""The tail agent's wire: its constants, and events and data frames on stdout."""

import json
from typing import IO, Any, Dict, List, Tuple

Event = Dict[str, Any]
Identity = Tuple[int, int]  # (st_dev, st_ino)

TAIL_VERSION = 1
READ_SIZE = 1 << 20  # bytes per read of the followed file
BACK_BLOCK = 1 << 16  # bytes per step when reading backwards for the last N lines
DEFAULT_MAX_LINE = 1 << 16
GLOB_CHARS = "*?["


class WriteFailed(Exception):
    """stdout is gone: the channel closed."""


class Output(object):
    """Frames on a binary stream; every failure to write becomes WriteFailed."""

    def __init__(self, out: IO[bytes]) -> None:
        self.out = out
        self.sent = 0  # data bytes written (the client acknowledges what it has handled)

    def event(self, event: Event) -> None:
        line = "E " + json.dumps(event, separators=(",", ":")) + "\n"
        try:
            self.out.write(line.encode("ascii"))
            self.out.flush()
        except (OSError, ValueError) as exc:
            raise WriteFailed(str(exc)) from exc

    def data(self, end: int, pieces: List[bytes], cuts: List[Tuple[int, int]]) -> None:
        size = 0
        for piece in pieces:
            size += len(piece)
        info = ",".join("%d:%d" % cut for cut in cuts) if cuts else "-"
        try:
            self.out.write(("D %d %d %s\n" % (end, size, info)).encode("ascii"))
            for piece in pieces:
                self.out.write(piece)
            self.out.flush()
            self.sent += size
        except (OSError, ValueError) as exc:
            raise WriteFailed(str(exc)) from exc


