"""The config file: where it is, what it may say, and a clear message when it is wrong.

``load_config`` reads TOML with tomllib and validates every key it knows; an unknown
key is an error with a suggestion (a typo would otherwise be silently ignored). All
problems of a file are reported at once, each with its key path and, where the
scanner finds it, its line.

The parts: ``schema`` (the dataclasses), ``reader`` (checked reading of a TOML table),
``sections`` (one reader per section), ``load`` (the file as a whole) and ``names``
(a new host's name). Public names are re-exported here.
"""

from __future__ import annotations

from nomadlab.core.config.load import (
    config_path,
    load_config,
    load_config_text,
    parse_config,
)
from nomadlab.core.config.names import (
    new_host_name_problem,
    new_hostname_problem,
)
from nomadlab.core.config.reader import (
    DAY,
    HOUR,
    MAX_DURATION,
    MAX_NESTING,
    MAX_NUMBER,
    ConfigError,
    Table,
    parse_duration,
)
from nomadlab.core.config.schema import (
    ALERT_KINDS,
    CLUSTER_MIN_REFRESH,
    DEFAULT_COLUMNS,
    DEFAULT_PANES,
    DEFAULT_PRESETS,
    FOCUS_KINDS,
    LAYOUTS,
    OUTCOMES,
    PANE_KINDS,
    RESERVED_HOST_NAMES,
    SEVERITIES,
    SORT_KEYS,
    SOURCE_KINDS,
    WEBHOOK_KINDS,
    WEEKDAYS,
    AlertRule,
    BoardConfig,
    BoardSettings,
    ClusterConfig,
    Config,
    FleetSettings,
    FocusPreset,
    FocusSettings,
    HostConfig,
    LogConfig,
    NotifySettings,
    PapersSettings,
    SourceConfig,
    SshSettings,
    TailSettings,
    Thresholds,
    WebhookConfig,
    WorkspaceConfig,
)
from nomadlab.core.config.sections import (
    host_problems,
)
from nomadlab.core.durations import config_text as format_duration

__all__ = [
    "ALERT_KINDS",
    "CLUSTER_MIN_REFRESH",
    "DAY",
    "DEFAULT_COLUMNS",
    "DEFAULT_PANES",
    "DEFAULT_PRESETS",
    "FOCUS_KINDS",
    "HOUR",
    "LAYOUTS",
    "MAX_DURATION",
    "MAX_NESTING",
    "MAX_NUMBER",
    "OUTCOMES",
    "PANE_KINDS",
    "RESERVED_HOST_NAMES",
    "SEVERITIES",
    "SORT_KEYS",
    "SOURCE_KINDS",
    "WEBHOOK_KINDS",
    "WEEKDAYS",
    "AlertRule",
    "BoardConfig",
    "BoardSettings",
    "ClusterConfig",
    "Config",
    "ConfigError",
    "FleetSettings",
    "FocusPreset",
    "FocusSettings",
    "HostConfig",
    "LogConfig",
    "NotifySettings",
    "PapersSettings",
    "SourceConfig",
    "SshSettings",
    "Table",
    "TailSettings",
    "Thresholds",
    "WebhookConfig",
    "WorkspaceConfig",
    "config_path",
    "format_duration",
    "host_problems",
    "load_config",
    "load_config_text",
    "new_host_name_problem",
    "new_hostname_problem",
    "parse_config",
    "parse_duration",
]
