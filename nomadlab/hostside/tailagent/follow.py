"""One followed file, ``tail -F`` style: rotation, truncation, globs, resume."""

import errno
import glob
import os
import stat
import time
from typing import Any, Callable, List, Optional, Set, Tuple

from .files import describe, has_glob, last_lines_start, shown
from .output import DEFAULT_MAX_LINE, READ_SIZE, Event, Identity, Output


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


