"""The config file: every problem named by file, line and key path, all at once."""

from __future__ import annotations

import os
import textwrap
import tomllib
from pathlib import Path

import pytest

from nomadlab.core import configfile
from nomadlab.core.config import (
    Config,
    ConfigError,
    HostConfig,
    config_path,
    load_config,
    load_config_text,
    parse_duration,
)


def problems(text: str, source: Path | None = None) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_config_text(textwrap.dedent(text), source)
    return info.value.problems


def only_problem(text: str) -> str:
    found = problems(text)
    assert len(found) == 1, found
    return found[0]


# --------------------------------------------------------------------------- good files


def test_a_full_config_loads(tmp_path: Path) -> None:
    config = load_config_text(textwrap.dedent(f"""\
        # nomadlab config
        show_local = false
        data_dir = "{tmp_path}/data"

        [ssh]
        connect_timeout = "5s"
        keepalive_interval = 15
        keepalive_count_max = 3

        [fleet]
        interval = "500ms"
        history = "1h"
        stale_after = "10s"
        sort = "utilization"

        [fleet.thresholds]
        temperature_warn = 75
        memory_crit = 97.5

        [workspace]
        panes = ["fleet", "logs"]
        layout = "grid"
        sizes = {{ fleet = 3 }}

        [[hosts]]
        name = "gpu-a"
        hostname = "10.0.0.7"
        port = 2222
        user = "ana"
        hourly_cost = 2
        tags = "h100"

        [[hosts]]
        name = "gpu b"
        hostname = "b.example.org"
        jump = "gpu-a"
        enabled = false
        """))
    assert config.show_local is False
    assert config.data_dir == tmp_path / "data"
    assert config.database == tmp_path / "data" / "nomadlab.db"
    assert (config.ssh.connect_timeout, config.ssh.keepalive_interval) == (5.0, 15.0)
    assert config.ssh.keepalive_count_max == 3
    assert (config.fleet.interval, config.fleet.history) == (0.5, 3600.0)
    assert config.fleet.stale_seconds == 10.0
    assert config.fleet.thresholds.temperature_warn == 75.0
    assert config.fleet.thresholds.memory_crit == 97.5
    assert config.workspace.panes == ["fleet", "logs"]
    assert config.workspace.sizes == {"fleet": 3}
    a = config.host("gpu-a")
    assert a == HostConfig(name="gpu-a", hostname="10.0.0.7", user="ana", port=2222,
                           hourly_cost=2.0, tags=["h100"])
    assert isinstance(a.hourly_cost, float)
    b = config.host("gpu b")
    assert b is not None and b.jump == "gpu-a" and b.enabled is False and b.port is None
    assert config.host("nope") is None


def test_defaults() -> None:
    config = load_config_text("")
    assert config == Config(source=None)
    assert config.fleet.stale_seconds == 5.0  # max(5 s, 3 intervals of 1 s)
    assert config.show_local and config.hosts == []


