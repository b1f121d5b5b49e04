"""Where is a key in a TOML file? Best-effort line numbers for config error messages.

tomllib gives values, not positions. This scanner follows table headers and
``key =`` lines well enough to turn ``hosts[2].port`` into a line number for a
message; it never decides what the file means (tomllib does that).
"""

from __future__ import annotations

import re

_HEADER_ARRAY = re.compile(r"^\s*\[\[\s*([^\]]+?)\s*\]\]\s*(#.*)?$")
_HEADER_TABLE = re.compile(r"^\s*\[\s*([^\[\]]+?)\s*\]\s*(#.*)?$")
_PART = r"""(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')"""
_KEY = re.compile(rf"^\s*({_PART}(?:\s*\.\s*{_PART})*)\s*=")


def _split_dotted(text: str) -> list[str]:
    parts = re.findall(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""", text)
    return [p[1:-1] if p[:1] in "\"'" else p for p in parts]


def key_lines(text: str) -> dict[str, int]:
    """Map paths like ``hosts[2].port``, ``workspace``, ``hosts[0]`` to 1-based lines."""
    positions: dict[str, int] = {}
    counters: dict[str, int] = {}
    prefix = ""
    in_multiline: str | None = None
    for number, line in enumerate(text.splitlines(), start=1):
        if in_multiline is not None:
            if line.count(in_multiline) % 2 == 1:
                in_multiline = None
            continue
        match = _HEADER_ARRAY.match(line)
        if match:
            name = ".".join(_split_dotted(match.group(1)))
            index = counters.get(name, -1) + 1
            counters[name] = index
            prefix = f"{name}[{index}]"
            positions.setdefault(prefix, number)
            continue
        match = _HEADER_TABLE.match(line)
        if match:
            parts = _split_dotted(match.group(1))
            # A sub-table of the latest array element: [hosts.extra] after [[hosts]].
            base = ".".join(parts)
            head = parts[0]
            if head in counters and len(parts) > 1:
                base = f"{head}[{counters[head]}]." + ".".join(parts[1:])
            prefix = base
            positions.setdefault(prefix, number)
            continue
        match = _KEY.match(line)
        if match:
            key = ".".join(_split_dotted(match.group(1)))
            path = f"{prefix}.{key}" if prefix else key
            positions.setdefault(path, number)
            rest = line[match.end() :]
            for quote in ('"""', "'''"):
                if rest.count(quote) % 2 == 1:
                    in_multiline = quote
    return positions


def line_of(text: str, path: str) -> int | None:
    """The line of ``path``, or of its nearest enclosing table that has one."""
    positions = key_lines(text)
    probe = path
    while probe:
        if probe in positions:
            return positions[probe]
        cut = max(probe.rfind("."), probe.rfind("["))
        if cut <= 0:
            break
        probe = probe[:cut]
    return positions.get(probe)
