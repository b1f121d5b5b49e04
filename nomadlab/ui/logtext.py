"""A log line from a host -> a ``Text`` that is safe to put on the terminal.

- SGR colour sequences (``ESC [ ... m``) render as colours;
- every other escape sequence (cursor moves, clears, OSC titles, DCS, ...) and every
  other control character (C0 and C1) is dropped, so a log line cannot retitle,
  clear or move the terminal;
- markup-looking text such as ``[bold]`` or ``[@click=...]`` is never parsed;
- a line longer than ``MAX_CHARS`` is cut for display, with a marker saying so.
"""

from __future__ import annotations

import re

from rich.text import Text

from nomadlab.core.text import show_format

MAX_CHARS = 10_000

_SGR = re.compile(r"\x1b\[[0-9;:]*m")
# Any other escape sequence: CSI (not SGR), OSC (ended by BEL or ST, or unterminated),
# DCS/SOS/PM/APC strings, and two-character escapes.
_OTHER_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"  # DCS, SOS, PM, APC
    r"|\x1b[@-Z\\-_]"  # two-character escapes
    r"|\x1b"  # a lone ESC
)
_CONTROLS = re.compile(r"[\x00-\x08\x0a-\x1a\x1c-\x1f\x7f-\x9f]")

ERROR_RE = re.compile(
    r"Traceback|\bERROR\b|\bError\b|\bFATAL\b|Exception\b|CUDA out of memory|"
    r"\bnan\b|\bNaN\b|Killed|Segmentation fault|RuntimeError"
)
WARNING_RE = re.compile(r"\bWARN(?:ING)?\b|\bWarning\b|UserWarning|DeprecationWarning")


def _strip_controls(text: str) -> str:
    # Bidi overrides and zero-width characters are shown, not obeyed (core/text.py).
    return show_format(_CONTROLS.sub("", text.replace("\t", "    ")))


def to_text(line: str, limit: int = MAX_CHARS) -> Text:
    """Sanitised, coloured text of one log line (no trailing newline)."""
    cut = 0
    if len(line) > limit:
        cut = len(line) - limit
        line = line[:limit]
    if "\x1b" in line:
        kept = []
        position = 0
        for match in _SGR.finditer(line):
            kept.append(_strip_controls(_OTHER_ESCAPES.sub("", line[position:match.start()])))
            kept.append(match.group(0))
            position = match.end()
        kept.append(_strip_controls(_OTHER_ESCAPES.sub("", line[position:])))
        text = Text.from_ansi("".join(kept), no_wrap=True)
        if "\x1b" in text.plain:  # never let one through, whatever rich made of it
            text = Text(text.plain.replace("\x1b", ""), no_wrap=True)
    else:
        text = Text(_strip_controls(line), no_wrap=True)
    if cut:
        text.append(f" … [{cut:,} more characters not shown]", style="bold magenta")
    return text


def plain(line: str) -> str:
    """The line as copyable plain text: escapes and controls removed."""
    return _strip_controls(_OTHER_ESCAPES.sub("", _SGR.sub("", line)))


def severity_style(line: str) -> str:
    if ERROR_RE.search(line):
        return "red"
    if WARNING_RE.search(line):
        return "yellow"
    return ""
