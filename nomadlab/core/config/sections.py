"""One reader per config section: a TOML table to its dataclass, every problem
reported (see :class:`~nomadlab.core.config.reader.Table`)."""

from __future__ import annotations

import re
from typing import Any

from nomadlab.core.config.reader import (
    DAY,
    HOUR,
    Table,
    _Problems,
    _suggest,
)
from nomadlab.core.config.schema import (
    ALERT_KINDS,
    CLUSTER_MIN_REFRESH,
    DEFAULT_COLUMNS,
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
