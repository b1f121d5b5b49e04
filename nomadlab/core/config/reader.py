"""Reading TOML tables for the config: types, ranges, durations, unknown keys (with a
suggestion), and every problem with its key path and, where found, its line."""

from __future__ import annotations

import difflib
import json
import math
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from nomadlab.core import tomlpos
from nomadlab.core.durations import config_text as format_duration

T = TypeVar("T")
class ConfigError(Exception):
    """A config file that cannot be used, with every problem found in it."""

    def __init__(self, source: Path | None, problems: list[str]) -> None:
        self.source = source
        self.problems = problems
        where = str(source) if source is not None else "config"
        if len(problems) == 1:
            text = f"{where}: {problems[0]}"
        else:
            text = f"{where}: {len(problems)} problems\n" + "\n".join(f"  {p}" for p in problems)
        super().__init__(text)


# --------------------------------------------------------------------------- values


_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)\s*d)?\s*(?:(\d+(?:\.\d+)?)\s*h)?\s*"
                       r"(?:(\d+(?:\.\d+)?)\s*m(?!s))?\s*(?:(\d+(?:\.\d+)?)\s*s)?\s*"
                       r"(?:(\d+(?:\.\d+)?)\s*ms)?\s*$")


def parse_duration(value: object) -> float:
    """'90s', '15m', '1h30m', '2d', '250ms' or a number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as \"15m\" or a number of seconds")
    if isinstance(value, int | float):
        if value < 0 or not math.isfinite(value):
            raise ValueError("expected a duration of zero or more")
        return float(value)
    if isinstance(value, str):
        match = _DURATION.match(value)
        if match and any(match.groups()):
            d, h, m, s, ms = (float(g) if g else 0.0 for g in match.groups())
            return d * 86400 + h * 3600 + m * 60 + s + ms / 1000
    raise ValueError(f"expected a duration such as \"15m\" or \"90s\", got {value!r}")


# --------------------------------------------------------------------------- reader


class _Problems:
    def __init__(self, text: str) -> None:
        self.text = text
        self.items: list[str] = []
        self.labels: dict[str, str] = {}  # "hosts[1]" -> 'hosts[1] ("b")'

    def add(self, path: str, message: str) -> None:
        line = tomlpos.line_of(self.text, path) if self.text else None
        where = f"line {line}: " if line is not None else ""
        shown = path
        for prefix, label in self.labels.items():
            if shown == prefix or shown.startswith(prefix + "."):
                shown = label + shown[len(prefix):]
                break
        self.items.append(f"{where}{shown}: {message}")


_MISSING: Any = object()
# Every number in the config has a range. A duration with no tighter limit of its own
# is at most this long (a year); a number with none at most MAX_NUMBER.
MAX_DURATION = 365 * 86400.0
MAX_NUMBER = 1e9
HOUR = 3600.0
DAY = 86400.0
# TOML nested deeper than Python can parse: the config is refused, not a traceback.
MAX_NESTING = "more than Python's recursion limit allows"

_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


class Table:
    """Reads one TOML table, checking types, and reports keys nobody read."""

    def __init__(self, data: dict[str, Any], path: str, problems: _Problems) -> None:
        self.data = data
        self.path = path
        self.problems = problems
        self.seen: set[str] = set()

    def _key_path(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def problem(self, key: str | None, message: str) -> None:
        self.problems.add(self._key_path(key) if key else self.path, message)

    def value(self, key: str, kind: type[T], default: T, *, minimum: float | None = None,
              maximum: float | None = None, choices: Iterable[str] | None = None,
              required: bool = False) -> T:
        self.seen.add(key)
        if key not in self.data:
            if required:
                self.problem(key, f"missing; expected {_TYPE_NAMES.get(kind, kind.__name__)}")
            return default
        raw = self.data[key]
        ok = isinstance(raw, kind) and not (kind is int and isinstance(raw, bool))
        if kind is float and isinstance(raw, int) and not isinstance(raw, bool):
            raw, ok = float(raw), True
        if not ok:
            self.problem(key, f"expected {_TYPE_NAMES.get(kind, kind.__name__)}, got {_show(raw)}")
            return default
        if isinstance(raw, int | float) and not isinstance(raw, bool):
            if maximum is None:
                maximum = MAX_NUMBER
            if kind is float and not math.isfinite(raw):
                self.problem(key, f"expected a finite number, got {raw}")
                return default
            if (minimum is not None and raw < minimum) or (maximum is not None
                                                            and raw > maximum):
                self.problem(key, _out_of_range(minimum, maximum, raw, "{:g}".format))
                return default
        if choices is not None and isinstance(raw, str):
            options = list(choices)
            if raw not in options:
                self.problem(key, f"expected one of {', '.join(options)}; got {raw!r}"
                             + _suggest(raw, options))
                return default
        return raw  # type: ignore[no-any-return]

    def text(self, key: str, default: str | None = None, *, required: bool = False,
             choices: Iterable[str] | None = None) -> str | None:
        value = self.value(key, str, _MISSING if default is None else default,
                           required=required, choices=choices)
        if value is _MISSING:
            return None
        if required and not value.strip():
            self.problem(key, "must not be empty")
        if any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in value):
            self.problem(key, "must not contain control characters")
        return value

    def string_list(self, key: str, default: list[str]) -> list[str]:
        self.seen.add(key)
        if key not in self.data:
            return list(default)
        raw = self.data[key]
        if isinstance(raw, str):
            return [raw]
        if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
            self.problem(key, f"expected a list of strings, got {_show(raw)}")
            return list(default)
        return list(raw)

    def duration(self, key: str, default: float, *, minimum: float = 0.0,
                 maximum: float = MAX_DURATION) -> float:
        self.seen.add(key)
        if key not in self.data:
            return default
        try:
            seconds = parse_duration(self.data[key])
        except ValueError as exc:
            self.problem(key, str(exc))
            return default
        if seconds < minimum:
            self.problem(key, f"must be at least {format_duration(minimum)}")
            return default
        if seconds > maximum:
            self.problem(key, _out_of_range(minimum, maximum, seconds, format_duration,
                                            both=True))
            return default
        return seconds

    def table(self, key: str) -> Table:
        self.seen.add(key)
        raw = self.data.get(key, {})
        if not isinstance(raw, dict):
            self.problem(key, f"expected a table ([{self._key_path(key)}]), got {_show(raw)}")
            raw = {}
        return Table(raw, self._key_path(key), self.problems)

    def tables(self, key: str) -> list[Table]:
        """An array of tables ([[key]])."""
        self.seen.add(key)
        raw = self.data.get(key, [])
        if not isinstance(raw, list) or not all(isinstance(v, dict) for v in raw):
            self.problem(key, f"expected one or more [[{self._key_path(key)}]] tables")
            return []
        out = []
        for i, v in enumerate(raw):
            path = f"{self._key_path(key)}[{i}]"
            if isinstance(v.get("name"), str):  # written as TOML writes it: "name"
                self.problems.labels[path] = f"{path} ({json.dumps(v['name'], ensure_ascii=False)})"
            out.append(Table(v, path, self.problems))
        return out

    def finish(self) -> None:
        known = sorted(self.seen)
        for key in self.data:
            if key not in self.seen:
                self.problem(key, "unknown key" + _suggest(key, known))


def _out_of_range(minimum: float | None, maximum: float | None, got: float,
                  show: Callable[[float], str], *, both: bool = False) -> str:
    """'must be at least 1, got 0'; above the top, or with ``both``, the whole range:
    'must be between 100ms and 1h, got 1e+308s'."""
    shown = show(got) if abs(got) < 1e15 else f"{got:g}"
    if minimum is not None and got < minimum:
        if both and maximum is not None:
            return f"must be between {show(minimum)} and {show(maximum)}, got {shown}"
        return f"must be at least {show(minimum)}, got {shown}"
    if both and minimum is not None and maximum is not None:
        return f"must be between {show(minimum)} and {show(maximum)}, got {shown}"
    return f"must be at most {show(maximum or 0.0)}, got {shown}"


def _show(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def _suggest(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
