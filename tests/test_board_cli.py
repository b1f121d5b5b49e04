"""``nomadlab board ...`` in the isolated home, through ``nomadlab.cli.main`` in this process
(tests/clirun.py): exit status, stdout and stderr as a script calling it sees them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from clirun import run_main


def nomadlab(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = run_main("board", *args)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def test_a_training_script_keeps_its_own_card(isolated_home: Path) -> None:
    added = nomadlab("add", "LoRA r=16 on llama-7b", "--column", "train", "--param",
                     "lr=3e-4", "--param", "batch=64", "--tag", "lora", "--tag", "7b",
                     "--link", "host=lambda-h100", "--link", "log=lambda-h100:~/runs/a.log",
                     "--priority", "H")
    assert added.stdout == "1\n" and added.stderr == ""  # only the id
    assert nomadlab("add", "second").stdout == "2\n"
    nomadlab("metric", "1", "val_loss=0.231", "step=100")
    nomadlab("param", "#1", "lr=1e-4", "batch=")  # batch= removes it
    nomadlab("move", "1", "Evaluation")
    nomadlab("move", "2", "archive")

    listing = nomadlab("list").stdout
    assert "Evaluation (1)" in listing and "Hypothesis (0)" in listing
    assert "#1" in listing and "LoRA r=16 on llama-7b" in listing and "[H]" in listing
    assert "val_loss=0.231" in listing
    assert "second" not in listing
    assert "second" in nomadlab("list", "--archived").stdout

    shown = nomadlab("show", "1").stdout
    assert shown.startswith("## #1 LoRA r=16 on llama-7b")
    assert "| lr | 1e-4 |" in shown and "batch" in shown  # in the value history
    assert "param batch = (removed)" in shown
    assert "Training -> Evaluation [cli]" in shown

    exported = json.loads(nomadlab("export", "--json").stdout)
    card = next(c for c in exported["cards"] if c["id"] == 1)
    assert card["column"] == "Evaluation"
    assert card["params"] == {"lr": "1e-4"}
    assert [(h["key"], h["value"]) for h in card["param_history"]] == [
        ("lr", "3e-4"), ("batch", "64"), ("lr", "1e-4"), ("batch", None)]
    assert card["metrics"] == {"val_loss": "0.231", "step": "100"}
    assert card["links"] == {"host": "lambda-h100", "log": "lambda-h100:~/runs/a.log"}
    assert [m["to"] for m in card["moves"]] == ["Training", "Evaluation"]
    assert "Training" in card["seconds_in_columns"]
    assert next(c for c in exported["cards"] if c["id"] == 2)["column"] == "Archive"
    assert exported["boards"][0]["columns"][0] == "Hypothesis"

    markdown = nomadlab("export").stdout

    def headings(text: str) -> list[str]:  # (the times in it move on between runs)
        return [line for line in text.splitlines() if line.startswith("#")]

    assert headings(markdown) == headings(nomadlab("export", "--markdown").stdout)
    assert "# Board: main" in markdown and "## Evaluation (1)" in markdown
    one = json.loads(nomadlab("show", "1", "--json").stdout)
    assert one["id"] == 1 and one["params"] == {"lr": "1e-4"}
    assert [c["id"] for c in json.loads(nomadlab("list", "--json").stdout)] == [1]


@pytest.mark.parametrize(("args", "message"), [
    (["show", "42"], "no card #42"),
    (["move", "42", "Training"], "no card #42"),
    (["metric", "x", "a=1"], "a card id is a number"),
    (["param", "7", "a=1"], "no card #7"),
    (["add", "  "], "a card needs a title"),
    (["add", "t", "--column", "Nope"], "no column 'Nope'"),
    (["add", "t", "--param", "lr"], "expected KEY=VALUE"),
    (["add", "t", "--link", "url=x"], "unknown link 'url'"),
    (["add", "t", "--priority", "urgent"], "priority is H, M, L or none"),
    (["list", "--board", "nope"], "no board 'nope'"),
])
def test_user_errors_exit_2_with_a_clear_message(isolated_home: Path, args: list[str],
                                                 message: str) -> None:
    result = nomadlab(*args, check=False)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_bad_moves_and_values_on_a_real_card(isolated_home: Path) -> None:
    nomadlab("add", "x")
    result = nomadlab("move", "1", "x", check=False)  # "x" is no column's prefix...
    assert result.returncode == 2 and "no column 'x'" in result.stderr
    result = nomadlab("move", "1", "e", check=False)  # ... "e" is Evaluation's
    assert result.returncode == 0
    result = nomadlab("metric", "1", "no-equals", check=False)
    assert result.returncode == 2 and "expected KEY=VALUE" in result.stderr
    again = nomadlab("move", "1", "evaluation")
    assert "already in Evaluation" in again.stderr


def test_markup_and_escapes_print_as_plain_text(isolated_home: Path) -> None:
    nomadlab("add", "[bold]x[/] \x1b]0;pwned\x07 done", "--tag", "[red]t[/]")
    listing = nomadlab("list").stdout
    assert "[bold]x[/]" in listing and "#[red]t[/]" in listing
    assert "\x1b" not in listing and "\x07" not in listing
    assert "\x1b" not in nomadlab("show", "1").stdout
    assert "\x1b" not in nomadlab("export").stdout


def test_boards_from_the_command_line(isolated_home: Path) -> None:
    assert nomadlab("add", "ViT-B/16", "--board", "vision").stdout == "1\n"
    assert "ViT-B/16" in nomadlab("list", "--board", "vision").stdout
    assert "ViT-B/16" not in nomadlab("list").stdout
    exported = json.loads(nomadlab("export", "--json", "--board", "vision").stdout)
    assert [b["name"] for b in exported["boards"]] == ["vision"]
    assert [c["title"] for c in exported["cards"]] == ["ViT-B/16"]


def test_board_without_a_command_shows_its_help(isolated_home: Path) -> None:
    result = nomadlab(check=False)
    assert result.returncode == 2 and "board commands" in result.stdout


def test_a_log_link_expanded_by_the_shell_is_warned_about(isolated_home: Path) -> None:
    """Issue 9 item 12: ``--link log=lambda-h100:~/runs/r16/train.log`` unquoted reaches
    nomadlab as the local home directory (the shell expands ~ after =)."""
    home = str(isolated_home)
    shell = subprocess.run(  # what a user's bash does with the README's line, unquoted
        ["bash", "-c", 'printf "%s" log=lambda-h100:~/runs/r16/train.log'],
        capture_output=True, text=True, timeout=10, check=True)
    assert shell.stdout == f"log=lambda-h100:{home}/runs/r16/train.log"
    added = nomadlab("add", "LoRA", "--link", "host=lambda-h100", "--link", shell.stdout)
    assert added.stdout == "1\n"  # still stored, still only the id on stdout
    [warning] = ours(added.stderr)
    assert warning.startswith("nomadlab: warning: log=lambda-h100:")
    assert f"home directory ({home})" in warning
    assert warning.endswith("--link 'log=lambda-h100:~/runs/r16/train.log'")

    on_host = nomadlab("add", "path on the card's host", "--link", "host=gpu1",
                       "--link", f"log={home}/x.log")
    assert ours(on_host.stderr)[0].endswith("--link 'log=~/x.log'")

    for quiet in (["--link", "log=lambda-h100:~/runs/r16/train.log"],  # quoted: as meant
                  ["--link", f"log=local:{home}/train.log"],  # this machine: right
                  ["--link", f"log={home}/train.log"],  # no host: this machine
                  ["--link", "log=lambda-h100:/data/runs/train.log"]):
        assert ours(nomadlab("add", "fine", *quiet).stderr) == []


def ours(stderr: str) -> list[str]:
    """What nomadlab said on stderr (not a library's warnings at import)."""
    return [line for line in stderr.splitlines() if line.startswith("nomadlab")]
