"""``nomadlab --log FILE``: a debug log of any command (the TUI included, which
otherwise keeps warnings off the screen) through the logging module.

Secrets stay out: asyncssh logs at INFO at most (its packet-level debug output could
carry authentication data), Python warnings are captured into the log, and a filter
blanks anything shaped like ``password=...``, ``token: ...`` or ``Bearer ...``.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_SECRET = re.compile(
    r"(?i)(\b(?:password|passphrase|passwd|token|secret|api[_-]?key|authorization)\b"
    r"[\"']?\s*[=:]\s*[\"']?)([^\s\"',;&]+)"
    r"|(\bBearer\s+)([A-Za-z0-9._~+/=-]+)"
)


def redact(text: str) -> str:
    """``text`` with the value after a secret's name (or after Bearer) replaced."""
    return _SECRET.sub(lambda m: (m.group(1) or m.group(3)) + "<redacted>", text)


class RedactSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


@contextlib.contextmanager
def logging_to(path: str) -> Iterator[str | None]:
    """Log to ``path`` inside the block; yields a one-line problem (and logs nothing)
    when the file cannot be opened. The handler is removed and closed afterwards."""
    try:
        handler = setup(path)
    except OSError as exc:
        yield f"--log {path}: cannot write: {exc.strerror or exc}"
        return
    root = logging.getLogger()
    level = root.level
    logging.getLogger(__name__).debug("nomadlab started, logging to %s", path)
    try:
        yield None
    finally:
        logging.getLogger(__name__).debug("nomadlab done")
        root.removeHandler(handler)
        root.setLevel(level)
        logging.captureWarnings(False)
        handler.close()


def setup(path: str) -> logging.Handler:
    """Send DEBUG and above, from every logger, to ``path`` (appended, mode 0600).
    Raises OSError when it cannot be opened."""
    target = Path(path).expanduser()
    if target.is_dir():
        raise IsADirectoryError(21, "is a directory")
    target.touch(mode=0o600, exist_ok=True)
    handler = logging.FileHandler(target, encoding="utf-8", delay=False)
    handler.setLevel(logging.DEBUG)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RedactSecrets())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    logging.getLogger("asyncssh").setLevel(logging.INFO)
    for noisy in ("asyncio", "markdown_it", "PIL"):
        logging.getLogger(noisy).setLevel(logging.INFO)
    logging.captureWarnings(True)
    return handler
