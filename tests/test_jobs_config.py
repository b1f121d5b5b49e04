"""[[clusters]] in the config: defaults, limits, clear errors."""

from __future__ import annotations

import pytest

from nomadlab.cli import main
from nomadlab.core.config import ConfigError, load_config_text


def test_defaults_and_values() -> None:
    config = load_config_text('[[clusters]]\nname = "della"\nhost = "della-login"\n'
                              '[[clusters]]\nname = "tiger"\nhost = "tiger"\n'
                              'partitions = ["gpu", "mig"]\nall_users = true\nrefresh = "1m"\n')
    della, tiger = config.clusters
    assert (della.host, della.partitions, della.all_users, della.refresh) == (
        "della-login", [], False, 15.0)
    assert (tiger.partitions, tiger.all_users, tiger.refresh) == (["gpu", "mig"], True, 60.0)
    assert config.cluster("tiger") is tiger and config.cluster("nope") is None
    alert = load_config_text('[[alerts]]\nname = "jobs"\nwhen = "job"\n').alerts[0]
    assert alert.when == "job"


@pytest.mark.parametrize(("text", "message"), [
    ('name = "a"\nhost = "h"\nrefresh = "2s"', "clusters[0] (\"a\").refresh: must be at least 5s"),
    ('name = "a"', "clusters[0] (\"a\").host: missing"),
    ('name = "a"\nhost = "h"\npartitions = 3', "expected a list of strings"),
    ('name = "a:b"\nhost = "h"', "without ':'"),
    ('name = "a"\nhost = "h"\nallusers = true', "unknown key (did you mean 'all_users'?)"),
])
def test_bad_values(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config_text("[[clusters]]\n" + text + "\n")
    assert message in str(info.value)


def test_duplicate_names() -> None:
    with pytest.raises(ConfigError, match="duplicate cluster name 'a'"):
        load_config_text('[[clusters]]\nname = "a"\nhost = "h"\n'
                         '[[clusters]]\nname = "a"\nhost = "g"\n')


def test_cli_bad_input_exit_2(tmp_path: object, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["jobs"]) == 2
    assert "no [[clusters]]" in capsys.readouterr().err
    assert main(["jobs", "cancel", "nocolon"]) == 2
    assert "expected CLUSTER:ID" in capsys.readouterr().err
    assert main(["jobs", "hold", "c:12;rm -rf /"]) == 2
    err = capsys.readouterr().err
    assert "not a Slurm job id" in err and err.count("\n") == 1
