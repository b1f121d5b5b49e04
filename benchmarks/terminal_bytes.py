"""Bytes per second the TUI writes to the terminal, against nvitop on the same GPUs.

What over SSH costs bandwidth is how much of the screen is repainted each second.
Here: one host (this machine, sampled in-process) with 8 GPUs whose utilization,
memory utilization, temperature and power change continuously (the stand-in
libnvidia-ml.so.1 of tests/standins with ``wave=1`` on a copy of
tests/data/nvml/h100x8.conf: 8 H100s, 4 of them busy), shown at 160x48.

How: each program runs in a pty of its own sized 160x48 (TIOCSWINSZ), TERM
=xterm-256color, HOME and XDG dirs in a temp dir, LD_LIBRARY_PATH pointing at the
stand-in library; a thread reads the pty's master side all the time and records
every read. After a warm-up (5 s) the bytes are counted over a window (20 s).

- nomadlab: ``python -m nomadlab --config <tmp config: show_local = true, no
  hosts, data_dir in the temp dir>``; "1" is typed to switch to the fleet screen
  (the local machine's row and its 8 GPU rows, the process table, the footer).
  TEXTUAL_FPS is left unset (Textual's default, 60) and COLORTERM is unset (256
  colours, as over SSH, where COLORTERM is not passed on by default); a second run
  sets COLORTERM=truecolor, as most local terminals do (24-bit colour sequences
  are longer);
- nvitop (``pip install -e .[bench]``): its default monitor mode with ``--interval
  1`` (1 s, as nomadlab), and once with its default interval (2 s).

Also printed: frames per second (bursts of output less than 5 ms apart) and each
program's CPU over the window. Every program is ended at the end (its whole
process group), and the script checks that nothing of them is left.

Run: ``python benchmarks/terminal_bytes.py [--quick]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _common


@dataclass
class Run:
    label: str
    argv: list[str]
    env: dict[str, str] = field(default_factory=dict)
    keys: bytes = b""  # typed once the program has drawn its first screen
    expect: bytes = b""  # must appear in the output after the keys (sanity check)
    quit: bytes = b"q"


def measure(run: Run, env: dict[str, str], warmup: float, window: float) -> dict[str, Any]:
    proc = _common.PtyProcess(run.argv, {**env, **run.env}, keep=True)
    out: dict[str, Any] = {"label": run.label, "pgid": proc.pid}
    try:
        deadline = time.monotonic() + 30
        while proc.total == 0 and time.monotonic() < deadline and proc.proc.poll() is None:
            time.sleep(0.05)
        time.sleep(1.5)  # let it finish starting up
        mark = proc.total
        if run.keys:
            proc.write(run.keys)
        time.sleep(warmup)
        assert proc.data is not None
        # After the keys if any were typed (the screen they switch to), else anywhere.
        seen = bytes(proc.data[mark if run.keys else 0:])
        out["saw"] = run.expect in seen
        if not out["saw"]:  # say what was on the screen instead
            text = re.sub(rb"\x1b(\[[0-9;?<=>]*[ -/]*[@-~]|[()][0-9A-Za-z]|[^[()])", b" ", seen)
            out["screen"] = " ".join(text.decode("utf-8", "replace").split())[:300]
        if proc.proc.poll() is not None:
            raise RuntimeError(f"{run.label} exited early: "
                               f"{bytes(proc.tail).decode('utf-8', 'replace')[-1500:]}")
        before = _common.MachineSnapshot()
        start = time.monotonic()
        first = proc.total
        time.sleep(window)
        end = time.monotonic()
        out["window_bytes"] = bytes(proc.data[first:proc.total])
        out["all_bytes"], out["window_from"] = bytes(proc.data[:proc.total]), first
        after = _common.MachineSnapshot()
        ticks = sum(_common._delta(before, after, p) for p in _common.tree(proc.pid, after.procs))
        out.update(
            seconds=end - start,
            bytes=proc.bytes_between(start, end),
            writes=proc.bursts_between(start, end),
            cpu_pct=100.0 * ticks / _common.HZ / (end - start),
            sharing=_common.sharing_report(before, after, {run.label: [proc.pid]}),
        )
        proc.write(run.quit)
        stopped = time.monotonic() + 5
        while proc.proc.poll() is None and time.monotonic() < stopped:
            time.sleep(0.05)
        out["quit_cleanly"] = proc.proc.poll() is not None
    finally:
        proc.stop()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="shorter windows, fewer runs")
    parser.add_argument("--warmup", type=float)
    parser.add_argument("--window", type=float)
    parser.add_argument("--wait-quiet", type=float, default=0.0, metavar="SECONDS",
                        help="before each run, wait up to this long for an idle machine")
    parser.add_argument("--dump", type=Path, metavar="DIR",
                        help="write what each program wrote over the window to DIR/LABEL.bin "
                             "(to decode with benchmarks/ansi_census.py)")
    parser.add_argument("--runs", help="only the runs whose label contains one of these "
                                       "comma-separated words (e.g. nvitop)")
    args = parser.parse_args()
    warmup = args.warmup if args.warmup is not None else (3.0 if args.quick else 5.0)
    window = args.window if args.window is not None else (6.0 if args.quick else 20.0)
    _common.header("terminal_bytes: bytes/s written to a 160x48 terminal, one host of 8 GPUs "
                   "changing every second", ["python", *sys.argv])
    sys.path.insert(0, str(_common.TESTS))
    from standins.nvml import build_fake_nvml

    tmp = Path(tempfile.mkdtemp(prefix="nomadlab-terminal-bytes-"))
    results: list[dict[str, Any]] = []
    try:
        lib = build_fake_nvml(tmp / "nvml")
        conf = tmp / "h100x8.conf"
        text = (_common.TESTS / "data" / "nvml" / "h100x8.conf").read_text()
        conf.write_text(text.replace("\nwave=0\n", "\nwave=1\n"))
        assert "\nwave=1\n" in conf.read_text()
        config = tmp / "config.toml"
        config.write_text(f'data_dir = "{tmp / "data"}"\nshow_local = true\n')
        env = _common.isolated_env(tmp / "home", LD_LIBRARY_PATH=str(lib),
                                   NOMADLAB_FAKE_NVML=str(conf))
        nomadlab = [sys.executable, "-m", "nomadlab", "--config", str(config)]
        runs = [Run("nomadlab", nomadlab, keys=b"1", expect=b"Hosts and GPUs")]
        if not args.quick:
            runs.append(Run("nomadlab COLORTERM=truecolor", nomadlab,
                            env={"COLORTERM": "truecolor"}, keys=b"1",
                            expect=b"Hosts and GPUs"))
        if importlib.util.find_spec("nvitop") is None:
            print("nvitop is not installed (pip install -e .[bench]): measuring nomadlab only")
        else:
            runs.append(Run("nvitop --interval 1", [sys.executable, "-m", "nvitop",
                                                    "--interval", "1"],
                            # each GPU's memory total (at 160 columns nvitop shows no names)
                            expect=b"79.65GiB"))
            if not args.quick:
                runs.append(Run("nvitop (default interval, 2 s)",
                                [sys.executable, "-m", "nvitop"], expect=b"79.65GiB"))
        if args.runs:
            wanted = [w.strip() for w in args.runs.split(",")]
            runs = [r for r in runs if any(w in r.label for w in wanted)]
        for run in runs:
            quiet = _common.wait_for_quiet(args.wait_quiet)
            results.append(measure(run, env, warmup, window))
            print(f"  {run.label}: done" + (f" ({quiet})" if quiet else ""), flush=True)
    finally:
        left = _common.leftovers(r["pgid"] for r in results)
        shutil.rmtree(tmp, ignore_errors=True)
    if args.dump:
        args.dump.mkdir(parents=True, exist_ok=True)
        for r in results:
            name = re.sub(r"[^A-Za-z0-9]+", "-", r["label"]).strip("-")
            (args.dump / f"{name}.bin").write_bytes(r["window_bytes"])
            # everything from the start, and where the window began (ansi_census.py
            # --cells replays it through a terminal emulator)
            (args.dump / f"{name}.all.bin").write_bytes(r["all_bytes"])
            (args.dump / f"{name}.all.from").write_text(str(r["window_from"]))
    report(results, warmup, window, left)


def report(results: list[dict[str, Any]], warmup: float, window: float,
           left: list[int]) -> None:
    print()
    print(f"160x48, TERM=xterm-256color, TEXTUAL_FPS unset (default 60); warm-up "
          f"{warmup:g} s, window {window:g} s")
    print("program                         | bytes/s | frames/s | bytes/frame | CPU % of a core")
    for r in results:
        rate = r["bytes"] / r["seconds"]
        writes = r["writes"] / r["seconds"]
        per = r["bytes"] / r["writes"] if r["writes"] else 0
        flag = "" if r["saw"] else f"  (expected text not seen; screen: {r['screen']!r})"
        print(f"{r['label']:31s} | {rate:7.0f} | {writes:8.1f} | {per:11.0f} | "
              f"{r['cpu_pct']:6.1f}{flag}")
    ours = next((r for r in results if r["label"] == "nomadlab"), None)
    theirs = next((r for r in results if r["label"] == "nvitop --interval 1"), None)
    print()
    if ours is not None and theirs is not None:
        a = ours["bytes"] / ours["seconds"]
        b = theirs["bytes"] / theirs["seconds"]
        print(f"nomadlab / nvitop (both at 1 s): {a / b:.2f}x")
        print(f"target: nomadlab no more bytes than nvitop -> "
              f"{'met' if a <= b else 'MISSED'}")
    for r in results:
        print(f"{r['label']}: quit on 'q': {'yes' if r['quit_cleanly'] else 'no (killed)'}")
        for line in r["sharing"]:
            print("  " + line)
    print(f"left-over processes of the programs: {left if left else 'none'}")


if __name__ == "__main__":
    main()
