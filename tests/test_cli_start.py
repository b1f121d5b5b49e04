"""Fast to start: a command loads only what it uses (the CPU figures are in
benchmarks/cli_start.py). What a user would check: ``nomadlab --help`` lists every
command with the same line as before, and a short command does not load the SSH
library, Textual or other features."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nomadlab.cli import COMMANDS, build_parser, command_named

HEAVY = ("asyncssh", "textual", "rich")


def _under(module: str, prefix: str) -> bool:
    """"nomadlab.cli." means the modules inside nomadlab.cli; "regex" it and its own."""
    if prefix.endswith("."):
        return module.startswith(prefix)
    return module == prefix or module.startswith(prefix + ".")


def _top_choices(parser: argparse.ArgumentParser) -> list[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return [a.dest for a in action._choices_actions]
    return []


def test_help_without_imports_is_the_full_help() -> None:
    """The command table (no imports) and the modules' own parsers agree, line by line."""
    assert build_parser(["--help"]).format_help() == build_parser().format_help()
    assert _top_choices(build_parser()) == [c.name for c in COMMANDS]
    assert _top_choices(build_parser(["board", "list"])) == [c.name for c in COMMANDS]


@pytest.mark.parametrize(("argv", "command"), [
    ([], None), (["--version"], None), (["--help", "board"], None), (["board", "list"], "board"),
    (["--config", "x.toml", "focus", "status"], "focus"), (["--config=x.toml", "today"], "today"),
    (["--conf", "board", "hosts"], "hosts"), (["--", "tail"], "tail"),
])
def test_the_command_is_found_before_parsing(argv: list[str], command: str | None) -> None:
    assert command_named(argv) == command


@pytest.mark.parametrize(("argv", "absent"), [
    (["--version"], ("nomadlab.cli.", "nomadlab.core.", *HEAVY)),
    (["--help"], ("nomadlab.cli.", "nomadlab.core.", *HEAVY)),
    (["focus", "status", "--short"],
     ("nomadlab.remote", "nomadlab.ui", "nomadlab.notify", "nomadlab.cli.board", "regex",
      "asyncio", *HEAVY)),
    (["board", "list"], ("nomadlab.remote", "nomadlab.ui", "nomadlab.notify",
                         "nomadlab.cli.focus", *HEAVY)),
])
def test_a_short_command_loads_only_what_it_uses(tmp_path: Path, argv: list[str],
                                                 absent: tuple[str, ...]) -> None:
    (tmp_path / "config" / "nomadlab").mkdir(parents=True)
    (tmp_path / "config" / "nomadlab" / "config.toml").write_text(
        '[[hosts]]\nname = "gpu1"\nhostname = "gpu1.invalid"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOMADLAB_")}
    env.update(XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_DATA_HOME=str(tmp_path / "data"))
    code = ("import sys\n"
            "from nomadlab.cli import main\n"
            "try:\n"
            "    status = main(sys.argv[1:])\n"
            "except SystemExit as exc:\n"
            "    status = exc.code\n"
            "print('STATUS', status, file=sys.stderr)\n"
            "print('LOADED', ' '.join(sorted(sys.modules)), file=sys.stderr)\n")
    result = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True,
                            text=True, env=env, timeout=60, check=False)
    lines = dict(line.split(" ", 1) for line in result.stderr.splitlines()
                 if line.startswith(("STATUS ", "LOADED ")))
    assert lines.get("STATUS") in ("0", "None"), result.stderr
    loaded = lines["LOADED"].split()
    wrong = [m for m in loaded if any(_under(m, prefix) for prefix in absent)]
    assert wrong == [], f"nomadlab {' '.join(argv)} loaded {wrong}"


def test_every_command_module_is_in_the_table() -> None:
    """A new nomadlab/cli/NAME.py with register(sub) is listed in cli.COMMANDS (else its
    command would be missing from `nomadlab --help` and unreachable)."""
    import ast

    import nomadlab.cli

    listed = {c.module for c in COMMANDS}
    unlisted = []
    for path in sorted(Path(nomadlab.cli.__file__).parent.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        if any(isinstance(node, ast.FunctionDef) and node.name == "register"
               for node in tree.body) and f"nomadlab.cli.{path.stem}" not in listed:
            unlisted.append(path.name)
    assert unlisted == [], f"add a Command line to nomadlab/cli/__init__.py for {unlisted}"


def test_a_command_not_foreseen_is_parsed_in_full(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """Should the quick look at argv pick the wrong command, the listed-only parser
    takes the rest of the words and main() parses again with every command."""
    from nomadlab.cli import main

    args = build_parser(["status"]).parse_args(["board", "list", "--json"])
    assert args.stub_of == "board" and args.words == ["list", "--json"]
    config = tmp_path / "config.toml"
    config.write_text(f'data_dir = "{tmp_path}"\n')
    assert main(["--config", str(config), "board", "list"]) == 0
    assert "Hypothesis" in capsys.readouterr().out
