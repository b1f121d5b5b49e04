"""The board's model: cards, their history, and the pure rules over them.

No I/O here (the service in :mod:`nomadlab.core.board` stores and loads), no Textual.
Everything a user typed (titles, notes, tags, values) is data: the UI renders it with
``rich.text.Text``, never as markup.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from nomadlab.core.config import DEFAULT_COLUMNS, BoardConfig
from nomadlab.core.durations import compact
from nomadlab.core.model import GpuProcess, HostSample

ARCHIVE = "Archive"
PRIORITY_LABELS = {0: "", 1: "L", 2: "M", 3: "H"}
PRIORITY_NAMES = {0: "none", 1: "low", 2: "medium", 3: "high"}
LINK_KEYS = ("host", "log", "paper", "commit", "branch", "command", "job")
LINK_TITLES = {"host": "host", "log": "log", "paper": "paper", "commit": "commit",
               "branch": "branch", "command": "run command", "job": "Slurm job"}
JOB_LINK = re.compile(r"^[^:\s]{1,64}:\d+(?:_\d+)?$")  # CLUSTER:ID, CLUSTER:ID_TASK
EDITABLE = ("title", "hypothesis", "notes", "tags", "priority", "links", "failed")
KEY_OK = re.compile(r"^[^\s=\x00-\x1f\x7f-\x9f]{1,64}$")
TITLE_LIMIT = 500
VALUE_LIMIT = 2000


class BoardError(ValueError):
    """Something the user can fix: an unknown card, column or board, a bad value."""


@dataclass(slots=True)
class Card:
    id: int
    board: str
    column: str
    position: int
    title: str
    created: float
    updated: float
    entered: float  # when it entered its current column
    hypothesis: str = ""
    notes: str = ""
    tags: list[str] = field(default_factory=list)
    priority: int = 0
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, str] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    failed: str | None = None  # why its run failed; None: not failed
    failed_at: float | None = None
    archived_from: str | None = None
    archived: float | None = None
    deleted: float | None = None
    version: int = 1

    @property
    def priority_label(self) -> str:
        return PRIORITY_LABELS.get(self.priority, "")


@dataclass(slots=True, frozen=True)
class ValueChange:
    """One change of a hyperparameter or metric (value None: removed)."""

    id: int
    kind: str  # "param" | "metric"
    key: str
    value: str | None
    time: float


@dataclass(slots=True, frozen=True)
class Move:
    id: int
    from_col: str | None  # None: the card was created here
    to_col: str
    time: float
    auto: bool
    origin: str
    reason: str | None = None


@dataclass(slots=True)
class CardHistory:
    values: list[ValueChange] = field(default_factory=list)
    moves: list[Move] = field(default_factory=list)

    def params_at(self, when: float) -> dict[str, str]:
        """The hyperparameters as they were at ``when``."""
        out: dict[str, str] = {}
        for change in self.values:
            if change.kind != "param" or change.time > when:
                continue
            if change.value is None:
                out.pop(change.key, None)
            else:
                out[change.key] = change.value
        return out


@dataclass(slots=True, frozen=True)
class Attempt:
    """One time the card entered the run column: the params it ran with and what
    changed since the attempt before."""

    number: int
    started: float
    ended: float | None  # when it left the run column; None: still running
    params: dict[str, str]
    changed: dict[str, tuple[str | None, str | None]]  # key -> (before, now)


@dataclass(slots=True, frozen=True)
class LiveState:
    """What a card's run is doing now (from the fleet and the log tail)."""

    host: str | None = None
    log: str | None = None  # the followed log's name
    utilization: float | None = None  # %, of the run's GPUs or the host's mean
    scope: str = ""  # "process": the run's own GPUs; "host": the host's mean
    gpus: tuple[int, ...] = ()  # the GPUs running the matched process
    last_line: str | None = None  # untrusted text: render it as data
    running_for: float | None = None  # seconds since the card entered the run column
    log_state: str | None = None
    job_state: str | None = None  # the linked Slurm job's state (job=CLUSTER:ID)

    @property
    def empty(self) -> bool:
        return (self.utilization is None and self.last_line is None
                and self.running_for is None)


