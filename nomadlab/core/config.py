"""The config file: where it is, what it may say, and a clear message when it is wrong.

``load_config`` reads TOML with tomllib and validates every key it knows; an unknown
key is an error with a suggestion (a typo would otherwise be silently ignored). All
problems of a file are reported at once, each with its key path and, where the
scanner finds it, its line.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import tomllib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from nomadlab.core import paths, tomlpos
from nomadlab.core.durations import config_text as format_duration

T = TypeVar("T")

PANE_KINDS = ("fleet", "logs", "focus", "papers", "board", "jobs")
DEFAULT_PANES = PANE_KINDS[:5]  # the jobs pane is asked for: panes = [..., "jobs"]
LAYOUTS = ("columns", "rows", "grid", "main-left", "main-top")
SORT_KEYS = ("name", "state", "utilization", "memory", "cost")
RESERVED_HOST_NAMES = ("local",)


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


# --------------------------------------------------------------------------- the schema


@dataclass(slots=True)
class HostConfig:
    name: str
    hostname: str
    user: str | None = None
    port: int | None = None
    identity_file: str | None = None
    jump: str | None = None
    known_hosts: str | None = None
    hourly_cost: float | None = None
    python: str = "python3"
    enabled: bool = True
    tags: list[str] = field(default_factory=list)
    kwh_price: float | None = None  # price of a kWh: the week report's energy cost


@dataclass(slots=True)
class SshSettings:
    connect_timeout: float = 15.0
    login_timeout: float = 30.0
    keepalive_interval: float = 10.0
    keepalive_count_max: int = 2
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    config_file: str = "~/.ssh/config"
    # None: what ssh uses (UserKnownHostsFile / GlobalKnownHostsFile from ssh_config,
    # by default ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts); a path: only that file
    known_hosts: str | None = None


@dataclass(slots=True)
class Thresholds:
    temperature_warn: float = 80.0
    temperature_crit: float = 88.0
    memory_warn: float = 85.0  # percent
    memory_crit: float = 95.0
    power_warn: float = 95.0  # percent of the limit
    free_utilization: float = 5.0  # percent: at most this busy to count as free
    free_memory_mib: float = 1024.0


@dataclass(slots=True)
class FleetSettings:
    interval: float = 1.0
    history: float = 600.0  # seconds of sparkline history kept per GPU
    stale_after: float | None = None  # default: max(5 s, 3 intervals)
    sort: str = "name"
    thresholds: Thresholds = field(default_factory=Thresholds)
    read_only: bool = False  # true: no signal, no new tmux session (watching only)

    @property
    def stale_seconds(self) -> float:
        if self.stale_after is not None:
            return self.stale_after
        return max(5.0, 3 * self.interval)


@dataclass(slots=True)
class WorkspaceConfig:
    panes: list[str] = field(default_factory=lambda: list(DEFAULT_PANES))
    layout: str = "main-left"
    main: str = "fleet"
    sizes: dict[str, int] = field(default_factory=dict)
    narrow_width: int = 100
    narrow_height: int = 30
    remember: bool = True
    log: str | None = None  # the log the log pane follows (default: the most recently active)


@dataclass(slots=True)
class LogConfig:
    name: str
    host: str  # a [[hosts]] name, or "local"
    path: str  # may start with ~ and may be a glob (the newest match is followed)
    lines: int | None = None  # lines shown from the end at start (default: [tail].lines)


@dataclass(slots=True)
class TailSettings:
    lines: int = 500  # lines from the end of a file when a tail starts
    max_lines: int = 100_000  # lines kept in memory per log
    poll: float = 0.2  # how often the host checks the file for new data
    glob_every: float = 2.0  # how often a glob is re-evaluated for a newer file


ALERT_KINDS = ("log", "gpu_idle", "host_down", "process_exit", "temperature",
               "gpu_health", "job", "xid")
SEVERITIES = ("info", "warning", "error")
OUTCOMES = ("finished", "failed")
WEBHOOK_KINDS = ("json", "slack", "discord", "ntfy", "telegram")


@dataclass(slots=True)
class AlertRule:
    name: str
    when: str  # one of ALERT_KINDS
    severity: str = "warning"
    cooldown: float = 600.0
    logs: list[str] = field(default_factory=lambda: ["*"])  # log names or globs (when=log)
    hosts: list[str] = field(default_factory=lambda: ["*"])  # host names or globs
    pattern: str | None = None  # regex: log lines (log), commands (process_exit)
    duration: float = 0.0  # how long a condition must hold (gpu_idle, host_down, temperature)
    utilization: float = 5.0  # gpu_idle: at or below this % counts as idle
    limit: float = 85.0  # temperature: above this many degrees C
    outcome: str | None = None  # "finished" / "failed": what it means for a run (board)
    paid_only: bool = False  # gpu_idle: only hosts with hourly_cost
    channels: list[str] | None = None  # None: every configured channel


@dataclass(slots=True)
class WebhookConfig:
    name: str
    kind: str  # one of WEBHOOK_KINDS
    secret: str  # keyring entry (or NOMADLAB_SECRET_<NAME> variable) holding URL or token
    chat_id: str | None = None  # telegram
    min_severity: str = "info"
    timeout: float = 10.0


@dataclass(slots=True)
class NotifySettings:
    default_rules: bool = True
    toast: bool = True
    bell: bool = True
    desktop: bool = True  # OSC 777 / OSC 9 through the terminal (works over SSH, tmux)
    notify_send: bool = True  # where notify-send and a display exist
    min_severity: str = "info"  # below this, only the alerts screen hears of it
    webhooks: list[WebhookConfig] = field(default_factory=list)
    retries: int = 5


DEFAULT_COLUMNS = ("Hypothesis", "Data Prep", "Training", "Evaluation", "Deployment")


@dataclass(slots=True)
class BoardConfig:
    """One board (a project) with its own columns; Archive is always there, hidden."""

    name: str
    columns: list[str] = field(default_factory=lambda: list(DEFAULT_COLUMNS))
    wip: dict[str, int] = field(default_factory=dict)  # column -> WIP limit


@dataclass(slots=True)
class BoardSettings:
    default: str = "main"  # the board shown first
    editor: str | None = None  # for long text fields; default $VISUAL, $EDITOR, then vi
    finished_column: str = "Evaluation"  # where a "finished" run alert moves its card
    boards: list[BoardConfig] = field(default_factory=list)


@dataclass(slots=True)
class PapersSettings:
    arxiv_api: str = "https://export.arxiv.org/api/query"
    crossref_api: str = "https://api.crossref.org/works"
    weekly_cap: int = 2  # papers started per ISO week
    review_day: str = "monday"  # the weekly review is due from this day
    arxiv_interval: float = 3.0  # at most one arXiv request per this many seconds
    timeout: float = 10.0
    mailto: str | None = None  # Crossref's polite pool: your email


@dataclass(slots=True)
class FocusPreset:
    name: str
    minutes: float
    kind: str = "deep"  # deep | sprint | pomodoro | light: deep guards against alerts


FOCUS_KINDS = ("deep", "sprint", "pomodoro", "light")
DEFAULT_PRESETS = (
    FocusPreset("sprint", 90, "sprint"),
    FocusPreset("deep", 240, "deep"),
    FocusPreset("pomodoro", 25, "pomodoro"),
)


@dataclass(slots=True)
class FocusSettings:
    presets: list[FocusPreset] = field(default_factory=lambda: list(DEFAULT_PRESETS))
    daily_target_hours: float = 4.0
    day_starts: str = "04:00"  # a session before this belongs to the previous day
    retro_day: str = "friday"


WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


CLUSTER_MIN_REFRESH = 5.0  # squeue is an RPC to the controller: never more often


@dataclass(slots=True)
class ClusterConfig:
    """A Slurm cluster reached through a login node ([[clusters]])."""

    name: str
    host: str  # a [[hosts]] name or an ~/.ssh/config alias
    partitions: list[str] = field(default_factory=list)  # empty: every partition
    all_users: bool = False
    refresh: float = 15.0
    timeout: float = 20.0  # a Slurm command that takes longer makes the cluster stale


def _read_cluster(t: Table) -> ClusterConfig | None:
    name = t.text("name", required=True)
    host = t.text("host", required=True)
    cluster = ClusterConfig(
        name=name or "",
        host=host or "",
        partitions=t.string_list("partitions", []),
        all_users=t.value("all_users", bool, False),
        refresh=t.duration("refresh", 15.0, minimum=CLUSTER_MIN_REFRESH),
        timeout=t.duration("timeout", 20.0, minimum=1.0),
    )
    t.finish()
    if name and (not _NAME_OK.match(name) or ":" in name):
        t.problem("name", "must be 1 to 64 printable characters without ':'")
    if not name or not host:
        return None
    return cluster


def _read_clusters(root: Table) -> list[ClusterConfig]:
    clusters: list[ClusterConfig] = []
    seen: dict[str, int] = {}
    for index, table in enumerate(root.tables("clusters")):
        cluster = _read_cluster(table)
        if cluster is None:
            continue
        if cluster.name in seen:
            table.problem("name", f"duplicate cluster name {cluster.name!r} "
                          f"(also clusters[{seen[cluster.name]}])")
        seen.setdefault(cluster.name, index)
        clusters.append(cluster)
    return clusters
SOURCE_KINDS = ("prometheus",)


@dataclass(slots=True)
class SourceConfig:
    """A ``[[sources]]`` entry: hosts that come from a monitoring system, not SSH."""

    name: str
    kind: str
    url: str
    secret: str | None = None  # bearer token: keyring or NOMADLAB_SECRET_<NAME>
    selector: str = ""  # PromQL label matchers added to every query, without braces
    host_label: str | None = None  # None: Hostname, then instance
    refresh: float = 5.0
    timeout: float = 10.0
    hourly_cost: float | None = None  # default per host of this source


def _strip_braces(selector: str) -> str:
    """'{cluster="a100"}' -> 'cluster="a100"' (matchers are merged into each query)."""
    text = selector.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    return text


_LABEL_OK = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _read_source(t: Table) -> SourceConfig | None:
    name = t.text("name", required=True)
    kind = t.text("kind", required=True, choices=SOURCE_KINDS)
    url = t.text("url", required=True)
    selector = t.text("selector", "") or ""
    host_label = t.text("host_label")
    source = SourceConfig(
        name=name or "", kind=kind or "prometheus", url=url or "",
        secret=t.text("secret"),
        selector=_strip_braces(selector),
        host_label=host_label,
        refresh=t.duration("refresh", 5.0, minimum=1.0),
        timeout=t.duration("timeout", 10.0, minimum=0.1),
        hourly_cost=t.value("hourly_cost", float, None, minimum=0),
    )
    t.finish()
    if name and not _NAME_OK.match(name):
        t.problem("name", "must be 1 to 64 printable characters")
    if url and not re.match(r"^https?://[^\s/]+", url):
        t.problem("url", f"expected an http:// or https:// URL, got {url!r}")
    if host_label is not None and not _LABEL_OK.match(host_label):
        t.problem("host_label", f"not a Prometheus label name: {host_label!r}")
    if "{" in source.selector or "}" in source.selector:
        t.problem("selector", "expected label matchers such as '{cluster=\"a100\"}'")
    if not name or not kind or not url:
        return None
    return source


def _read_hosts_cost(t: Table) -> dict[str, float]:
    out: dict[str, float] = {}
    for key in list(t.data):
        value = t.value(key, float, None, minimum=0)
        if value is not None:
            out[key] = value
    t.finish()
    return out


@dataclass(slots=True)
class Config:
    source: Path | None = None  # None: defaults, no file
    show_local: bool = True
    data_dir: Path = field(default_factory=paths.data_dir)
    hosts: list[HostConfig] = field(default_factory=list)
    ssh: SshSettings = field(default_factory=SshSettings)
    fleet: FleetSettings = field(default_factory=FleetSettings)
    workspace: WorkspaceConfig = field(default_factory=WorkspaceConfig)
    logs: list[LogConfig] = field(default_factory=list)
    tail: TailSettings = field(default_factory=TailSettings)
    alerts: list[AlertRule] = field(default_factory=list)
    notify: NotifySettings = field(default_factory=NotifySettings)
    board: BoardSettings = field(default_factory=BoardSettings)
    papers: PapersSettings = field(default_factory=PapersSettings)
    focus: FocusSettings = field(default_factory=FocusSettings)
    clusters: list[ClusterConfig] = field(default_factory=list)

    def cluster(self, name: str) -> ClusterConfig | None:
        return next((c for c in self.clusters if c.name == name), None)
    sources: list[SourceConfig] = field(default_factory=list)
    hosts_cost: dict[str, float] = field(default_factory=dict)  # [hosts_cost] host -> per hour

    def host(self, name: str) -> HostConfig | None:
        for host in self.hosts:
            if host.name == name:
                return host
        return None

    @property
    def database(self) -> Path:
        return self.data_dir / "nomadlab.db"


_NAME_OK = re.compile(r"^[^\x00-\x1f\x7f-\x9f]{1,64}$")


def _read_host(t: Table) -> HostConfig | None:
    name = t.text("name", required=True)
    hostname = t.text("hostname", required=True)
    host = HostConfig(
        name=name or "",
        hostname=hostname or "",
        user=t.text("user"),
        port=t.value("port", int, None, minimum=1, maximum=65535),
        identity_file=t.text("identity_file"),
        jump=t.text("jump"),
        known_hosts=t.text("known_hosts"),
        hourly_cost=t.value("hourly_cost", float, None, minimum=0, maximum=100_000),
        python=t.text("python", "python3") or "python3",
        enabled=t.value("enabled", bool, True),
        tags=t.string_list("tags", []),
        kwh_price=t.value("kwh_price", float, None, minimum=0),
    )
    t.finish()
    if name and not _NAME_OK.match(name):
        t.problem("name", "must be 1 to 64 printable characters")
    if name in RESERVED_HOST_NAMES:
        t.problem("name", f"{name!r} is reserved for this machine; choose another name")
    if not name or not hostname:
        return None
    return host


def host_problems(data: dict[str, Any]) -> list[str]:
    """What is wrong with one [[hosts]] table on its own: ``port: must be at most ...``."""
    problems = _Problems("")
    _read_host(Table(data, "", problems))
    return problems.items


def _read_thresholds(t: Table) -> Thresholds:
    d = Thresholds()
    out = Thresholds(
        temperature_warn=t.value("temperature_warn", float, d.temperature_warn, minimum=0,
                                 maximum=200),
        temperature_crit=t.value("temperature_crit", float, d.temperature_crit, minimum=0,
                                 maximum=200),
        memory_warn=t.value("memory_warn", float, d.memory_warn, minimum=0, maximum=100),
        memory_crit=t.value("memory_crit", float, d.memory_crit, minimum=0, maximum=100),
        power_warn=t.value("power_warn", float, d.power_warn, minimum=0, maximum=200),
        free_utilization=t.value("free_utilization", float, d.free_utilization,
                                 minimum=0, maximum=100),
        free_memory_mib=t.value("free_memory_mib", float, d.free_memory_mib, minimum=0,
                                maximum=10_000_000),
    )
    t.finish()
    return out


def _read_fleet(t: Table) -> FleetSettings:
    d = FleetSettings()
    stale = (t.duration("stale_after", -1.0, minimum=0.5, maximum=DAY)
             if "stale_after" in t.data else None)
    out = FleetSettings(
        interval=t.duration("interval", d.interval, minimum=0.1, maximum=HOUR),
        history=t.duration("history", d.history, minimum=60, maximum=DAY),
        stale_after=stale if stale is not None and stale >= 0 else None,
        sort=t.text("sort", d.sort, choices=SORT_KEYS) or d.sort,
        thresholds=_read_thresholds(t.table("thresholds")),
        read_only=t.value("read_only", bool, d.read_only),
    )
    t.finish()
    return out


def _read_ssh(t: Table) -> SshSettings:
    d = SshSettings()
    out = SshSettings(
        connect_timeout=t.duration("connect_timeout", d.connect_timeout, minimum=1,
                                   maximum=HOUR),
        login_timeout=t.duration("login_timeout", d.login_timeout, minimum=1, maximum=HOUR),
        keepalive_interval=t.duration("keepalive_interval", d.keepalive_interval, minimum=1,
                                      maximum=HOUR),
        keepalive_count_max=t.value("keepalive_count_max", int, d.keepalive_count_max,
                                    minimum=1, maximum=100),
        backoff_initial=t.duration("backoff_initial", d.backoff_initial, minimum=0.1,
                                   maximum=HOUR),
        backoff_max=t.duration("backoff_max", d.backoff_max, minimum=1, maximum=DAY),
        config_file=t.text("config_file", d.config_file) or d.config_file,
        known_hosts=t.text("known_hosts") or None,
    )
    t.finish()
    return out


def _read_workspace(t: Table) -> WorkspaceConfig:
    d = WorkspaceConfig()
    panes = t.string_list("panes", d.panes)
    for pane in panes:
        if pane not in PANE_KINDS:
            t.problem("panes", f"unknown pane {pane!r}; panes are {', '.join(PANE_KINDS)}"
                      + _suggest(pane, list(PANE_KINDS)))
    panes = [p for p in panes if p in PANE_KINDS] or list(d.panes)
    sizes_table = t.table("sizes")
    sizes: dict[str, int] = {}
    for pane in list(sizes_table.data):
        if pane not in PANE_KINDS:
            sizes_table.seen.add(pane)
            sizes_table.problem(pane, "unknown pane" + _suggest(pane, list(PANE_KINDS)))
            continue
        sizes[pane] = sizes_table.value(pane, int, 1, minimum=1, maximum=12)
    sizes_table.finish()
    out = WorkspaceConfig(
        panes=panes,
        layout=t.text("layout", d.layout, choices=LAYOUTS) or d.layout,
        main=t.text("main", d.main, choices=PANE_KINDS) or d.main,
        sizes=sizes,
        narrow_width=t.value("narrow_width", int, d.narrow_width, minimum=20, maximum=1000),
        narrow_height=t.value("narrow_height", int, d.narrow_height, minimum=5, maximum=1000),
        remember=t.value("remember", bool, d.remember),
        log=t.text("log"),
    )
    t.finish()
    return out


def _read_log(t: Table) -> LogConfig | None:
    name = t.text("name", required=True)
    host = t.text("host", required=True)
    path = t.text("path", required=True)
    lines = t.value("lines", int, -1, minimum=0, maximum=1_000_000)
    t.finish()
    if not name or not host or not path:
        return None
    return LogConfig(name=name, host=host, path=path, lines=None if lines < 0 else lines)


def _read_tail(t: Table) -> TailSettings:
    d = TailSettings()
    out = TailSettings(
        lines=t.value("lines", int, d.lines, minimum=0, maximum=1_000_000),
        max_lines=t.value("max_lines", int, d.max_lines, minimum=100, maximum=10_000_000),
        poll=t.duration("poll", d.poll, minimum=0.02, maximum=60),
        glob_every=t.duration("glob_every", d.glob_every, minimum=0.1, maximum=HOUR),
    )
    t.finish()
    return out


def _check_regex(t: Table, key: str, pattern: str | None) -> None:
    if pattern is None:
        return
    from nomadlab.core.patterns import PatternError, compile_user

    try:
        compile_user(pattern)
    except PatternError as exc:
        t.problem(key, f"not a valid regular expression: {exc}")


def _read_alert(t: Table) -> AlertRule | None:
    name = t.text("name", required=True)
    when = t.text("when", required=True, choices=ALERT_KINDS)
    d = AlertRule(name="", when="log")
    pattern = t.text("pattern")
    _check_regex(t, "pattern", pattern)
    rule = AlertRule(
        name=name or "",
        when=when or "log",
        severity=t.text("severity", d.severity, choices=SEVERITIES) or d.severity,
        cooldown=t.duration("cooldown", d.cooldown),
        logs=t.string_list("logs", d.logs),
        hosts=t.string_list("hosts", d.hosts),
        pattern=pattern,
        duration=t.duration("duration", d.duration),
        utilization=t.value("utilization", float, d.utilization, minimum=0, maximum=100),
        limit=t.value("limit", float, d.limit, minimum=0, maximum=200),
        outcome=t.text("outcome", choices=OUTCOMES),
        paid_only=t.value("paid_only", bool, d.paid_only),
        channels=t.string_list("channels", []) if "channels" in t.data else None,
    )
    if "for" in t.data:  # gpu_health: how long a HW slowdown or PCIe downgrade must last
        rule.duration = t.duration("for", rule.duration)
    t.finish()
    if when == "log" and not pattern:
        t.problem("pattern", "a log alert needs a pattern (a regular expression)")
    if when == "process_exit" and not pattern:
        t.problem("pattern", "a process_exit alert needs a pattern matching the command")
    if not name or not when:
        return None
    return rule


def _read_webhook(t: Table) -> WebhookConfig | None:
    name = t.text("name", required=True)
    kind = t.text("kind", required=True, choices=WEBHOOK_KINDS)
    secret = t.text("secret", required=True)
    for forbidden in ("url", "token"):
        if forbidden in t.data:
            t.seen.add(forbidden)
            t.problem(forbidden, "secrets do not belong in the config file: store it with "
                      "`nomadlab secret set NAME` and name that entry in `secret`")
    hook = WebhookConfig(
        name=name or "",
        kind=kind or "json",
        secret=secret or "",
        chat_id=t.text("chat_id"),
        min_severity=t.text("min_severity", "info", choices=SEVERITIES) or "info",
        timeout=t.duration("timeout", 10.0, minimum=1, maximum=600),
    )
    t.finish()
    if kind == "telegram" and not hook.chat_id:
        t.problem("chat_id", "a telegram webhook needs chat_id")
    if not name or not kind or not secret:
        return None
    return hook


def _read_notify(t: Table) -> NotifySettings:
    d = NotifySettings()
    hooks = [h for h in (_read_webhook(w) for w in t.tables("webhooks")) if h is not None]
    out = NotifySettings(
        default_rules=t.value("default_rules", bool, d.default_rules),
        toast=t.value("toast", bool, d.toast),
        bell=t.value("bell", bool, d.bell),
        desktop=t.value("desktop", bool, d.desktop),
        notify_send=t.value("notify_send", bool, d.notify_send),
        min_severity=t.text("min_severity", d.min_severity, choices=SEVERITIES)
        or d.min_severity,
        webhooks=hooks,
        retries=t.value("retries", int, d.retries, minimum=0, maximum=20),
    )
    t.finish()
    return out


_CLOCK_TIME = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def _read_board(t: Table) -> BoardSettings:
    d = BoardSettings()
    boards: list[BoardConfig] = []
    for bt in t.tables("boards"):
        name = bt.text("name", required=True) or ""
        columns = bt.string_list("columns", list(DEFAULT_COLUMNS))
        if not columns:
            bt.problem("columns", "a board needs at least one column")
            columns = list(DEFAULT_COLUMNS)
        if len(set(columns)) != len(columns):
            bt.problem("columns", "column names must be unique")
        if "Archive" in columns:
            bt.problem("columns", "Archive is built in (hidden); do not list it")
        wip_table = bt.table("wip")
        wip: dict[str, int] = {}
        for column in list(wip_table.data):
            if column not in columns:
                wip_table.seen.add(column)
                wip_table.problem(column, "not a column of this board" + _suggest(column, columns))
                continue
            wip[column] = wip_table.value(column, int, 0, minimum=1, maximum=1000)
        wip_table.finish()
        bt.finish()
        if name:
            boards.append(BoardConfig(name, columns, wip))
    out = BoardSettings(
        default=t.text("default", d.default) or d.default,
        editor=t.text("editor"),
        finished_column=t.text("finished_column", d.finished_column) or d.finished_column,
        boards=boards,
    )
    t.finish()
    return out


def _read_papers(t: Table) -> PapersSettings:
    d = PapersSettings()
    out = PapersSettings(
        arxiv_api=t.text("arxiv_api", d.arxiv_api) or d.arxiv_api,
        crossref_api=t.text("crossref_api", d.crossref_api) or d.crossref_api,
        weekly_cap=t.value("weekly_cap", int, d.weekly_cap, minimum=0, maximum=100),
        review_day=t.text("review_day", d.review_day, choices=WEEKDAYS) or d.review_day,
        arxiv_interval=t.duration("arxiv_interval", d.arxiv_interval, maximum=DAY),
        timeout=t.duration("timeout", d.timeout, minimum=1, maximum=600),
        mailto=t.text("mailto"),
    )
    for key in ("arxiv_api", "crossref_api"):
        url = getattr(out, key)
        if not url.startswith(("http://", "https://")):
            t.problem(key, f"expected an http(s) URL, got {url!r}")
    t.finish()
    return out


def _read_focus(t: Table) -> FocusSettings:
    d = FocusSettings()
    presets = list(d.presets)
    if "presets" in t.data:
        presets = []
        for pt in t.tables("presets"):
            name = pt.text("name", required=True) or ""
            minutes = pt.value("minutes", float, 0.0, minimum=1, maximum=24 * 60)
            kind = pt.text("kind", "deep", choices=FOCUS_KINDS) or "deep"
            pt.finish()
            if name and minutes:
                presets.append(FocusPreset(name, minutes, kind))
    names = [p.name for p in presets]
    if len(set(names)) != len(names):
        t.problem("presets", "preset names must be unique")
    day_starts = t.text("day_starts", d.day_starts) or d.day_starts
    if not _CLOCK_TIME.match(day_starts):
        t.problem("day_starts", f"expected a time like \"04:00\", got {day_starts!r}")
        day_starts = d.day_starts
    out = FocusSettings(
        presets=presets,
        daily_target_hours=t.value("daily_target_hours", float, d.daily_target_hours,
                                   minimum=0, maximum=24),
        day_starts=day_starts,
        retro_day=t.text("retro_day", d.retro_day, choices=WEEKDAYS) or d.retro_day,
    )
    t.finish()
    return out


def parse_config(data: dict[str, Any], text: str = "", source: Path | None = None) -> Config:
    problems = _Problems(text)
    root = Table(data, "", problems)
    hosts: list[HostConfig] = []
    names: dict[str, int] = {}
    # index: the host's place in the file (a host with problems is left out of ``hosts``).
    for index, table in enumerate(root.tables("hosts")):
        host = _read_host(table)
        if host is None:
            continue
        hosts.append(host)
        if host.name in names:
            problems.add(f"hosts[{index}].name",
                         f"duplicate host name {host.name!r} (also hosts[{names[host.name]}])")
        names.setdefault(host.name, index)
        if host.jump is not None and host.jump == host.name:
            problems.add(f"hosts[{index}].jump", "a host cannot be its own jump host")
    data_dir_text = root.text("data_dir")
    config = Config(
        source=source,
        show_local=root.value("show_local", bool, True),
        data_dir=Path(os.path.expanduser(data_dir_text)) if data_dir_text else paths.data_dir(),
        hosts=hosts,
        ssh=_read_ssh(root.table("ssh")),
        fleet=_read_fleet(root.table("fleet")),
        workspace=_read_workspace(root.table("workspace")),
        logs=[log for log in (_read_log(t) for t in root.tables("logs")) if log is not None],
        tail=_read_tail(root.table("tail")),
        alerts=[a for a in (_read_alert(t) for t in root.tables("alerts")) if a is not None],
        notify=_read_notify(root.table("notify")),
        board=_read_board(root.table("board")),
        papers=_read_papers(root.table("papers")),
        focus=_read_focus(root.table("focus")),
        clusters=_read_clusters(root),
        sources=[s for s in (_read_source(t) for t in root.tables("sources")) if s is not None],
        hosts_cost=_read_hosts_cost(root.table("hosts_cost")),
    )
    root.finish()
    seen_sources: dict[str, int] = {}
    for index, src in enumerate(config.sources):
        if src.name in seen_sources or src.name in RESERVED_HOST_NAMES:
            problems.add(f"sources[{index}].name", f"duplicate source name {src.name!r}")
        seen_sources.setdefault(src.name, index)
    host_names = {h.name for h in hosts} | set(RESERVED_HOST_NAMES)
    seen_logs: dict[str, int] = {}
    for index, log in enumerate(config.logs):
        if log.name in seen_logs:
            problems.add(f"logs[{index}].name",
                         f"duplicate log name {log.name!r} (also logs[{seen_logs[log.name]}])")
        seen_logs.setdefault(log.name, index)
        if log.host not in host_names:
            problems.add(f"logs[{index}].host", f"unknown host {log.host!r}; hosts are "
                         + ", ".join(sorted(host_names)) + _suggest(log.host, sorted(host_names)))
    if config.workspace.log is not None and config.workspace.log not in seen_logs:
        problems.add("workspace.log", f"no [[logs]] entry is named {config.workspace.log!r}")
    hook_names = [h.name for h in config.notify.webhooks]
    channel_names = {"toast", "bell", "desktop", "notify_send", *hook_names}
    for index, rule in enumerate(config.alerts):
        for channel in rule.channels or []:
            if channel not in channel_names:
                problems.add(f"alerts[{index}].channels", f"unknown channel {channel!r}; "
                             "channels are " + ", ".join(sorted(channel_names)))
    if problems.items:
        raise ConfigError(source, problems.items)
    return config


def load_config_text(text: str, source: Path | None = None) -> Config:
    deep = tomlpos.nesting_problem(text)
    if deep is not None:
        raise ConfigError(source, [f"{deep}: not parsed"])
    try:
        data = tomllib.loads(text)
    except RecursionError:
        raise ConfigError(source, [f"TOML nested too deeply ({MAX_NESTING})"]) from None
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        match = re.search(r"\(at line (\d+), column (\d+)\)", message)
        if match:
            message = message[: match.start()].strip()
            raise ConfigError(source, [f"line {match.group(1)}, column {match.group(2)}: "
                                       f"TOML syntax: {message}"]) from None
        raise ConfigError(source, [f"TOML syntax: {message}"]) from None
    return parse_config(data, text, source)


def config_path(explicit: str | os.PathLike[str] | None = None) -> tuple[Path, bool]:
    """The config file to use and whether the user named it (then it must exist)."""
    if explicit:
        return Path(os.path.expanduser(os.fspath(explicit))), True
    env = os.environ.get("NOMADLAB_CONFIG")
    if env:
        return Path(os.path.expanduser(env)), True
    return paths.config_dir() / "config.toml", False


def load_config(explicit: str | os.PathLike[str] | None = None) -> Config:
    path, named = config_path(explicit)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        if named:
            raise ConfigError(path, ["no such file"]) from None
        return Config(source=None)
    except OSError as exc:
        raise ConfigError(path, [f"cannot read: {exc.strerror or exc}"]) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(path, [f"not UTF-8 text (byte {exc.start})"]) from None
    return load_config_text(text, path)


# --------------------------------------------------------------------------- new host names

_NEW_HOST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")


def new_host_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a new host (``hosts add``), or None.

    Stricter than what an existing config may hold: a name is typed in ``HOST:PATH``
    (so no ``:``) and in shell commands nomadlab prints (so no spaces or shell
    characters).
    """
    if name in RESERVED_HOST_NAMES:
        return f"{name!r} is reserved for this machine; choose another name"
    if not _NEW_HOST_NAME.match(name):
        return (f"invalid host name {name!r}: use 1 to 64 letters, digits, '.', '_', '+' "
                "or '-', starting with a letter or digit (no spaces, ':' or shell characters)")
    return None


def new_hostname_problem(hostname: str) -> str | None:
    """Why ``hostname`` (an address or ssh alias) cannot be added, or None."""
    if not hostname or any(c.isspace() or not c.isprintable() for c in hostname):
        return f"invalid hostname {hostname!r}: no spaces or control characters"
    if hostname.startswith("-"):
        return f"invalid hostname {hostname!r}: it cannot start with '-'"
    if "@" in hostname:
        user, _, rest = hostname.rpartition("@")
        return f"hostname {hostname!r} includes a user: use {rest!r} with --user {user!r}"
    if hostname.count(":") == 1:
        head, _, port = hostname.partition(":")
        hint = f": use {head!r} with --port {port}" if port.isdigit() else ""
        return f"hostname {hostname!r} includes ':'{hint}"
    if any(c in hostname for c in "/\\'\"`$;&|<>(){}*?!#"):
        return f"invalid hostname {hostname!r}: no shell characters"
    return None
