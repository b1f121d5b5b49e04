# ruff: noqa: UP004, UP006, UP031, UP035, UP045  (runs on Python 3.8: see the rules below)
"""The nomadlab log tail agent: follows one file ON a host and streams its lines.

Rules for this file (as for agent.py, checked by a test with vermin):
- standard library only, Python >= 3.8, annotations from ``typing`` (no ``list[int]``,
  no ``X | None``: function annotations are evaluated at definition time on 3.8);
- it is shipped over SSH on stdin and exec'd by the bootstrap (nomadlab.remote.bootstrap),
  which sets ``BUNDLE`` = {"agent": this source, "args": {...}};
- it ends itself on stdin EOF, on a failed write, and when no heartbeat line arrived
  for ``heartbeat_timeout`` seconds: sshd does not kill a command when its channel
  closes.

Behaviour is that of ``tail -F``, poll-based (fstat + read, no inotify), so an idle
tail costs one fstat and one stat per ``poll`` seconds:
- a path may start with ``~`` (expanded here, on the host) and may be a glob: the
  newest match by mtime is followed, the glob is re-evaluated every ``glob_every``
  seconds, and a newer file that appears is followed from its start;
- rotation (rename + new file): the old file is drained to EOF, then the new one is
  read from 0; copytruncate (size < offset): back to 0; deletion: drained, then wait
  for the file to come back and read it from 0; a missing file: wait; an unreadable
  one: report the reason and retry every ``retry`` seconds.

Wire format on stdout (binary; nothing else is ever written there):

``E <json>\\n``
    an event, one JSON object (ASCII) with ``"e"`` naming it:
    hello {v, pid, python}; waiting {path}; error {path, error, errno};
    file {path, dev, ino, size, offset, how[, reason]} (now following this file from
    ``offset``; ``how`` is start, resumed, restarted, rotated, created or newer);
    truncated {path, size, offset}; rotated {path, to}; gone {path}.
``D <end> <nbytes> <cuts>\\n`` then exactly ``nbytes`` raw bytes
    file content: complete lines only, each ending in ``\\n``. ``end`` is the file
    offset just after the last byte these lines consumed: resuming from it neither
    repeats nor skips a line. ``cuts`` is ``-`` or ``i:n[,i:n...]``: line ``i`` (0-based,
    in this frame) was longer than ``max_line`` bytes and lost its last ``n`` bytes.

A partial last line is held until its newline arrives (or until the file is rotated,
truncated or deleted under it: then it is sent as a line of its own). A line longer
than ``max_line`` is sent cut, and the rest of it is skipped up to its newline without
ever being buffered whole.
"""

import errno
import glob
import json
import os
import stat
import sys
import threading
import time
from typing import IO, Any, Callable, Dict, List, NoReturn, Optional, Set, Tuple

Event = Dict[str, Any]
Identity = Tuple[int, int]  # (st_dev, st_ino)

TAIL_VERSION = 1
READ_SIZE = 1 << 20  # bytes per read of the followed file
BACK_BLOCK = 1 << 16  # bytes per step when reading backwards for the last N lines
DEFAULT_MAX_LINE = 1 << 16
GLOB_CHARS = "*?["


class WriteFailed(Exception):
    """stdout is gone: the channel closed."""


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


