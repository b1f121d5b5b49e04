"""The nomadlab log tail agent: follows one file ON a host and streams its lines.

Rules for every module of this package (as for the agent, checked by tests):
- standard library only, Python >= 3.8, annotations from ``typing`` (no ``list[int]``,
  no ``X | None``: function annotations are evaluated at definition time on 3.8);
- modules import one another relatively: the package is shipped over SSH on stdin and
  served by the bootstrap (nomadlab.remote.bootstrap), which execs ``__main__`` with
  ``BUNDLE`` = {"agent": its source, "modules": {...}, "args": {...}};
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

from .files import describe, has_glob, last_lines_start, shown
from .follow import Tail
from .output import (
    BACK_BLOCK,
    DEFAULT_MAX_LINE,
    GLOB_CHARS,
    READ_SIZE,
    TAIL_VERSION,
    Event,
    Identity,
    Output,
    WriteFailed,
)
from .run import Runner, main

__all__ = ["BACK_BLOCK", "DEFAULT_MAX_LINE", "GLOB_CHARS", "READ_SIZE", "TAIL_VERSION", "Event",
           "Identity", "Output", "Runner", "Tail", "WriteFailed", "describe", "has_glob",
           "last_lines_start", "main", "shown"]
