"""The tail agent's process: stdin heartbeats, the poll loop, the exit rules."""

import os
import sys
import threading
import time
from typing import IO, List, NoReturn, Optional

from .follow import Tail
from .output import DEFAULT_MAX_LINE, TAIL_VERSION, Event, Output, WriteFailed


class Runner(object):
    """The process around a Tail: stdin heartbeats, the poll loop, the exit rules."""

    def __init__(self, tail: Tail, inp: IO[bytes], *, heartbeat_timeout: float = 60.0,
                 window: int = 0) -> None:
        self.tail = tail
        self.inp = inp
        self.heartbeat_timeout = heartbeat_timeout
        self.last_input = time.monotonic()
        self.stop = threading.Event()
        # Flow control: with a window, at most that many data bytes may be sent and not
        # yet acknowledged ("ack N" lines on stdin). A client busy drawing its screen
        # then slows the tail down instead of buffering a flood in memory.
        self.window = window
        self.acked = 0
        self.acks = threading.Event()

    def _listen(self) -> None:
        try:
            for raw in iter(self.inp.readline, b""):
                self.last_input = time.monotonic()
                words = raw.split()
                if words == [b"quit"]:
                    break
                if len(words) == 2 and words[0] == b"ack":
                    try:
                        self.acked = max(self.acked, int(words[1]))
                    except ValueError:
                        continue
                    self.acks.set()
        except (OSError, ValueError):
            pass
        self.stop.set()
        self.acks.set()

    def _may_send(self) -> bool:
        return not self.window or self.tail.out.sent - self.acked < self.window

    def run(self) -> int:
        try:
            self.tail.out.event({"e": "hello", "v": TAIL_VERSION, "pid": os.getpid(),
                                 "python": "%d.%d.%d" % sys.version_info[:3]})
            listener = threading.Thread(target=self._listen)
            listener.daemon = True
            listener.start()
            while not self.stop.is_set():
                if time.monotonic() - self.last_input > self.heartbeat_timeout:
                    return 3  # the client is gone without closing stdin
                if not self._may_send():
                    self.acks.clear()
                    if not self._may_send():
                        self.acks.wait(self.tail.poll)
                    continue
                if not self.tail.step():
                    self.stop.wait(self.tail.poll)
            return 0
        except WriteFailed:
            return 2
        finally:
            self.tail.close()


def main(bundle: Optional[Event] = None, argv: Optional[List[str]] = None) -> NoReturn:
    """Entry point: ``bundle`` when exec'd by the bootstrap; ``PATH [LINES]`` as a script."""
    if bundle is not None:
        args = bundle.get("args", {})
    else:
        words = list(sys.argv[1:] if argv is None else argv)
        args = {"path": words[0], "start": {"lines": int(words[1]) if len(words) > 1 else 10}}
    out = Output(sys.stdout.buffer)
    tail = Tail(out, str(args["path"]), args.get("start"),
                poll=float(args.get("poll", 0.2)),
                glob_every=float(args.get("glob_every", 2.0)),
                max_line=int(args.get("max_line", DEFAULT_MAX_LINE)),
                retry=float(args.get("retry", 2.0)))
    runner = Runner(tail, sys.stdin.buffer,
                    heartbeat_timeout=float(args.get("heartbeat_timeout", 60.0)),
                    window=int(args.get("window", 0)))
    code = runner.run()
    try:
        sys.stdout.buffer.flush()
    except (OSError, ValueError):
        pass
    os._exit(code)  # the stdin thread must not keep the process alive


