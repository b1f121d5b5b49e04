"""Every ``nomadlab ...`` command in README.md, run as a user runs it.

The commands are read from README.md itself (its code blocks and inline code): a
command added to the README runs here without touching this file; a synopsis line
(``[--json]``, ``a | b``, ``...``) needs its concrete forms listed in SYNOPSES, and
the test says so when one is missing. Each runs as the installed script in a
subprocess (in a real pseudo-terminal for the ones that draw), against a real sshd
on 127.0.0.1 with stand-in GPUs named as in the README, on a machine kept busy by a
CPU hog. A traceback, a hang or an exit status the README does not document fails.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from ptyterm import CpuHog, PtyTerm, nomadlab_argv
from sshd import SshServer

README = Path(__file__).resolve().parent.parent / "README.md"
HOST = "lambda-h100"  # the README's host name; here a real sshd on 127.0.0.1

# Synopsis lines, and lines naming example ids -> the concrete commands they stand for.
SYNOPSES: dict[str, list[str]] = {
    "focus start deep --for 42": ["focus start deep --for $CARD"],  # card 42: the one added
    "today add 07:00-11:00 deep --for 42": ["today add 07:00-11:00 deep --for $CARD"],
    "board list [--board B] [--archived] [--json] | show ID [--json]": [
        "board list", "board list --board main --archived --json", "board show $CARD",
        "board show $CARD --json"],
    "board export [--markdown|--json] [--board B]": [
        "board export", "board export --markdown --board main", "board export --json"],
    "paper list [--status queued|reading|read|dropped|active|all] [--tag T] [--json]": [
        "paper list", "paper list --status all --tag nlp --json", "paper list --status queued"],
    "paper start 7 [--anyway]": ["paper start 1", "paper start 2", "paper start 3",
                                 "paper start 3 --anyway"],
    'paper read 7 --takeaway "..." [--rating 1-5]': [
        'paper read 1 --takeaway "attention is enough" --rating 4'],
    "paper drop 7": ["paper drop 2"],
    "paper …": [],  # prose: "any `nomadlab paper …` command"
    "paper show 7 | import refs.bib": ["paper show 1", "paper import refs.bib"],
    "paper export [--bibtex|--markdown] [--status S] [--tag T] [ID...] [-o FILE]": [
        "paper export", "paper export --bibtex --status all --tag nlp 1 -o out.bib",
        "paper export --markdown"],
    "focus pause | resume | stop [--abandon] | extend [MIN] | interrupt [NOTE]": [
        "focus pause", "focus resume", "focus extend", "focus extend 5",
        "focus interrupt", 'focus interrupt "a call"', "focus stop",
        "focus start sprint", "focus stop --abandon"],
    "focus status [--json|--short]": ["focus status", "focus status --json",
                                      "focus status --short"],
    "report week [--markdown|--json] [--week 2026-W48]": [
        "report week", "report week --markdown", "report week --json --week 2026-W48"],
    'report retro --worked "..." --didnt "..." --change "..."': [
        'report retro --worked "evals" --didnt "sleep" --change "earlier"'],
    # pid 4100 does not run on the test host: refused, exit 2 with the reason
    "signal lambda-h100 4100 [--signal TERM|INT|KILL]": [
        "signal lambda-h100 4100", "signal lambda-h100 4100 --signal INT"],
    "attach lambda-h100 [SESSION]": ["attach lambda-h100 readme"],
    # cluster "della" points at the test host, where no Slurm controller answers
    "jobs [--cluster C] [--all-users] [--json]": [
        "jobs", "jobs --cluster della --all-users --json"],
    "jobs cancel|hold|release CLUSTER:ID": [
        "jobs cancel nosuch:1", "jobs hold della:1", "jobs release della:1"],
    "exporter [--listen 127.0.0.1:9835]": ["exporter --listen 127.0.0.1:$EXPORTER_PORT"],
    "exporter": [],  # prose; run above, on a free port
    "alerts [--json] [--all | --limit N] [--unacknowledged]": [
        "alerts", "alerts --json", "alerts --all", "alerts --json --limit 5 --unacknowledged"],
}

# Exit statuses the README documents, beyond 0 (command prefix -> allowed statuses).
DOCUMENTED = {
    "status": {0, 1},  # "exit 1 if one failed"
    "paper start": {0, 1},  # "exit 1 past the weekly cap without --anyway"
    "focus start": {0, 1},  # "exit 1, naming it, if a session is open"
    # No OS keyring here (as on a headless box): one line pointing at
    # NOMADLAB_SECRET_<NAME>, the README's other place for secrets.
    "secret set": {0, 2},
    "signal": {0, 2},  # "exit 2 with the reason if refused"
    "jobs": {0, 1},  # "exits 0 when every cluster answered, 1 otherwise"
    "jobs cancel": {2},  # "exits 2 with one line for an unknown cluster or job"
    "jobs hold": {1, 2},  # the controller is down here: 1, like `jobs`
    "jobs release": {1, 2},
}
# Commands that draw: run in a pseudo-terminal until this shows, then quit with q.
DRAWING = {"": "Workspace", "demo": "Workspace", "tail": "following"}
WATCH = "watch"


@dataclass
class Command:
    readme: str  # as the README writes it, after "nomadlab "
    args: str  # what runs


def readme_commands(text: str) -> list[str]:
    """Every nomadlab command in README.md, in order: code-block lines (continuations
    joined, comments dropped, `a; b` split, `$(...)` opened) and inline code."""
    found: list[str] = []
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", text, flags=re.S | re.M)
    for block in blocks:
        for raw in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s+#\s.*$", "", raw).strip()
            for part in re.split(r";\s+|&&", line):
                match = re.search(r"(?:^|\$\(|/)nomadlab(?=\s|$)(.*)", part.strip())
                if match:
                    found.append(match.group(1).strip().removesuffix(")").strip())
    prose = re.sub(r"^```.*?^```", "", text, flags=re.S | re.M)
    for span in re.findall(r"`nomadlab(?: ([^`]*))?`", prose):
        found.append(span.strip())
    unique: list[str] = []
    for command in found:
        if command not in unique:
            unique.append(command)
    return unique


def is_synopsis(command: str) -> bool:
    """Optional parts, alternatives or elisions: not something to type as it is."""
    return bool(re.search(r"\[|\s\|\s|\.\.\.|…", command))


def concrete(commands: list[str]) -> list[Command]:
    out: list[Command] = []
    missing = []
    for command in commands:
        if command in SYNOPSES:
            out += [Command(command, args) for args in SYNOPSES[command]]
        elif is_synopsis(command):
            missing.append(command)
        else:
            out.append(Command(command, command))
    assert not missing, ("README.md has synopsis lines with no concrete forms in "
                         f"SYNOPSES: {missing}")
    return out


def allowed(args: str) -> set[int]:
    words = args.split()
    for size in (2, 1):
        key = " ".join(words[:size])
        if key in DOCUMENTED:
            return DOCUMENTED[key]
    return {0}


def test_readme_lists_the_headline_commands() -> None:
    commands = readme_commands(README.read_text())
    for expected in ("demo", "", "status --json", f"hosts check {HOST}"):
        assert expected in commands, commands
    assert any(c.startswith("tail ") for c in commands)
    assert any(c.startswith("board add ") for c in commands)


@pytest.fixture
def readme_world(isolated_home: Path, tmp_path: Path, gpu_server: SshServer) -> dict[str, str]:
    """A user's machine: a config naming the README's host (a real sshd here, with
    stand-in GPUs), papers' servers offline (nothing leaves 127.0.0.1), a work dir."""
    known = gpu_server.write_known_hosts(tmp_path / "known_hosts")
    config = isolated_home / ".config" / "nomadlab" / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        'show_local = false\n'
        '[ssh]\nconnect_timeout = 5\nlogin_timeout = 10\n'
        f'config_file = "{tmp_path / "no_ssh_config"}"\n'
        '[notify]\nbell = false\ndesktop = false\nnotify_send = false\n'
        '[papers]\narxiv_api = "http://127.0.0.1:9/api"\n'
        'crossref_api = "http://127.0.0.1:9/works"\ntimeout = 2\narxiv_interval = 0.1\n'
        f'[[hosts]]\nname = "{HOST}"\nhostname = "127.0.0.1"\nport = {gpu_server.port}\n'
        f'user = "{gpu_server.user}"\nidentity_file = "{gpu_server.client_key}"\n'
        f'known_hosts = "{known}"\nhourly_cost = 2.49\n'
        f'[[clusters]]\nname = "della"\nhost = "{HOST}"\ntimeout = "10s"\n')
    work = tmp_path / "work"
    work.mkdir()
    (work / "refs.bib").write_text(
        "@article{vaswani2017,\n  title = {Attention Is All You Need},\n"
        "  author = {Vaswani, Ashish},\n  year = {2017},\n}\n")
    env = dict(os.environ)
    env["PATH"] = f"{Path(nomadlab_argv()[0]).parent}:{env.get('PATH', '')}"
    env["NOMADLAB_WORK"] = str(work)
    env["NOMADLAB_SCRATCH_CONFIG"] = str(tmp_path / "scratch.toml")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        env["EXPORTER_PORT"] = str(probe.getsockname()[1])
    return env