# --------------------------------------------------------------------------- columns


def board_columns(config: BoardConfig | None) -> list[str]:
    return list(config.columns) if config is not None else list(DEFAULT_COLUMNS)


def resolve_column(columns: Sequence[str], name: str, *, archive: bool = True) -> str:
    """A column by exact name, then case-insensitively, then by unique prefix."""
    wanted = name.strip()
    names = [*columns, ARCHIVE] if archive else list(columns)
    if wanted in names:
        return wanted
    lower = wanted.lower()
    exact = [c for c in names if c.lower() == lower]
    if len(exact) == 1:
        return exact[0]
    prefixed = [c for c in names if c.lower().startswith(lower)] if lower else []
    if len(prefixed) == 1:
        return prefixed[0]
    listed = ", ".join(names)
    if len(prefixed) > 1:
        raise BoardError(f"column {name!r} is ambiguous: {', '.join(prefixed)}")
    raise BoardError(f"no column {name!r} (columns: {listed})")


def run_column(columns: Sequence[str], finished: str) -> str | None:
    """Where cards run: "Training" if the board has it, else the column before the
    finished column (``[board] finished_column``, else the last column)."""
    if "Training" in columns:
        return "Training"
    target = finished_column(columns, finished)
    if target is None:
        return None
    index = columns.index(target)
    return columns[index - 1] if index > 0 else None


def finished_column(columns: Sequence[str], finished: str) -> str | None:
    """Where a "finished" alert moves a card: [board] finished_column, else the last."""
    if finished in columns:
        return finished
    return columns[-1] if columns else None


# --------------------------------------------------------------------------- values


def parse_assignments(items: Iterable[str]) -> dict[str, str | None]:
    """``["lr=3e-4", "batch = 64", "old="]`` -> {"lr": "3e-4", "batch": "64", "old": None}.

    An empty value removes the key. Raises BoardError for anything not KEY=VALUE.
    """
    out: dict[str, str | None] = {}
    for item in items:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not KEY_OK.match(key):
            raise BoardError(f"expected KEY=VALUE (a key without spaces), got {item!r}")
        value = value.strip()
        if len(value) > VALUE_LIMIT:
            raise BoardError(f"the value of {key!r} is longer than {VALUE_LIMIT} characters")
        out[key] = value or None
    return out


def parse_value_lines(text: str) -> dict[str, str]:
    """The form's text area: one ``key = value`` per line; blank lines and # comments skipped."""
    lines = [line.strip() for line in text.splitlines()]
    parsed = parse_assignments(line for line in lines if line and not line.startswith("#"))
    return {k: v for k, v in parsed.items() if v is not None}


def format_value_lines(values: Mapping[str, str]) -> str:
    return "\n".join(f"{k} = {v}" for k, v in values.items())


def value_diff(old: Mapping[str, str], new: Mapping[str, str]) -> dict[str, str | None]:
    """What set_values needs to turn ``old`` into ``new`` (None: remove)."""
    out: dict[str, str | None] = {}
    for key, value in new.items():
        if old.get(key) != value:
            out[key] = value
    for key in old:
        if key not in new:
            out[key] = None
    return out


def parse_tags(text: str | Iterable[str]) -> list[str]:
    """Tags from "a, #b c" or a list: no '#', no spaces or commas, each once, in order."""
    words = re.split(r"[\s,]+", text) if isinstance(text, str) else list(text)
    out: list[str] = []
    for word in words:
        tag = word.strip().lstrip("#").strip()
        if not tag:
            continue
        if not KEY_OK.match(tag) or "," in tag:
            raise BoardError(f"a tag is one word without spaces or commas, got {word!r}")
        if tag not in out:
            out.append(tag)
    return out


