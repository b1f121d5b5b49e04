"""Time from process start to the first painted frame: nomadlab with 50 hosts against a
bare Textual "hello" app, in the same run (issue 10, "fast to start").

What: wall time from just before the process is started to the moment its screen,
read through a VT100 emulator (pyte) from the pty's master side, shows a marker:

- bare Textual: ``App`` with one ``Static("hello from bare textual")``, run as
  ``python -c`` (the same interpreter, the same Textual); the marker is that text.
- nomadlab: ``python -m nomadlab --config <tmp>`` with 50 ``[[hosts]]`` on 127.0.0.1
  that never answer: 25 on a port that refuses connections (closed), 25 on a
  listening socket that accepts nothing (the TCP handshake completes in the kernel's
  backlog, the SSH banner never comes, so the connection stays in flight until
  ``connect_timeout``, 15 s, long after the first frame). ``show_local = false``.
  The marker is the workspace's fleet pane listing the first host (``gpu-00``) and
  the footer's ``Quit`` key: the screen as a user first sees it.

Each program runs in a 160x48 pty (TERM=xterm-256color, COLORTERM unset), its own
HOME/XDG dirs in a temp dir; after the marker, "q" is typed, and the process group
is killed if it has not exited within 5 s. Runs alternate (bare, nomadlab, bare...)
so that a change in the machine's load hits both; the figure is the median of
``--runs`` runs each (default 7), after one warm-up run each (bytecode caches, the
page cache), with bytecode caching on (PYTHONDONTWRITEBYTECODE emptied: an installed
nomadlab has its .pyc files, as Textual in site-packages has).

Also printed: each program's CPU seconds when it painted the frame that showed the
marker. Both programs run under the same few-line prologue (``PROLOGUE``) that logs
``time.monotonic()`` and ``time.process_time()`` after every frame Textual hands to
the terminal; the frame is the last one logged before the marker was read. On a busy
machine the wall times stretch with the load (the programs wait for a core), the CPU
seconds much less: read them together.

Target: nomadlab's median at most 1.5x bare Textual's.

Run: ``python benchmarks/tui_start.py [--runs N] [--quick] [--show]``; ``--show``
prints the screen each program showed at its marker (first run).
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common
import pyte

COLS, ROWS = 160, 48
HOSTS = 50
BARE = (
    "from textual.app import App\n"
    "from textual.widgets import Static\n"
    "class Hello(App):\n"
    "    BINDINGS = [('q', 'quit', 'Quit')]\n"
    "    def compose(self):\n"
    "        yield Static('hello from bare textual')\n"
    "Hello().run()\n"
)
TARGET = 1.5
# Both programs run under this prologue: after each frame Textual hands to the
# terminal, it appends "monotonic process_time" to $FIRST_FRAME_LOG (the first 40
# frames), so the CPU the process had used when it painted the frame the marker came
# in can be read exactly, however busy the machine (the wall time is the figure; the
# CPU is what a loaded machine changes least).
PROLOGUE = (
    "import os, time, textual.app as _ta\n"
    "_log = open(os.environ['FIRST_FRAME_LOG'], 'a', buffering=1)\n"
    "_shown = _ta.App._display\n"
    "def _display(self, screen, renderable, _n=[0]):\n"
    "    _shown(self, screen, renderable)\n"
    "    if renderable is not None and _n[0] < 40:\n"
    "        _n[0] += 1\n"
    "        _log.write(f'{time.monotonic()} {time.process_time()}\\n')\n"
    "_ta.App._display = _display\n"
)
NOMADLAB = "import sys\nfrom nomadlab.cli import main\nsys.argv[0] = 'nomadlab'\nsys.exit(main())\n"


def first_paint(argv: list[str], env: dict[str, str],
                painted: Callable[[str], bool], log: Path, timeout: float = 60.0
                ) -> tuple[float, float, str, int]:
    """(seconds to the marker, CPU seconds of the process when it painted the frame
    that showed it, screen text then, pgid)."""
    log.unlink(missing_ok=True)
    env = {**env, "FIRST_FRAME_LOG": str(log)}
    screen = pyte.Screen(COLS, ROWS)
    stream = pyte.ByteStream(screen)
    start = time.monotonic()
    proc = _common.PtyProcess(argv, env, cols=COLS, rows=ROWS, keep=True)
    fed = 0  # bytes of proc.data fed to pyte
    seen_at: float | None = None
    try:
        deadline = start + timeout
        while seen_at is None and time.monotonic() < deadline:
            with proc._lock:
                reads = list(proc.reads)
                assert proc.data is not None
                data = bytes(proc.data)
            # Feed read by read, so that the time is the read that completed the frame.
            offset = 0
            for at, n in reads:
                if offset + n <= fed:
                    offset += n
                    continue
                stream.feed(data[max(fed, offset):offset + n])
                fed = offset = offset + n
                if painted("\n".join(screen.display)):
                    seen_at = at
                    break
            if seen_at is None:
                if proc.proc.poll() is not None:
                    raise RuntimeError(f"{argv[:3]} exited before painting: "
                                       f"{bytes(proc.tail).decode('utf-8', 'replace')[-1500:]}")
                time.sleep(0.002)
        if seen_at is None:
            raise RuntimeError(f"no marker within {timeout:.0f} s; screen:\n"
                               + "\n".join(screen.display))
        text = "\n".join(screen.display)
        proc.write(b"q")
        stopped = time.monotonic() + 5
        while proc.proc.poll() is None and time.monotonic() < stopped:
            time.sleep(0.02)
    finally:
        proc.stop()
    frames = [tuple(map(float, line.split())) for line in log.read_text().splitlines()]
    cpu = max((c for t, c in frames if t <= seen_at), default=float("nan"))
    return seen_at - start, cpu, text, proc.pid


class Silent:
    """127.0.0.1 ports for hosts that never answer: closed ones (refused) and one
    listening socket that never accepts (the connection stays in flight)."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(128)
        self.in_flight_port = self.listener.getsockname()[1]
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.closed_port = probe.getsockname()[1]
        probe.close()

    def close(self) -> None:
        self.listener.close()