@pytest.mark.parametrize(("text", "seconds"), [
    ("90s", 90), ("15m", 900), ("1h30m", 5400), ("2d", 172800), ("250ms", 0.25),
    ("1.5h", 5400), (" 1m 30s ", 90), (0, 0), (2.5, 2.5), (7, 7),
])
def test_parse_duration(text: str | float, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("bad", ["", "fast", "15", "-5s", "5 parsecs", "1m1h", True, -1,
                                 float("inf"), float("nan"), [1]])
def test_parse_duration_refuses(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


# --------------------------------------------------------------------------- problems


def test_toml_syntax_error_has_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text('[fleet]\ninterval = "1s"\nsort = name\n')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.problems == ["line 3, column 8: TOML syntax: Invalid value"]
    assert str(info.value) == f"{path}: line 3, column 8: TOML syntax: Invalid value"
    assert info.value.source == path


def test_wrong_type_names_the_host_and_line() -> None:
    found = problems("""\
        [[hosts]]
        name = "a"
        hostname = "h1"

        [[hosts]]
        name = "b"
        hostname = "h2"
        port = "22"
        """)
    assert found == ['line 8: hosts[1] ("b").port: expected an integer, got the string \'22\'']


@pytest.mark.parametrize(("line", "message"), [
    ("port = 22.5", 'hosts[0] ("a").port: expected an integer, got 22.5'),
    ("port = true", 'hosts[0] ("a").port: expected an integer, got true'),
    ("enabled = 1", 'hosts[0] ("a").enabled: expected true or false, got 1'),
    ("user = 7", 'hosts[0] ("a").user: expected a string, got 7'),
    ("tags = [1, 2]", 'hosts[0] ("a").tags: expected a list of strings, got a list'),
    ("hourly_cost = \"3\"", 'hosts[0] ("a").hourly_cost: expected a number, '
                            "got the string '3'"),
    ("hourly_cost = nan", 'hosts[0] ("a").hourly_cost: expected a finite number, got nan'),
    ("user = \"ana\\u001b[2J\"", 'hosts[0] ("a").user: must not contain control characters'),
])
def test_host_value_problems(line: str, message: str) -> None:
    assert only_problem(f'[[hosts]]\nname = "a"\nhostname = "h"\n{line}\n') == \
        f"line 4: {message}"


def test_unknown_keys_suggest_the_right_one() -> None:
    found = problems("""\
        show_locl = true
        [fleet]
        intervall = "2s"
        [fleet.thresholds]
        temp_warn = 70
        [ssh]
        conect_timeout = 3
        [[hosts]]
        name = "a"
        hostname = "h"
        prot = 22
        completely_different = 1
        """)
    assert sorted(found) == sorted([
        "line 1: show_locl: unknown key (did you mean 'show_local'?)",
        "line 3: fleet.intervall: unknown key (did you mean 'interval'?)",
        "line 5: fleet.thresholds.temp_warn: unknown key (did you mean 'temperature_warn'?)",
        "line 7: ssh.conect_timeout: unknown key (did you mean 'connect_timeout'?)",
        "line 11: hosts[0] (\"a\").prot: unknown key (did you mean 'port'?)",
        'line 12: hosts[0] ("a").completely_different: unknown key',
    ])


def test_duplicate_host_names_point_at_the_second_one() -> None:
    # The first host is broken (no hostname): the indexes must still be the file's.
    found = problems("""\
        [[hosts]]
        name = "broken"

        [[hosts]]
        name = "a"
        hostname = "h1"

        [[hosts]]
        name = "a"
        hostname = "h2"
        jump = "a"
        """)
    assert sorted(found) == sorted([
        'line 1: hosts[0] ("broken").hostname: missing; expected a string',
        "line 9: hosts[2] (\"a\").name: duplicate host name 'a' (also hosts[1])",
        'line 11: hosts[2] ("a").jump: a host cannot be its own jump host',
    ])


def test_the_name_local_is_reserved() -> None:
    assert only_problem('[[hosts]]\nname = "local"\nhostname = "h"\n') == (
        "line 2: hosts[0] (\"local\").name: 'local' is reserved for this machine; "
        "choose another name")


@pytest.mark.parametrize(("text", "message"), [
    ('[fleet]\ninterval = "fast"',
     "line 2: fleet.interval: expected a duration such as \"15m\" or \"90s\", got 'fast'"),
    ('[fleet]\ninterval = "50ms"', "line 2: fleet.interval: must be at least 0.1s"),
    ('[fleet]\nhistory = "30s"', "line 2: fleet.history: must be at least 1m"),
    ('[fleet]\nstale_after = -3', "line 2: fleet.stale_after: expected a duration of zero or more"),
    ("[ssh]\nconnect_timeout = true",
     'line 2: ssh.connect_timeout: expected a duration such as "15m" or a number of seconds'),
])
def test_bad_durations(text: str, message: str) -> None:
    assert only_problem(text) == message


@pytest.mark.parametrize(("text", "message"), [
    ('[[hosts]]\nname = "a"\nhostname = "h"\nport = 70000',
     'line 4: hosts[0] ("a").port: must be at most 65535, got 70000'),
    ('[[hosts]]\nname = "a"\nhostname = "h"\nport = 0',
     'line 4: hosts[0] ("a").port: must be at least 1, got 0'),
    ('[[hosts]]\nname = "a"\nhostname = "h"\nhourly_cost = -1',
     'line 4: hosts[0] ("a").hourly_cost: must be at least 0, got -1'),
    ("[ssh]\nkeepalive_count_max = 0",
     "line 2: ssh.keepalive_count_max: must be at least 1, got 0"),
    ("[fleet.thresholds]\nmemory_warn = 120",
     "line 2: fleet.thresholds.memory_warn: must be at most 100, got 120"),
    ("[workspace]\nnarrow_width = 5", "line 2: workspace.narrow_width: must be at least 20, got 5"),
    ("[workspace.sizes]\nfleet = 13", "line 2: workspace.sizes.fleet: must be at most 12, got 13"),
    ('[fleet]\nsort = "utilisation"',
     "line 2: fleet.sort: expected one of name, state, utilization, memory, cost; "
     "got 'utilisation' (did you mean 'utilization'?)"),
    ('[workspace]\npanes = ["fleet", "lgos"]',
     "line 2: workspace.panes: unknown pane 'lgos'; panes are fleet, logs, focus, papers, "
     "board, jobs (did you mean 'logs'?)"),
])
def test_out_of_range_values(text: str, message: str) -> None:
    assert only_problem(text) == message


@pytest.mark.parametrize(("text", "message"), [
    ('[[hosts]]\nhostname = "h"', "line 1: hosts[0].name: missing; expected a string"),
    ('[[hosts]]\nname = "a"', 'line 1: hosts[0] ("a").hostname: missing; expected a string'),
    ('[[hosts]]\nname = ""\nhostname = "h"', 'line 2: hosts[0] ("").name: must not be empty'),
    ("hosts = 3", "line 1: hosts: expected one or more [[hosts]] tables"),
    ('[hosts]\nname = "a"', "line 1: hosts: expected one or more [[hosts]] tables"),
    ('ssh = "x"', "line 1: ssh: expected a table ([ssh]), got the string 'x'"),
])
def test_missing_and_misshapen(text: str, message: str) -> None:
    assert only_problem(text) == message


def test_every_problem_at_once(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(textwrap.dedent("""\
        show_local = "yes"
        [[hosts]]
        name = "local"
        hostname = "h"
        [[hosts]]
        name = "b"
        hostname = "h"
        port = "22"
        [fleet]
        interval = "soon"
        """))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert len(info.value.problems) == 4
    text = str(info.value)
    assert text.splitlines()[0] == f"{path}: 4 problems"
    for fragment in ("line 1: show_local:", 'line 3: hosts[0] ("local").name:',
                     'line 8: hosts[1] ("b").port:', "line 10: fleet.interval:"):
        assert fragment in text


def test_a_file_that_is_not_text(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b'show_local = true\n# caf\xe9\n')
    with pytest.raises(ConfigError, match=r"not UTF-8 text \(byte 23\)"):
        load_config(path)


# --------------------------------------------------------------------------- which file


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_missing_default_file_means_defaults(isolated_home: Path) -> None:
    assert config_path() == (isolated_home / ".config" / "nomadlab" / "config.toml", False)
    config = load_config()
    assert config.source is None and config.hosts == []


def test_default_file_is_read(isolated_home: Path) -> None:
    path = write(isolated_home / ".config" / "nomadlab" / "config.toml", "show_local = false\n")
    config = load_config()
    assert config.source == path and config.show_local is False


def test_missing_named_file_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml")
    assert str(info.value) == f"{tmp_path / 'nope.toml'}: no such file"
    monkeypatch.setenv("NOMADLAB_CONFIG", str(tmp_path / "env-nope.toml"))
    with pytest.raises(ConfigError, match=r"env-nope\.toml: no such file"):
        load_config()


def test_config_option_beats_environment_beats_default(
        isolated_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    default = write(isolated_home / ".config" / "nomadlab" / "config.toml",
                    '[[hosts]]\nname = "from-default"\nhostname = "h"\n')
    env = write(tmp_path / "env.toml", '[[hosts]]\nname = "from-env"\nhostname = "h"\n')
    option = write(tmp_path / "option.toml", '[[hosts]]\nname = "from-option"\nhostname = "h"\n')
    assert load_config().source == default
    monkeypatch.setenv("NOMADLAB_CONFIG", str(env))
    assert [h.name for h in load_config().hosts] == ["from-env"]
    assert [h.name for h in load_config(option).hosts] == ["from-option"]
    assert config_path(str(option)) == (option, True)
    assert config_path() == (env, True)


def test_tilde_in_paths_is_expanded(isolated_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(isolated_home / "my.toml", 'data_dir = "~/nl-data"\n')
    monkeypatch.setenv("NOMADLAB_CONFIG", "~/my.toml")
    config = load_config()
    assert config.source == isolated_home / "my.toml"
    assert config.data_dir == isolated_home / "nl-data"


def test_xdg_config_home_is_honoured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    path = write(tmp_path / "xdg" / "nomadlab" / "config.toml", "show_local = false\n")
    assert load_config().source == path


# --------------------------------------------------------------------------- rewriting


COMMENTED = """\
# My GPU boxes. Keep this comment.
show_local = false

[fleet]
interval = "2s"  # slow link

# the big one
[[hosts]]
name = "big"
hostname = "10.0.0.1"

# the spare, keep this too
[[hosts]]
name = "spare"
hostname = "10.0.0.2"
"""


def test_add_and_remove_keep_the_users_comments(tmp_path: Path) -> None:
    tmp_path = tmp_path / "conf"
    path = write(tmp_path / "config.toml", COMMENTED)
    configfile.add_host(path, HostConfig(name="new", hostname="10.0.0.3", port=2222,
                                         tags=["a100"]))
    text = path.read_text()
    assert text.startswith(COMMENTED)
    assert (tmp_path / "config.toml.bak").read_text() == COMMENTED
    assert [h.name for h in load_config(path).hosts] == ["big", "spare", "new"]
    configfile.add_host(path, HostConfig(name="newer", hostname="10.0.0.4"))  # a 2nd append
    configfile.remove_host(path, "big")
    text = path.read_text()
    assert "# the big one" not in text and "big" not in text
    for kept in ("# My GPU boxes. Keep this comment.", "# slow link", "# the spare, keep this"):
        assert kept in text
    assert [h.name for h in load_config(path).hosts] == ["spare", "new", "newer"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.toml", "config.toml.bak"]


def test_add_to_a_missing_file_creates_it(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "config.toml"
    configfile.add_host(path, HostConfig(name="a", hostname="h", user="ana"))
    assert tomllib.loads(path.read_text()) == {"hosts": [{"name": "a", "hostname": "h",
                                                          "user": "ana"}]}
    assert path.stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "sub" / "config.toml.bak").exists()


def test_add_refuses_a_duplicate_and_a_bad_file(tmp_path: Path) -> None:
    path = write(tmp_path / "config.toml", COMMENTED)
    with pytest.raises(ConfigError, match="a host named 'big' already exists"):
        configfile.add_host(path, HostConfig(name="big", hostname="x"))
    with pytest.raises(ConfigError) as info:
        configfile.add_host(path, HostConfig(name="x", hostname="x", port=70000, user="a\nb"))
    assert info.value.problems == ["host 'x': user: must not contain control characters",
                                   "host 'x': port: must be at most 65535, got 70000"]
    assert path.read_text() == COMMENTED
    broken = write(tmp_path / "broken.toml", "show_local = \n")
    with pytest.raises(ConfigError, match="line 1, column 14: TOML syntax"):
        configfile.add_host(broken, HostConfig(name="x", hostname="x"))
    with pytest.raises(ConfigError, match="TOML syntax"):
        configfile.remove_host(broken, "x")


def test_remove_an_unknown_host_lists_the_known_ones(tmp_path: Path) -> None:
    path = write(tmp_path / "config.toml", COMMENTED)
    with pytest.raises(ConfigError, match=r"no host named 'nope' \(hosts: big, spare\)"):
        configfile.remove_host(path, "nope")
    assert not (tmp_path / "config.toml.bak").exists()


def test_inline_hosts_are_rewritten_as_blocks(tmp_path: Path) -> None:
    path = write(tmp_path / "config.toml",
                 'hosts = [{ name = "a", hostname = "h1" }, { name = "b", hostname = "h2" }]\n'
                 "[fleet]\ninterval = 3\n")
    configfile.add_host(path, HostConfig(name="c", hostname="h3"))
    assert [h.name for h in load_config(path).hosts] == ["a", "b", "c"]
    configfile.remove_host(path, "a")
    config = load_config(path)
    assert [h.name for h in config.hosts] == ["b", "c"] and config.fleet.interval == 3
    configfile.add_host(path, HostConfig(name="d", hostname="h4"))  # still appendable
    assert path.read_text().count("[[hosts]]") == 3


def test_removing_the_last_host(tmp_path: Path) -> None:
    path = write(tmp_path / "config.toml", 'show_local = false\n\n[[hosts]]\nname = "a"\n'
                                           'hostname = "h"\n')
    configfile.remove_host(path, "a")
    assert tomllib.loads(path.read_text()) == {"show_local": False}


def test_a_symlinked_config_stays_a_symlink(tmp_path: Path) -> None:
    real = write(tmp_path / "dotfiles" / "nomadlab.toml", COMMENTED)
    link = tmp_path / "config.toml"
    link.symlink_to(real)
    configfile.add_host(link, HostConfig(name="c", hostname="h3"))
    assert link.is_symlink()
    assert "name = \"c\"" in real.read_text()
    assert (tmp_path / "dotfiles" / "nomadlab.toml.bak").read_text() == COMMENTED


def test_the_mode_of_the_file_is_kept(tmp_path: Path) -> None:
    path = write(tmp_path / "config.toml", COMMENTED)
    os.chmod(path, 0o640)
    configfile.add_host(path, HostConfig(name="c", hostname="h3"))
    assert path.stat().st_mode & 0o777 == 0o640
