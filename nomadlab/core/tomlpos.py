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


MAX_NESTING = 100  # arrays and inline tables inside each other
MAX_KEY_PARTS = 100  # parts of one dotted key: a.b.c...


def nesting_problem(text: str) -> str | None:
    """Why ``text`` is nested too deeply to be parsed safely, or None.

    tomllib recurses once per level of arrays and inline tables (a RecursionError
    past about 1000) and takes quadratic time on long dotted keys (100,000 parts:
    minutes). No config needs more than :data:`MAX_NESTING` levels or
    :data:`MAX_KEY_PARTS` parts, so this linear scan refuses such text first. It skips
    strings and comments; it never decides what valid TOML means.
    """
    depth = 0
    dots = 0
    line = 1
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == "\n":
            line += 1
            dots = 0
        elif ch == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        elif ch in "\"'":
            quote = ch * 3 if text.startswith(ch * 3, i) else ch
            j = i + len(quote)
            while True:
                k = text.find(quote, j)
                if k < 0:
                    return None  # an unterminated string: tomllib says where
                if ch == '"' and len(quote) == 1:
                    backslashes = 0
                    while text[k - 1 - backslashes] == "\\":
                        backslashes += 1
                    if backslashes % 2:
                        j = k + 1
                        continue
                break
            line += text.count("\n", i, k)
            i = k + len(quote)
            continue
        elif ch in "[{":
            depth += 1
            dots = 0
            if depth > MAX_NESTING:
                return (f"line {line}: nested more than {MAX_NESTING} levels deep "
                        "(arrays and inline tables)")
        elif ch in "]}":
            depth = max(0, depth - 1)
            dots = 0
        elif ch in ",=":
            dots = 0
        elif ch == ".":
            dots += 1
            if dots >= MAX_KEY_PARTS:
                return f"line {line}: a dotted key of more than {MAX_KEY_PARTS} parts"
        i += 1
    return None
