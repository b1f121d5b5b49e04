"""Finding, reading and checking the config file as a whole: TOML syntax, each section,
duplicate names and cross references (logs to hosts, alerts to channels)."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

from nomadlab.core import paths, tomlpos
from nomadlab.core.config.reader import (
    MAX_NESTING,
    ConfigError,
    Table,
    _Problems,
    _suggest,
)
from nomadlab.core.config.schema import (
    RESERVED_HOST_NAMES,
    Config,
    HostConfig,
)
from nomadlab.core.config.sections import (
    _read_alert,
    _read_board,
    _read_clusters,
    _read_fleet,
    _read_focus,
    _read_host,
    _read_hosts_cost,
    _read_log,
    _read_notify,
    _read_papers,
    _read_source,
    _read_ssh,
    _read_tail,
    _read_workspace,
)


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
