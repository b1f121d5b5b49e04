"""User regular expressions, run with a time limit.

A pattern from the config (an alert rule) is searched against text from hosts: a
pattern with catastrophic backtracking, such as ``(a|aa)+$``, could otherwise take
minutes on one short line and freeze everything on the event loop, signal handling
included. Patterns are compiled with the ``regex`` package (the syntax of ``re``;
it also avoids much of ``re``'s backtracking, e.g. ``(a+)+$`` is fast), and every
search gets :data:`SEARCH_TIMEOUT` seconds: past it :class:`PatternTimeout` is raised
and the caller reports the pattern and stops using it.
"""

from __future__ import annotations

from typing import Any

SEARCH_TIMEOUT = 1.0  # seconds for one search (a batch of lines, joined)

Pattern = Any  # regex.Pattern[str]; the regex package has no type hints
Match = Any


class PatternError(ValueError):
    """Not a valid regular expression (the message says why)."""


class PatternTimeout(Exception):
    """A search ran past its time limit."""

    def __init__(self, pattern: str, limit: float) -> None:
        super().__init__(f"the pattern {pattern!r} took over {limit:g}s")
        self.pattern = pattern
        self.limit = limit


def compile_user(pattern: str, *, multiline: bool = False) -> Pattern:
    """Compile a user pattern (``re`` syntax); raises :class:`PatternError`."""
    import regex  # here: the TUI's log pane imports this module before its first frame

    flags = regex.VERSION0 | (regex.MULTILINE if multiline else 0)
    try:
        return regex.compile(pattern, flags)
    except (regex.error, TypeError, ValueError, OverflowError, RecursionError) as exc:
        raise PatternError(str(exc)) from None


def search(compiled: Pattern, text: str, pos: int = 0,
           timeout: float = SEARCH_TIMEOUT) -> Match | None:
    """``compiled.search(text, pos)`` within ``timeout`` seconds, or PatternTimeout."""
    try:
        return compiled.search(text, pos, timeout=timeout)
    except TimeoutError:
        raise PatternTimeout(compiled.pattern, timeout) from None