class Tail(object):
    """Follows one path (or the newest match of a glob) and writes frames to ``out``."""

    def __init__(self, out: Output, path: str, start: Optional[Event] = None, *,
                 poll: float = 0.2, glob_every: float = 2.0,
                 max_line: int = DEFAULT_MAX_LINE, retry: float = 2.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.out = out
        self.pattern = os.path.expanduser(path)
        self.is_glob = has_glob(self.pattern)
        self.start: Event = dict(start) if start else {"lines": 0}
        self.poll = max(0.01, float(poll))
        self.glob_every = max(0.05, float(glob_every))
        self.max_line = max(1, int(max_line))
        self.retry = max(0.05, float(retry))
        self.clock = clock
        # The followed file.
        self.fd: Optional[int] = None
        self.name = ""  # its path (after ~ and glob)
        self.ident: Identity = (0, 0)
        self.mtime = 0.0
        self.offset = 0  # file offset of the next byte read
        # Line assembly.
        self.pending = b""  # a partial line (< max_line bytes) ending at self.offset
        self.cut_head: Optional[bytes] = None  # head of an over-long line being skipped
        self.cut_dropped = 0
        # Bookkeeping.
        self.first = True  # the start spec applies to the first file opened only
        self.seen: Set[Identity] = set()  # files followed so far (a glob never goes back)
        self.note: Optional[Tuple[str, str]] = None  # last waiting/error said, not repeated
        self.next_open = 0.0
        self.next_glob = 0.0
        self.next_check = 0.0

    # ------------------------------------------------------------------ lines

    def feed(self, chunk: bytes, end: int) -> None:
        """``chunk`` was read from the file and ends at offset ``end``: send its lines."""
        if self.pending:
            data = self.pending + chunk
            self.pending = b""
        else:
            data = chunk
        size = len(data)
        base = end - size  # file offset of data[0]
        max_line = self.max_line
        pieces: List[bytes] = []
        cuts: List[Tuple[int, int]] = []
        counted = 0  # newlines in pieces[:counted_pieces]
        counted_pieces = 0
        pos = 0
        sent = 0  # data[:sent] is accounted for (sent or skipped)
        if self.cut_head is not None:
            newline = data.find(b"\n")
            if newline < 0:
                self.cut_dropped += size
                return
            self.cut_dropped += newline
            pieces.append(self.cut_head + b"\n")
            cuts.append((0, self.cut_dropped))
            self.cut_head = None
            self.cut_dropped = 0
            pos = sent = newline + 1
        run = pos  # start of a run of lines not yet put in pieces
        while True:
            if size - pos <= max_line:
                last = data.rfind(b"\n", pos)
                if last >= 0:
                    pos = last + 1
                break
            last = data.rfind(b"\n", pos, pos + max_line + 1)
            if last >= 0:  # every line in data[pos:last] is at most max_line long
                pos = last + 1
                continue
            # data[pos:] starts with a line longer than max_line.
            if pos > run:
                pieces.append(data[run:pos])
            for piece in pieces[counted_pieces:]:
                counted += piece.count(b"\n")
            counted_pieces = len(pieces) + 1
            head = data[pos:pos + max_line]
            newline = data.find(b"\n", pos + max_line)
            if newline < 0:
                self.cut_head = head
                self.cut_dropped = size - pos - max_line
                sent = pos
                pos = run = size
                break
            pieces.append(head + b"\n")
            cuts.append((counted, newline - pos - max_line))
            counted += 1
            pos = run = newline + 1
        if pos > run:
            pieces.append(data[run:pos])
        if self.cut_head is None:
            sent = pos
            self.pending = data[pos:]
        if pieces:
            self.out.data(base + sent, pieces, cuts)

    def flush_partial(self) -> None:
        """The file ends here for good (rotated, truncated, deleted): send what is held."""
        if self.cut_head is not None:
            self.out.data(self.offset, [self.cut_head + b"\n"], [(0, self.cut_dropped)])
        elif self.pending:
            self.out.data(self.offset, [self.pending + b"\n"], [])
        self.cut_head = None
        self.cut_dropped = 0
        self.pending = b""

    # ------------------------------------------------------------------ files

    def say(self, kind: str, path: str, error: str = "", code: int = 0) -> None:
        """waiting / error, said once per change, not once per retry."""
        note = (kind, path + "\0" + error)
        if note == self.note:
            return
        self.note = note
        event: Event = {"e": kind, "path": shown(path)}
        if kind == "error":
            event["error"] = error
            event["errno"] = code
        self.out.event(event)

    def matches(self) -> List[Tuple[float, str, Identity]]:
        """The glob's regular files: (mtime, path, identity)."""
        found: List[Tuple[float, str, Identity]] = []
        for path in glob.glob(self.pattern):
            try:
                st = os.stat(path)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode):
                found.append((st.st_mtime, path, (st.st_dev, st.st_ino)))
        return found

    def newest(self, fresh: bool) -> Optional[Tuple[float, str, Identity]]:
        """The newest match by mtime (the name breaks ties); ``fresh``: never followed.

        Identities of files no longer matched are forgotten, so a new file that reuses
        the inode number of a deleted one is not mistaken for it.
        """
        found = self.matches()
        present = set(ident for _, _, ident in found)
        self.seen &= present
        best: Optional[Tuple[float, str, Identity]] = None
        for item in found:
            if fresh and (item[2] in self.seen or item[2] == self.ident):
                continue
            if best is None or item[:2] > best[:2]:
                best = item
        return best

    def target(self) -> Optional[str]:
        if not self.is_glob:
            return self.pattern
        best = self.newest(fresh=not self.first)
        return None if best is None else best[1]

    def open(self, path: str, how: str) -> bool:
        """Open ``path`` and start following it; False (and a note) if it cannot be."""
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
                         | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                self.say("waiting", path)
            else:
                self.say("error", path, describe(exc), exc.errno or 0)
            return False
        try:
            st = os.fstat(fd)
            if stat.S_ISDIR(st.st_mode):
                raise OSError(errno.EISDIR, "is a directory")
            if not stat.S_ISREG(st.st_mode):
                raise OSError(errno.EINVAL, "not a regular file")
            ident = (st.st_dev, st.st_ino)
            offset = 0
            extra: Event = {}
            if self.first and "resume" in self.start:
                how, offset, extra = self.resume(path, fd, st)
            elif self.first and how == "start":
                offset = last_lines_start(fd, st.st_size, int(self.start.get("lines", 0)))
            os.lseek(fd, offset, os.SEEK_SET)
        except OSError as exc:
            os.close(fd)
            self.say("error", path, describe(exc), exc.errno or 0)
            return False
        self.first = False
        self.fd = fd
        self.name = path
        self.ident = ident
        self.mtime = st.st_mtime
        self.offset = offset
        self.pending = b""
        self.cut_head = None
        self.seen.add(ident)
        self.note = None
        event: Event = {"e": "file", "path": shown(path), "dev": st.st_dev, "ino": st.st_ino,
                        "size": st.st_size, "offset": offset, "how": how}
        event.update(extra)
        self.out.event(event)
        return True

    def resume(self, path: str, fd: int, st: os.stat_result) -> Tuple[str, int, Event]:
        """The client was following (dev, ino) up to offset before its link dropped."""
        spec = self.start["resume"]
        want = (int(spec.get("dev", -1)), int(spec.get("ino", -1)))
        offset = int(spec.get("offset", 0))
        if (st.st_dev, st.st_ino) == want:
            if st.st_size >= offset:
                return "resumed", offset, {}
            return "restarted", 0, {"reason": "truncated"}
        # Replaced meanwhile. Rotated by rename nearby? Send the rest of the old file first.
        old = self.find_identity(path, want, spec.get("file"))
        if old is None:
            return "restarted", 0, {"reason": "replaced"}
        try:
            ofd = os.open(old, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            return "restarted", 0, {"reason": "replaced"}
        try:
            ost = os.fstat(ofd)
            if (ost.st_dev, ost.st_ino) != want or ost.st_size < offset:
                return "restarted", 0, {"reason": "replaced"}
            self.out.event({"e": "file", "path": shown(old), "dev": ost.st_dev,
                            "ino": ost.st_ino, "size": ost.st_size, "offset": offset,
                            "how": "resumed"})
            os.lseek(ofd, offset, os.SEEK_SET)
            self.offset = offset
            self.pending = b""
            self.cut_head = None
            while True:
                chunk = os.read(ofd, READ_SIZE)
                if not chunk:
                    break
                self.offset += len(chunk)
                self.feed(chunk, self.offset)
            self.flush_partial()
            self.out.event({"e": "rotated", "path": shown(old), "to": shown(path)})
            self.seen.add(want)
            return "rotated", 0, {}
        finally:
            os.close(ofd)

    def find_identity(self, path: str, want: Identity, hint: Any) -> Optional[str]:
        """A file with identity ``want``: the last followed name, or in path's folder."""
        places: List[str] = []
        if isinstance(hint, str) and hint:
            places.append(os.path.expanduser(hint))
        folder = os.path.dirname(path) or "."
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    try:
                        if entry.inode() == want[1]:
                            places.append(entry.path)
                    except OSError:
                        continue
        except OSError:
            pass
        for place in places:
            try:
                st = os.stat(place)
            except OSError:
                continue
            if (st.st_dev, st.st_ino) == want and stat.S_ISREG(st.st_mode):
                return place
        return None

    def close(self) -> None:
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
        self.fd = None

    def read_some(self) -> int:
        """One read of the followed file; the number of bytes read."""
        if self.fd is None:
            return 0
        try:
            chunk = os.read(self.fd, READ_SIZE)
        except OSError as exc:
            self.lost(exc)
            return 0
        if chunk:
            self.offset += len(chunk)
            self.feed(chunk, self.offset)
        return len(chunk)

    def drain(self) -> bool:
        """Read the followed file to its end; False if it could not be (now closed)."""
        while self.fd is not None and self.read_some():
            pass
        return self.fd is not None

    def lost(self, exc: OSError) -> None:
        """A read failed (EIO, a vanished mount): report it, then reopen and resume."""
        path = self.name
        self.start = {"resume": {"dev": self.ident[0], "ino": self.ident[1],
                                 "offset": self.offset - len(self.pending), "file": path}}
        self.pending = b""
        self.cut_head = None
        self.first = True
        self.close()
        self.say("error", path, describe(exc), exc.errno or 0)
        self.next_open = self.clock() + self.retry

    def switch(self, path: str, how: str) -> None:
        """Leave the current file (drained to its end) for ``path``, read from 0."""
        if not self.drain():
            return
        self.flush_partial()
        self.out.event({"e": "rotated", "path": shown(self.name), "to": shown(path)})
        self.close()
        self.open(path, how)

    def check(self, now: float) -> None:
        """At EOF (or every poll while busy): truncated? rotated? deleted? newer?"""
        if self.fd is None:
            return
        try:
            st = os.fstat(self.fd)
        except OSError as exc:
            self.lost(exc)
            return
        self.mtime = st.st_mtime
        if st.st_size < self.offset:  # copytruncate
            self.flush_partial()
            self.out.event({"e": "truncated", "path": shown(self.name), "size": st.st_size,
                            "offset": self.offset})
            os.lseek(self.fd, 0, os.SEEK_SET)
            self.offset = 0
            return
        if self.is_glob and now >= self.next_glob:
            self.next_glob = now + self.glob_every
            best = self.newest(fresh=True)
            if best is not None and best[0] > self.mtime:  # written after ours: follow it
                self.switch(best[1], "newer")
                return
        try:
            pst = os.stat(self.name)
        except OSError:
            pst = None
        if pst is None:
            if st.st_nlink == 0:  # deleted: send what is left, then wait for it again
                if not self.drain():
                    return
                self.flush_partial()
                self.out.event({"e": "gone", "path": shown(self.name)})
                self.seen.discard(self.ident)  # its inode number may come back as a new file
                self.ident = (0, 0)
                self.close()
                self.note = None
            # Renamed away and no new file yet: keep reading the old one meanwhile.
            return
        if (pst.st_dev, pst.st_ino) != self.ident:
            self.switch(self.name, "rotated")

    def step(self) -> bool:
        """One round; True when there may be more to do at once (no sleep)."""
        now = self.clock()
        if self.fd is None:
            if now < self.next_open:
                return False
            if not self.reopen():
                error = self.note is not None and self.note[0] == "error"
                self.next_open = now + (self.retry if error
                                        else self.glob_every if self.is_glob else self.poll)
                return False
        if self.read_some():
            if now >= self.next_check:  # a writer faster than us: still look now and then
                self.next_check = now + self.poll
                self.check(now)
            return True
        self.next_check = now + self.poll
        self.check(now)
        return False

    def reopen(self) -> bool:
        path = self.target()
        if path is None:
            self.say("waiting", self.pattern)
            return False
        if not self.first:
            how = "newer" if self.is_glob else "created"
        elif self.note is not None and self.note[0] == "waiting" and "resume" not in self.start:
            how = "created"  # it did not exist when we began: all of it is new
        else:
            how = "start"
        return self.open(path, how)


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


if __name__ == "__nomadlab_remote__":
    main(bundle=BUNDLE)  # type: ignore[name-defined]  # noqa: F821  (set by the bootstrap)
elif __name__ == "__main__":
    main()