def run_plain(args: str, env: dict[str, str], variables: dict[str, str]
              ) -> subprocess.CompletedProcess[str]:
    """Through bash, as typed at a prompt (quotes, variables such as $CARD)."""
    exports = "".join(f"{k}={shlex.quote(v)}; " for k, v in variables.items())
    typed = "s3cret-value\n" if args.startswith("secret set ") else ""
    return subprocess.run(["bash", "-c", f"{exports}exec nomadlab {args}"], check=False,
                          env=env, cwd=env["NOMADLAB_WORK"], capture_output=True, text=True,
                          timeout=120, input=typed)


def run_drawing(args: str, env: dict[str, str], marker: str) -> tuple[int, str]:
    with PtyTerm(["bash", "-c", f"exec nomadlab {args}"], env=env, cols=140, rows=40,
                 cwd=env["NOMADLAB_WORK"]) as term:
        term.wait_for(marker, timeout=90, what=f"`nomadlab {args}` drawing {marker!r}")
        term.press("q")
        return term.wait_exit(60), term.output()


def run_watch(env: dict[str, str]) -> tuple[int, str]:
    """`nomadlab watch` until its first event, then SIGINT: "clean exit"."""
    process = subprocess.Popen(["bash", "-c", "exec nomadlab watch"], env=env,
                               cwd=env["NOMADLAB_WORK"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()  # the first JSON event (bounded: see timeout)
        assert first.startswith("{"), first
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    return process.returncode, first + out + err


def run_server(args: str, env: dict[str, str]) -> tuple[int, str]:
    """`nomadlab exporter`: until it answers a scrape, then SIGINT: "clean exit"."""
    process = subprocess.Popen(["bash", "-c", f"exec nomadlab {args}"], env=env,
                               cwd=env["NOMADLAB_WORK"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{env['EXPORTER_PORT']}/metrics"
    scraped = ""
    try:
        for _ in range(300):  # bounded: 60 s
            if process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(url, timeout=2) as answer:
                    scraped = answer.read().decode()
                break
            except OSError:
                time.sleep(0.2)
        assert "nomadlab_" in scraped, f"the exporter never answered at {url}"
        process.send_signal(signal.SIGINT)
        out, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    return process.returncode, out


def run_attach(args: str, env: dict[str, str]) -> tuple[int, str]:
    """`nomadlab attach`: into a tmux session on the host, detach (C-b d), back.

    The test host is this machine under the same user, so the session the run lives
    in is made here first, as the user would have made it over SSH."""
    clean = {k: v for k, v in env.items() if k != "TMUX"}
    subprocess.run(["tmux", "kill-session", "-t", "readme"], check=False, env=clean,
                   capture_output=True, timeout=30)  # one left by an interrupted run
    subprocess.run(["tmux", "new-session", "-d", "-s", "readme"], check=True, env=clean,
                   capture_output=True, timeout=30)
    with PtyTerm(["bash", "-c", f"exec nomadlab {args}"], env=env, cols=120, rows=30,
                 cwd=env["NOMADLAB_WORK"]) as term:
        term.wait_for(lambda s: "[readme]" in s or term.poll() is not None, timeout=60,
                      what="tmux's status line naming the session")
        if term.poll() is None:
            term.send(b"\x02d")
        status = term.wait_exit(60)
    subprocess.run(["tmux", "kill-session", "-t", "readme"], check=False,
                   capture_output=True, env=env, timeout=30)
    return status, term.output()


def run_trust(args: str, env: dict[str, str]) -> tuple[int, str]:
    with PtyTerm(["bash", "-c", f"exec nomadlab {args}"],
                 env={**env, "PYTHONFAULTHANDLER": "1"}, cwd=env["NOMADLAB_WORK"]) as term:
        try:
            screen = term.wait_for(lambda s: "[y/N]" in s or term.poll() is not None,
                                   timeout=120, what="the trust question or the end")
        except AssertionError as exc:
            # A real hang (the "seen under load" failures were the terminal's exit
            # race, fixed in PtyTerm.wait_for): ask faulthandler (PYTHONFAULTHANDLER=1)
            # for every thread's stack, for the record.
            os.kill(term.pid, signal.SIGABRT)
            term.wait_exit(30)
            raise AssertionError(f"{exc}\n--- stacks at SIGABRT:\n{term.output()[-6000:]}"
                                 ) from None
        if "[y/N]" in screen:
            term.send("y\r")
        return term.wait_exit(60), term.output()


@pytest.mark.sshd
@pytest.mark.timeout(1200)
def test_every_readme_command_runs_on_a_busy_machine(readme_world: dict[str, str]) -> None:
    env = readme_world
    commands = concrete(readme_commands(README.read_text()))
    variables: dict[str, str] = {}
    failures: list[str] = []
    with CpuHog():
        for command in commands:
            args = command.args
            word = args.split()[0] if args else ""
            run_env = env
            if args.startswith("hosts add "):
                # Adding the README's example host would point the others at a
                # documentation address (203.0.113.7): add it to a scratch config.
                run_env = {**env, "NOMADLAB_CONFIG": env["NOMADLAB_SCRATCH_CONFIG"]}
            if word in DRAWING and (word or not args):
                status, output = run_drawing(args, run_env, DRAWING[word])
            elif args == WATCH:
                status, output = run_watch(run_env)
            elif args.startswith("hosts trust "):
                status, output = run_trust(args, run_env)
            elif args.startswith("exporter"):
                status, output = run_server(args, run_env)
            elif args.startswith("attach "):
                status, output = run_attach(args, run_env)
            else:
                done = run_plain(args, run_env, variables)
                status, output = done.returncode, done.stdout + done.stderr
                if args.startswith("board add ") and status == 0:
                    variables["CARD"] = done.stdout.strip()
            problems = []
            if "Traceback" in output:
                problems.append("a traceback")
            if status == 2 and "\n" in output.strip():
                problems.append("exit status 2 without a one-line message")
            if status not in allowed(args):
                problems.append(f"exit status {status} (documented: {sorted(allowed(args))})")
            if problems:
                failures.append(f"`nomadlab {args}` (README: `nomadlab {command.readme}`): "
                                f"{', '.join(problems)}\n{output[-1500:]}")
    assert not failures, "\n\n".join(failures)
