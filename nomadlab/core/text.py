"""Text from outside (hosts, log files, paper metadata): made safe to store and show.

Three jobs, one place:

- :func:`visible` for display: control characters (C0, DEL, C1), bidi overrides and
  isolates (U+202A-202E, U+2066-2069, U+200E/F, U+061C) and zero-width characters
  (U+200B-200D, U+2060, U+FEFF), and line/paragraph separators are shown as
  ``<U+XXXX>``, so a process name cannot read as something it is not, nor drive the
  terminal;
- :func:`strip_controls` for storing: escape sequences and control characters other
  than newline and tab are removed from text that came from outside;
- :func:`json_text` for printing JSON: like ``json.dumps(ensure_ascii=False)`` but
  with C1 controls (which some terminals obey as CSI, OSC ...), DEL, bidi and
  zero-width characters written as ``\\uXXXX`` escapes. The JSON means the same.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

# Characters that change how the text around them reads, while showing nothing.
_FORMAT = (
    "\u061c"  # Arabic letter mark
    "\u200b-\u200f"  # zero width space/non-joiner/joiner, LRM, RLM
    "\u2028\u2029"  # line and paragraph separators
    "\u202a-\u202e"  # bidi embeddings and overrides
    "\u2060-\u2064"  # word joiner, invisible operators
    "\u2066-\u2069"  # bidi isolates
    "\ufeff"  # zero width no-break space (BOM)
)
_SHOWN = re.compile(f"[\x00-\x1f\x7f-\x9f{_FORMAT}]")
_SHOWN_KEEP_LINES = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_FORMAT}]")
_FORMAT_ONLY = re.compile(f"[{_FORMAT}]")
_JSON_ESCAPED = re.compile(f"[\x7f-\x9f{_FORMAT}]")

_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI (colours, cursor)
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC (titles, clipboard, hyperlinks)
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"  # DCS, SOS, PM, APC
    r"|\x1b[@-Z\\-_]?"  # other two-byte escapes, a lone ESC
    r"|\x9b[0-?]*[ -/]*[@-~]"  # CSI, 8-bit (C1)
    r"|[\x9d\x90\x98\x9e\x9f][^\x07\x1b\x9c]*[\x07\x9c]?"  # OSC, DCS ..., 8-bit
)
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _code(match: re.Match[str]) -> str:
    return f"<U+{ord(match.group()):04X}>"


def visible(text: str, *, keep_lines: bool = False) -> str:
    """Every control and invisible formatting character as ``<U+XXXX>``.

    With ``keep_lines``, newline and tab stay as they are (multi-line text).
    """
    pattern = _SHOWN_KEEP_LINES if keep_lines else _SHOWN
    return pattern.sub(_code, text)


def show_format(text: str) -> str:
    """Only the invisible formatting characters (bidi, zero width) as ``<U+XXXX>``:
    for text whose control characters are already dealt with."""
    return _FORMAT_ONLY.sub(_code, text)


def strip_controls(text: str) -> str:
    """Text from outside, for storing: escape sequences and control characters other
    than newline and tab removed (CRLF becomes LF)."""
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    return _CONTROLS.sub("", _ESCAPES.sub("", text))


def _json_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def json_text(data: Any, *, indent: int | None = None,
              default: Callable[[Any], Any] | None = None) -> str:
    """``json.dumps(data, ensure_ascii=False)`` that is safe to print to a terminal."""
    raw = json.dumps(data, ensure_ascii=False, indent=indent, default=default)
    # These characters can only occur inside JSON strings, where \\uXXXX means the same.
    return _JSON_ESCAPED.sub(_json_escape, raw)
