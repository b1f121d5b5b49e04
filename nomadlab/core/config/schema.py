"""What the config may say: one dataclass per section, with its defaults, and the
names a section may choose from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from nomadlab.core import paths

PANE_KINDS = ("fleet", "logs", "focus", "papers", "board", "jobs")
DEFAULT_PANES = PANE_KINDS[:5]  # the jobs pane is asked for: panes = [..., "jobs"]
LAYOUTS = ("columns", "rows", "grid", "main-left", "main-top")
SORT_KEYS = ("name", "state", "utilization", "memory", "cost")
RESERVED_HOST_NAMES = ("local",)

@dataclass(slots=True)
class HostConfig:
    """A ``[[hosts]]`` entry: a GPU machine reached over SSH, and what it costs."""
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
    """``[ssh]``: timeouts, keepalives, reconnect backoff, and which ssh_config and known_hosts
    files to read."""
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
    """``[fleet.thresholds]``: when a GPU's temperature, memory or power is a warning, and what
    counts as free."""
    temperature_warn: float = 80.0
    temperature_crit: float = 88.0
    memory_warn: float = 85.0  # percent
    memory_crit: float = 95.0
    power_warn: float = 95.0  # percent of the limit
    free_utilization: float = 5.0  # percent: at most this busy to count as free
    free_memory_mib: float = 1024.0


@dataclass(slots=True)
class FleetSettings:
    """``[fleet]``: how often hosts sample, how much history is kept, when a host is stale, the
    table's sort."""
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
    """``[workspace]``: which panes the home screen shows, their layout and sizes, and when it
    turns narrow."""
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
    """A ``[[logs]]`` entry: a training log to follow on a host."""
    name: str
    host: str  # a [[hosts]] name, or "local"
    path: str  # may start with ~ and may be a glob (the newest match is followed)
    lines: int | None = None  # lines shown from the end at start (default: [tail].lines)


@dataclass(slots=True)
class TailSettings:
    """``[tail]``: how many lines a log view shows and keeps, and how often a tail polls."""
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
    """An ``[[alerts]]`` rule: when it fires (``when`` and its parameters), how loud, and where
    it goes."""
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
    """A ``[[notify.webhooks]]`` entry: a webhook by kind, its secret's name (never the secret
    itself)."""
    name: str
    kind: str  # one of WEBHOOK_KINDS
    secret: str  # keyring entry (or NOMADLAB_SECRET_<NAME> variable) holding URL or token
    chat_id: str | None = None  # telegram
    min_severity: str = "info"
    timeout: float = 10.0


@dataclass(slots=True)
class NotifySettings:
    """``[notify]``: the local channels, the severity that reaches them, webhooks and their
    retries."""
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
    """``[board]``: the default board, the editor for card notes, and each board's columns."""
    default: str = "main"  # the board shown first
    editor: str | None = None  # for long text fields; default $VISUAL, $EDITOR, then vi
    finished_column: str = "Evaluation"  # where a "finished" run alert moves its card
    boards: list[BoardConfig] = field(default_factory=list)


@dataclass(slots=True)
class PapersSettings:
    """``[papers]``: the arXiv and Crossref endpoints, the weekly cap, and the review day."""
    arxiv_api: str = "https://export.arxiv.org/api/query"
    crossref_api: str = "https://api.crossref.org/works"
    weekly_cap: int = 2  # papers started per ISO week
    review_day: str = "monday"  # the weekly review is due from this day
    arxiv_interval: float = 3.0  # at most one arXiv request per this many seconds
    timeout: float = 10.0
    mailto: str | None = None  # Crossref's polite pool: your email


@dataclass(slots=True)
class FocusPreset:
    """A focus preset: a named session length (a 4-hour block, a 90-minute sprint)."""
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
    """``[focus]``: the presets, the daily target, when a day starts, and the retro's day."""
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

@dataclass(slots=True)
class Config:
    """The whole config, every section with its defaults; ``source`` is the file it came from
    (None: none)."""
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
