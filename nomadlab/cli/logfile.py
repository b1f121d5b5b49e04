"""``nomadlab --log FILE``: a debug log of any command (the TUI included, which
otherwise keeps warnings off the screen) through the logging module.

Secrets stay out: asyncssh logs at INFO at most (its packet-level debug output could
carry authentication data), Python warnings are captured into the log, and the
formatter blanks anything shaped like ``password=...``, ``token: ...``, ``Bearer ...``,
a Telegram bot token or a webhook URL's secret path, tracebacks included.
"""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from pathlib import Path

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_SECRET = re.compile(
    # password=..., token: ..., Authorization: Bearer ...: the value
    r"(?i)(\b(?:password|passphrase|passwd|token|secret|api[_-]?key|authorization)\b"
    r"[\"']?\s*[=:]\s*[\"']?(?:(?:Bearer|Basic|token)\s+)?)([^\s\"',;&]+)"
    r"|(\bBearer\s+)([A-Za-z0-9._~+/=-]+)"
    # a Telegram bot token, a Slack or Discord webhook's path, a URL's user:password@
    r"|(\bbot)(\d+:[A-Za-z0-9_-]+)"
    r"|(hooks\.slack\.com/services/|discord(?:app)?\.com/api/webhooks/)(\S+)"
    r"|(://[^/\s:@]+:)([^/\s@]+)(?=@)"
)


def redact(text: str) -> str:
    """``text`` with secrets (the value after a secret's name, a bearer token, a bot
    token, a webhook's path, a URL's password) replaced by ``<redacted>``."""

    def keep_name(match: re.Match[str]) -> str:
        prefix = next(g for g in match.groups()[::2] if g is not None)
        return prefix + "<redacted>"

    return _SECRET.sub(keep_name, text)


class RedactingFormatter(logging.Formatter):
    """The whole formatted record redacted: messages, arguments and tracebacks."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


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
    handler.setFormatter(RedactingFormatter(FORMAT))
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    logging.getLogger("asyncssh").setLevel(logging.INFO)
    for noisy in ("asyncio", "markdown_it", "PIL"):
        logging.getLogger(noisy).setLevel(logging.INFO)
    logging.captureWarnings(True)
    return handler