def config_text(tmp: Path, silent: Silent) -> str:
    lines = [f'data_dir = "{tmp / "data"}"', "show_local = false", ""]
    for i in range(HOSTS):
        port = silent.closed_port if i % 2 else silent.in_flight_port
        lines += ["[[hosts]]", f'name = "gpu-{i:02d}"', 'hostname = "127.0.0.1"',
                  f"port = {port}", 'user = "nobody"', ""]
    lines += ["[ssh]", f'config_file = "{tmp / "no-ssh-config"}"',
              f'known_hosts = "{tmp / "known_hosts"}"', ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--quick", action="store_true", help="3 runs each")
    parser.add_argument("--show", action="store_true",
                        help="print the screen of each program at its marker")
    args = parser.parse_args()
    runs = 3 if args.quick else args.runs
    _common.header(f"tui_start: process start to first painted frame, {COLS}x{ROWS} pty, "
                   f"nomadlab with {HOSTS} hosts in flight vs bare Textual",
                   ["python", *sys.argv])
    tmp = Path(tempfile.mkdtemp(prefix="nomadlab-tui-start-"))
    silent = Silent()
    pgids: list[int] = []
    times: dict[str, list[float]] = {"bare Textual": [], "nomadlab": []}
    cpus: dict[str, list[float]] = {"bare Textual": [], "nomadlab": []}
    try:
        config = tmp / "config.toml"
        config.write_text(config_text(tmp, silent))
        # Bytecode is cached, as after a pip install (this machine's environment sets
        # PYTHONDONTWRITEBYTECODE, and the warm-up run writes what is missing).
        env = {**_common.isolated_env(tmp / "home"), "PYTHONDONTWRITEBYTECODE": ""}
        programs = {
            # -P: the programs import what PYTHONPATH or the environment names, not a
            # nomadlab/ in the directory this is run from (``python -c`` would put the
            # current directory first on sys.path, ahead of PYTHONPATH).
            "bare Textual": ([sys.executable, "-P", "-c", PROLOGUE + BARE],
                             lambda s: "hello from bare textual" in s),
            "nomadlab": ([sys.executable, "-P", "-c", PROLOGUE + NOMADLAB, "--config",
                          str(config)],
                         lambda s: "gpu-00" in s and "Quit" in s),
        }
        for i in range(runs + 1):  # the first round is the warm-up
            for label, (argv, painted) in programs.items():
                seconds, cpu, text, pgid = first_paint(argv, env, painted, tmp / "frames.log")
                pgids.append(pgid)
                if i == 0:
                    if args.show:
                        print(f"--- {label} at its marker ({seconds:.3f} s):\n{text}")
                    continue
                times[label].append(seconds)
                cpus[label].append(cpu)
            if i:
                print(f"  round {i}: bare {times['bare Textual'][-1]:.3f} s "
                      f"(CPU {cpus['bare Textual'][-1]:.3f} s), nomadlab "
                      f"{times['nomadlab'][-1]:.3f} s (CPU {cpus['nomadlab'][-1]:.3f} s)",
                      flush=True)
    finally:
        silent.close()
        left = _common.leftovers(pgids)
        shutil.rmtree(tmp, ignore_errors=True)
    print()
    print(f"median of {runs} runs each (after a warm-up run), wall seconds from start to "
          f"the first painted frame; CPU seconds of the process when it painted it")
    for label, values in times.items():
        print(f"  {label:13s} {statistics.median(values):.3f} s  "
              f"(min {min(values):.3f}, max {max(values):.3f}; "
              f"CPU {statistics.median(cpus[label]):.3f} s)")
    ratio = statistics.median(times["nomadlab"]) / statistics.median(times["bare Textual"])
    cpu_ratio = statistics.median(cpus["nomadlab"]) / statistics.median(cpus["bare Textual"])
    print(f"nomadlab / bare Textual: {ratio:.2f}x wall, {cpu_ratio:.2f}x CPU; target <= "
          f"{TARGET}x (wall) -> {'met' if ratio <= TARGET else 'MISSED'}")
    print(f"left-over processes of the programs: {left if left else 'none'}")


if __name__ == "__main__":
    main()
