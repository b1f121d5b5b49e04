"""The tail agent's stdout, decoded: events and data frames, checked against the
limits any agent of ours keeps (a host that sends more is cut off)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from nomadlab.hostside.agent.wire import NO_PYTHON_MARKER

# Data bytes the tail agent may send ahead of what this side has handled (it waits for
# "ack N" lines). Without it a flood outruns the screen and piles up in memory:
# asyncssh re-opens the SSH window as soon as it buffers data, not when it is read.
FLOW_WINDOW = 4 << 20
MAX_HEADER = 1 << 16  # a header line longer than this is not one of ours
# A frame larger than this is not one of ours: the agent reads the file in READ_SIZE
# pieces and sends each as one frame (plus a held partial line and cut heads).
MAX_FRAME = 2 << 20
# Bytes a host may have sent that this side has not handled yet: the flow window, one
# frame past it (the agent checks the window before each frame), and slack for events
# and headers. Beyond it the host ignores the window: the channel ends.
RECEIVE_CAP = FLOW_WINDOW + MAX_FRAME + (256 << 10)
TOO_MUCH = "host sent too much"
Event = dict[str, Any]


@dataclass(slots=True, frozen=True)
class DataFrame:
    end: int  # file offset just after the last byte these lines consumed
    payload: bytes  # complete lines, each ending in b"\n"
    cuts: str  # "-" or "i:n,i:n": line i lost n bytes


class TooMuch(Exception):
    """The host sent more than any agent of ours would: a frame over its limit, or data
    beyond the flow window. The channel ends; the message says what happened."""


class FrameDecoder:
    """Splits the agent's stdout into events (dicts) and :class:`DataFrame` objects.

    Lines that are neither (a login script's chatter, the no-python marker) are
    counted in ``garbage`` and the last few kept in ``junk`` for error messages. A
    frame header announcing more than ``max_frame`` bytes raises :class:`TooMuch`: the
    decoder never holds more than one frame and one header line.
    """

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()
        self._frame: tuple[int, int, str] | None = None  # (end, nbytes, cuts) awaited
        self.garbage = 0
        self.junk: list[str] = []
        self.no_python = False

    def _garbage(self, line: bytes) -> None:
        self.garbage += 1
        text = line[:300].decode("utf-8", "replace").strip()
        if text.startswith(NO_PYTHON_MARKER):
            self.no_python = True
        if text:
            self.junk = [*self.junk[-4:], text]

    def feed(self, data: bytes) -> list[DataFrame | Event]:
        buf = self._buf
        buf += data
        out: list[DataFrame | Event] = []
        pos = 0
        size = len(buf)
        while pos < size:
            if self._frame is not None:
                end, nbytes, cuts = self._frame
                if size - pos < nbytes:
                    break
                out.append(DataFrame(end, bytes(buf[pos:pos + nbytes]), cuts))
                pos += nbytes
                self._frame = None
                continue
            newline = buf.find(b"\n", pos)
            if newline < 0:
                if size - pos > MAX_HEADER:
                    self._garbage(bytes(buf[pos:pos + 300]))
                    pos = size
                break
            line = bytes(buf[pos:newline])
            pos = newline + 1
            kind = line[:2]
            if kind == b"D ":
                parts = line.split(b" ")
                try:
                    if len(parts) != 4:
                        raise ValueError(line)
                    end, nbytes = int(parts[1]), int(parts[2])
                    if end < 0 or nbytes < 0:
                        raise ValueError(line)
                except ValueError:
                    self._garbage(line)
                    continue
                if nbytes > self.max_frame:
                    del buf[:]
                    raise TooMuch(f"{TOO_MUCH}: a frame of {nbytes} bytes "
                                  f"(limit {self.max_frame})")
                self._frame = (end, nbytes, parts[3].decode("ascii", "replace"))
            elif kind == b"E ":
                try:
                    event = json.loads(line[2:])
                except ValueError:
                    event = None
                if isinstance(event, dict) and isinstance(event.get("e"), str):
                    out.append(event)
                else:
                    self._garbage(line)
            elif line.strip():
                self._garbage(line)
        del buf[:pos]
        return out


def parse_cuts(cuts: str, count: int) -> list[int] | None:
    """``"1:400,7:12"`` -> per-line dropped bytes (None when nothing was cut)."""
    if cuts == "-" or not cuts:
        return None
    out = [0] * count
    for item in cuts.split(","):
        index, _, dropped = item.partition(":")
        try:
            i, n = int(index), int(dropped)
        except ValueError:
            continue
        if 0 <= i < count and n >= 0:
            out[i] = n
    return out


def split_lines(payload: bytes) -> list[str]:
    """A frame's payload -> its lines: decoded once, split once, never raising."""
    text = payload.decode("utf-8", "replace")
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    lines = text.split("\n")
    lines.pop()  # the payload ends with a newline: nothing after it
    return lines