def parse_priority(text: str | int | None) -> int:
    if text is None:
        return 0
    if isinstance(text, int):
        if text in PRIORITY_LABELS:
            return text
        raise BoardError(f"priority is 0-3, got {text}")
    word = text.strip().lower()
    for number, label in PRIORITY_LABELS.items():
        if word in (label.lower(), PRIORITY_NAMES[number], str(number)) and (word or not label):
            return number
    raise BoardError(f"priority is H, M, L or none; got {text!r}")


def clean_links(links: Mapping[str, object]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in links.items():
        if key not in LINK_KEYS:
            raise BoardError(f"unknown link {key!r} (links: {', '.join(LINK_KEYS)})")
        text = str(value).strip() if value is not None else ""
        if text and key == "job" and not JOB_LINK.match(text):
            raise BoardError(f"a job link is CLUSTER:ID (like della:4242001), got {text!r}")
        if text:
            out[key] = text[:VALUE_LIMIT]
    return out


def check_title(title: str) -> str:
    title = " ".join(title.split())
    if not title:
        raise BoardError("a card needs a title")
    return title[:TITLE_LIMIT]


# --------------------------------------------------------------------------- history


def stage_times(card: Card, moves: Sequence[Move], now: float) -> dict[str, float]:
    """Seconds spent in each column, over every visit (the current one until now, an
    archived card's until it was archived)."""
    out: dict[str, float] = {}
    ordered = sorted(moves, key=lambda m: (m.time, m.id))
    for move, following in zip(ordered, [*ordered[1:], None], strict=True):
        if move.to_col == ARCHIVE:
            continue
        end = following.time if following is not None else (
            card.archived if card.archived is not None else now)
        out[move.to_col] = out.get(move.to_col, 0.0) + max(0.0, end - move.time)
    return out


def attempts(history: CardHistory, run_col: str | None) -> list[Attempt]:
    """Each entry into the run column, with its params and what changed since the last."""
    if run_col is None:
        return []
    out: list[Attempt] = []
    moves = sorted(history.moves, key=lambda m: (m.time, m.id))
    previous: dict[str, str] | None = None
    for index, move in enumerate(moves):
        if move.to_col != run_col:
            continue
        ended = next((m.time for m in moves[index + 1:]), None)
        params = history.params_at(move.time)
        changed: dict[str, tuple[str | None, str | None]] = {}
        if previous is not None:
            for key in sorted(set(previous) | set(params)):
                if previous.get(key) != params.get(key):
                    changed[key] = (previous.get(key), params.get(key))
        out.append(Attempt(len(out) + 1, move.time, ended, params, changed))
        previous = params
    return out


# --------------------------------------------------------------------------- filter


def matches(card: Card, query: str) -> bool:
    """Every word must match: "#x" a tag starting with x (or card #x); "key=value" a
    param or metric; anything else a substring of the title, tags, text, links, params."""
    words = query.lower().split()
    if not words:
        return True
    haystack: str | None = None
    for word in words:
        if word.startswith("#") and len(word) > 1:
            tag = word[1:]
            if tag.isdigit() and int(tag) == card.id:
                continue
            if any(t.lower().startswith(tag) for t in card.tags):
                continue
            return False
        if haystack is None:
            parts = [card.title, card.hypothesis, card.notes, " ".join(card.tags),
                     card.column, card.failed or "", " ".join(card.links.values()),
                     " ".join(f"{k}={v}" for k, v in card.params.items()),
                     " ".join(f"{k}={v}" for k, v in card.metrics.items())]
            haystack = "\n".join(parts).lower()
        if word not in haystack:
            return False
    return True


# --------------------------------------------------------------------------- live state


def _normalise(command: str) -> str:
    return " ".join(command.split())


def _strip_env(command: str) -> str:
    words = command.split()
    while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
        words.pop(0)
    return " ".join(words)


def matching_gpus(sample: HostSample, command: str) -> list[tuple[int, float | None, GpuProcess]]:
    """GPUs whose processes' command lines contain the card's run command."""
    wanted = _normalise(_strip_env(command))
    if len(wanted) < 3:
        return []
    out = []
    for gpu in sample.gpus:
        for proc in gpu.processes:
            if wanted in _normalise(proc.command):
                out.append((gpu.index, gpu.utilization, proc))
                break
    return out


def gpu_utilization(sample: HostSample | None, command: str | None
                    ) -> tuple[float | None, str, tuple[int, ...]]:
    """(utilization %, scope, GPUs): the run's own GPUs when its command matches a GPU
    process, else the host's mean."""
    if sample is None:
        return None, "", ()
    if command:
        found = matching_gpus(sample, command)
        utils = [u for _i, u, _p in found if u is not None]
        if found:
            return (sum(utils) / len(utils) if utils else None, "process",
                    tuple(i for i, _u, _p in found))
    utils = [g.utilization for g in sample.gpus if g.utilization is not None]
    if not utils:
        return None, "", ()
    return sum(utils) / len(utils), "host", ()


# --------------------------------------------------------------------------- text


def iso(when: float | None) -> str | None:
    if when is None:
        return None
    return datetime.fromtimestamp(when, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def local_time(when: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(when))


def _md_inline(text: str) -> str:
    """One line of user text for Markdown: no newlines, no control characters."""
    return re.sub(r"[\x00-\x1f\x7f-\x9f]", " ", text).strip()


def _md_block(text: str) -> str:
    return re.sub(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", " ", text).strip()


def card_markdown(card: Card, history: CardHistory | None = None, *, now: float,
                  run_col: str | None = None, level: int = 2) -> str:
    """The card as Markdown (copy with c, ``nomadlab board show``, export)."""
    h = "#" * level
    lines = [f"{h} #{card.id} {_md_inline(card.title)}", ""]
    since = compact(now - card.entered)
    lines.append(f"- **Column:** {card.column} (since {local_time(card.entered)}, {since})")
    if card.priority:
        lines.append(f"- **Priority:** {PRIORITY_NAMES[card.priority]}")
    if card.tags:
        lines.append("- **Tags:** " + " ".join(f"#{_md_inline(t)}" for t in card.tags))
    if card.failed is not None:
        lines.append(f"- **Failed:** {_md_inline(card.failed)}")
    for key in LINK_KEYS:
        if key in card.links:
            value = _md_inline(card.links[key]).replace("`", "'")
            lines.append(f"- **{LINK_TITLES[key].capitalize()}:** `{value}`")
    lines.append(f"- **Created:** {local_time(card.created)} · "
                 f"**Updated:** {local_time(card.updated)}"
                 + (f" · **Archived:** {local_time(card.archived)}" if card.archived else ""))
    if card.hypothesis.strip():
        lines += ["", f"{h}# Hypothesis", "", _md_block(card.hypothesis)]
    if card.params:
        lines += ["", f"{h}# Hyperparameters", "", "| key | value |", "|---|---|"]
        lines += [f"| {_md_cell(k)} | {_md_cell(v)} |" for k, v in card.params.items()]
    if history is not None:
        tries = attempts(history, run_col)
        changed = [a for a in tries if a.changed]
        if changed:
            lines += ["", f"{h}# Changes between attempts", ""]
            for attempt in changed:
                what = ", ".join(f"{k} {_md_inline(a or '∅')} → {_md_inline(b or '∅')}"
                                 for k, (a, b) in attempt.changed.items())
                lines.append(f"- attempt {attempt.number} ({local_time(attempt.started)}): "
                             f"{what}")
    if card.metrics:
        lines += ["", f"{h}# Metrics", "", "| metric | value |", "|---|---|"]
        lines += [f"| {_md_cell(k)} | {_md_cell(v)} |" for k, v in card.metrics.items()]
    if history is not None and history.moves:
        times = stage_times(card, history.moves, now)
        if times:
            lines += ["", f"{h}# Time per column", ""]
            lines += [f"- {col}: {compact(sec)}" for col, sec in times.items()]
    if card.notes.strip():
        lines += ["", f"{h}# Notes", "", _md_block(card.notes)]
    return "\n".join(lines) + "\n"


def _md_cell(text: str) -> str:
    return _md_inline(text).replace("|", "\\|")
