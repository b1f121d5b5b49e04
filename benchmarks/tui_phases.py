"""Where the TUI's start goes, phase by phase, up to its first painted frame: the
breakdown behind benchmarks/tui_start.py's one figure (issue 10, "fast to start").

What: ``nomadlab`` with the same 50 silent hosts as tui_start.py, in a 160x48 pty,
run under a prologue that records ``time.process_time()`` at marks: Python started;
Textual's app module imported (what bare Textual also pays); nomadlab's CLI, TUI, app
and workspace modules imported; the config read; the app's objects built (store,
fleet, logs, alert hub, the App); the app's first screen made (Textual's
``_init_mode``); the workspace's panes mounted; the first frame painted (the first
``App._display`` not dropped under a batch). Each phase's CPU milliseconds are the
difference between two marks, printed as the median and the minimum over ``--runs``
runs (after a warm-up run), with bytecode caching on.

The marks wrap Textual's methods in the measured process only (a benchmark's
instrument, not the product); they cost a few microseconds each. Run:
``python benchmarks/tui_phases.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common
import tui_start

MARKS = ("python", "textual", "cli modules", "tui modules", "app module", "workspace module",
         "config", "app objects", "first screen made", "panes mounted", "first frame")

PROLOGUE = r'''
import os, sys, time, functools
_marks = []
def _mark(name):
    _marks.append((name, time.process_time()))
_mark("python")
import textual.app as _ta
_mark("textual")
_shown = _ta.App._display
def _display(self, screen, renderable):
    painted = renderable is not None and not self._batch_count
    _shown(self, screen, renderable)
    if painted:
        _mark("first frame")
        with open(os.environ["PHASES_LOG"], "a") as log:
            log.write(";".join(f"{n}={c:.5f}" for n, c in _marks) + "\n")
        os._exit(0)
_ta.App._display = _display
_init_mode = _ta.App._init_mode
def _timed_init_mode(self, mode):
    result = _init_mode(self, mode)
    _mark("first screen made")
    return result
_ta.App._init_mode = _timed_init_mode
import nomadlab.cli as _cli
_mark("cli modules")
from nomadlab.core import lazyimport as _lazy
_lazy.defer("asyncssh")
import gc as _gc
_gc.disable()  # as nomadlab's TUI does until its first frame
import nomadlab.cli.tui as _tui
_mark("tui modules")
import nomadlab.ui.app as _app
_mark("app module")
import nomadlab.ui.workspace as _ws
_mark("workspace module")
_config_from = _tui.config_from
def _timed_config(*args):
    result = _config_from(*args)
    _mark("config")
    return result
_tui.config_from = _timed_config
_build = _tui.build_app
def _timed_build(*args, **kwargs):
    result = _build(*args, **kwargs)
    _mark("app objects")
    return result
_tui.build_app = _timed_build
_arrange = _ws.WorkspaceScreen.arrange_panes
@functools.wraps(_arrange)
async def _timed_arrange(self):
    await _arrange(self)
    if not any(n == "panes mounted" for n, _ in _marks):
        _mark("panes mounted")
_ws.WorkspaceScreen.arrange_panes = _timed_arrange
sys.argv[0] = "nomadlab"
sys.exit(_cli.main())
'''


def _written(log: Path) -> bool:
    return log.exists() and log.read_text().endswith("\n")


def one_run(argv: list[str], env: dict[str, str], log: Path) -> dict[str, float]:
    log.unlink(missing_ok=True)
    proc = _common.PtyProcess(argv, {**env, "PHASES_LOG": str(log)})
    try:
        deadline = time.monotonic() + 60
        while not _written(log) and time.monotonic() < deadline:
            if proc.proc.poll() is not None and not _written(log):
                raise RuntimeError("nomadlab exited before its first frame: "
                                   + bytes(proc.tail).decode("utf-8", "replace")[-1500:])
            time.sleep(0.01)
        stopped = time.monotonic() + 5
        while proc.proc.poll() is None and time.monotonic() < stopped:
            time.sleep(0.01)
    finally:
        proc.stop()
    marks = dict(item.split("=") for item in log.read_text().strip().split(";"))
    return {name: float(value) for name, value in marks.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    _common.header(f"tui_phases: CPU ms per phase up to nomadlab's first painted frame, "
                   f"{tui_start.HOSTS} hosts in flight, 160x48 pty", ["python", *sys.argv])
    tmp = Path(tempfile.mkdtemp(prefix="nomadlab-tui-phases-"))
    silent = tui_start.Silent()
    try:
        config = tmp / "config.toml"
        config.write_text(tui_start.config_text(tmp, silent))
        env = {**_common.isolated_env(tmp / "home"), "PYTHONDONTWRITEBYTECODE": ""}
        argv = [sys.executable, "-P", "-c", PROLOGUE, "--config", str(config)]
        phases: dict[str, list[float]] = {name: [] for name in MARKS}
        for i in range(args.runs + 1):  # the first is a warm-up
            marks = one_run(argv, env, tmp / "phases.log")
            if i == 0:
                continue
            previous = 0.0
            for name in MARKS:
                at = marks.get(name, previous)
                phases[name].append((at - previous) * 1000)
                previous = at
        print(f"\nCPU ms per phase, median (min) of {args.runs} runs; each phase ends at "
              "its mark")
        total_med = 0.0
        for name in MARKS:
            values = phases[name]
            med = statistics.median(values)
            total_med += med
            print(f"  {name:20s} {med:7.1f}  ({min(values):6.1f})")
        print(f"  {'sum of medians':20s} {total_med:7.1f}")
    finally:
        silent.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
