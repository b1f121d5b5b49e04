"""How much CPU a short ``nomadlab`` command costs to start (issue 10, "fast to start").

Each command runs as a child process N times (default 5); the figure is the median of
the child's user+sys CPU seconds (``os.wait4``'s rusage), not wall time, so a busy
machine changes it little. ``python3 -c pass`` on the same interpreter is the
baseline; the ratio is command / baseline. Config and data live in a temp XDG dir
(one host, no network: none of these commands connects anywhere).

Targets: ``--version`` and ``focus status --short`` at most 0.12 s CPU; ``--help`` and
``board list`` at most 0.25 s.

    python benchmarks/cli_start.py [--runs N] [--quick]

The figures of another commit, on the same machine in the same minute:
``git archive <commit> nomadlab | tar -x -C /tmp/nl && PYTHONPATH=/tmp/nl python
benchmarks/cli_start.py`` (PYTHONPATH comes before the editable install).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

COMMANDS: list[tuple[str, list[str], float | None]] = [
    ("python3 -c pass", [sys.executable, "-c", "pass"], None),
    ("nomadlab --version", ["--version"], 0.12),
    ("nomadlab focus status --short", ["focus", "status", "--short"], 0.12),
    ("nomadlab --help", ["--help"], 0.25),
    ("nomadlab board list", ["board", "list"], 0.25),
]


def nomadlab_argv() -> list[str]:
    """The installed console script next to this interpreter, else ``-m nomadlab``."""
    script = Path(sys.executable).with_name("nomadlab")
    if script.exists():
        return [str(script)]
    found = shutil.which("nomadlab")
    return [found] if found else [sys.executable, "-m", "nomadlab"]


def cpu_seconds(argv: list[str], env: dict[str, str]) -> float:
    """User+sys CPU of one run of ``argv`` (the child alone, via wait4)."""
    proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} exited {proc.returncode}: {err.strip()}")
    return usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="3 runs each")
    args = parser.parse_args()
    if args.quick:
        args.runs = 3
    base = nomadlab_argv()
    with tempfile.TemporaryDirectory(prefix="nomadlab-cli-start-") as tmp:
        root = Path(tmp)
        (root / "config" / "nomadlab").mkdir(parents=True)
        (root / "data").mkdir()
        (root / "config" / "nomadlab" / "config.toml").write_text(
            '[[hosts]]\nname = "gpu1"\nhostname = "gpu1.invalid"\n')
        env = {k: v for k, v in os.environ.items() if not k.startswith("NOMADLAB_")}
        env.update(XDG_CONFIG_HOME=str(root / "config"), XDG_DATA_HOME=str(root / "data"),
                   XDG_STATE_HOME=str(root / "state"), XDG_CACHE_HOME=str(root / "cache"),
                   HOME=str(root), PYTHONDONTWRITEBYTECODE="")
        # one warm-up each: the store is created and bytecode is cached, as on a user's
        # second call
        for _, argv, _ in COMMANDS:
            cpu_seconds(argv if argv[0] == sys.executable else base + argv, env)
        where = subprocess.run(
            [sys.executable, "-c", "import nomadlab; print(nomadlab.__file__)"], env=env, cwd=tmp,
            capture_output=True, text=True, check=False).stdout.strip()
        load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
        print(f"CPU seconds (user+sys of the child), median of {args.runs} runs; "
              f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {load}")
        print(f"nomadlab from {where}; command {' '.join(base)}")
        baseline = 0.0
        for label, argv, target in COMMANDS:
            full = argv if argv[0] == sys.executable else base + argv
            figure = statistics.median(cpu_seconds(full, env) for _ in range(args.runs))
            if target is None:
                baseline = figure
                print(f"  {label:32} {figure:6.3f} s   (baseline)")
                continue
            ratio = figure / baseline if baseline else float("nan")
            verdict = "met" if figure <= target else "MISSED"
            print(f"  {label:32} {figure:6.3f} s   {ratio:5.1f}x baseline   "
                  f"target <= {target:.2f} s: {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
