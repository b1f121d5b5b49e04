"""Config bounds (issue 9, item 28): a config nested 100,000 levels deep, and numbers
far outside any sane range, end with one clear message and exit status 2."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from clirun import run_main

from nomadlab.core.config import ConfigError, load_config_text

DEEP = {
    "arrays": "x = " + "[" * 100_000 + "]" * 100_000 + "\n",
    "inline tables": "x = " + "{a=" * 100_000 + "1" + "}" * 100_000 + "\n",
    "dotted key": "x" + ".a" * 100_000 + " = 1\n",
    "table header": "[" + ".".join(["a"] * 100_000) + "]\n",
}


def nomadlab(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``main`` in this process (tests/clirun.py)."""
    return run_main("--config", str(config), *args)


@pytest.mark.parametrize("kind", list(DEEP))
def test_deep_nesting_is_one_clear_line(kind: str, tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(DEEP[kind])
    result = nomadlab(config, "hosts", "list")
    assert result.returncode == 2, result.stderr[-500:]
    assert "Traceback" not in result.stderr and "RecursionError" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr[-500:]
    assert lines[0].startswith(f"nomadlab: {config}: line 1: ")
    assert "more than 100" in lines[0]


def test_nesting_in_strings_and_comments_is_not_counted() -> None:
    text = ('data_dir = "/tmp/' + "[" * 300 + "." * 300 + '"\n'
            "show_local = false  # " + "{" * 300 + "." * 300 + "\n"
            "[fleet]\ninterval = 2.5\n")
    config = load_config_text(text)
    assert config.fleet.interval == 2.5


@pytest.mark.parametrize(("text", "message"), [
    ("[fleet]\ninterval = 1e308", "fleet.interval: must be between 0.1s and 1h, got 1e+308"),
    ('[fleet]\ninterval = "99999999d"', "fleet.interval: must be between 0.1s and 1h"),
    ('[fleet]\nhistory = "30d"', "fleet.history: must be between 1m and 1d, got 30d"),
    ("[ssh]\nconnect_timeout = 1e300", "ssh.connect_timeout: must be between 1s and 1h"),
    ('[ssh]\nbackoff_max = "400d"', "ssh.backoff_max: must be between 1s and 1d"),
    ("[tail]\npoll = 1e9", "tail.poll: must be between 0.02s and 1m"),
    ('[[alerts]]\nname = "x"\nwhen = "host_down"\nduration = 1e308',
     'alerts[0] ("x").duration: must be between 0s and 365d, got 1e+308'),
    ('[[hosts]]\nname = "a"\nhostname = "h"\nhourly_cost = 1e308',
     'hosts[0] ("a").hourly_cost: must be at most 100000, got 1e+308'),
    ("[fleet.thresholds]\ntemperature_warn = 1e308",
     "fleet.thresholds.temperature_warn: must be at most 200, got 1e+308"),
    ("[papers]\ntimeout = 1e308", "papers.timeout: must be between 1s and 10m"),
])
def test_numbers_out_of_range_say_the_range(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config_text(text)
    assert message in str(caught.value)


def test_interval_of_1e308_through_the_cli(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text("[fleet]\ninterval = 1e308\n")
    result = nomadlab(config, "status")
    assert result.returncode == 2
    assert result.stderr.strip() == (f"nomadlab: {config}: line 2: fleet.interval: "
                                     "must be between 0.1s and 1h, got 1e+308")
