"""nomadlab's render fix to Textual (nomadlab/ui/textual_patches.py) changes the bytes,
never the picture: the same frames drawn with and without it, on a real
pseudo-terminal read through a VT100 emulator (pyte), give the same screen after every
frame, wide characters included, in fewer bytes. And it is applied when the app
starts, not when a module is imported.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from functools import partial
from pathlib import Path

import textual_frames
from ptyterm import PtyTerm

from nomadlab.ui import textual_patches

HERE = Path(__file__).resolve().parent
texts: list[str] = []  # the last run's screen text after each frame
COLS, ROWS = 100, 16


def cells(term: PtyTerm) -> list[str]:
    """The screen cell by cell, characters and their colours and attributes: a
    double-width character's second cell is empty, unlike a space written there (which
    a real terminal takes as erasing the whole character; pyte's text would hide it)."""
    out = []
    for y in range(term.rows):
        line = term.screen.buffer[y]
        out.append("".join(
            f"{c.data or '<2>'}{c.fg}/{c.bg}{'b' if c.bold else ''}{'i' if c.italics else ''}"
            f"{'r' if c.reverse else ''}{'u' if c.underscore else ''}"
            f"{'s' if c.strikethrough else ''}{'k' if c.blink else ''}|"
            for c in (line[x] for x in range(term.cols))))
    return out


def shows_all(wanted: list[str], text: str) -> bool:
    return all(v in text for v in wanted)


def frames(mode: str) -> tuple[list[list[str]], list[bytes]]:
    """The screen after the first paint and after each frame, and the bytes written
    for each frame, for ``textual_frames.py MODE``."""
    screens: list[list[str]] = []
    costs: list[bytes] = []
    texts.clear()
    total = len(textual_frames.FRAMES)
    with PtyTerm([sys.executable, str(HERE / "textual_frames.py"), mode],
                 env=dict(os.environ), cols=COLS, rows=ROWS) as term:
        term.wait_for(f"0/{total}", what="the first paint")
        term.wait_for(lambda s: "plain-4" in s and "全部 ok" in s
                      and term.screen.buffer[ROWS - 1][COLS - 1].bg != "default",
                      what="the whole first paint")
        screens.append(cells(term))
        for k in range(1, total + 1):
            before = len(term.raw)
            term.press("n")
            updates, (_, char) = textual_frames.FRAMES[k - 1]
            expected = [value for _, _, value in updates]
            power = f"{111 * k:>5} W 全部"  # the last lines drawn
            a, b, c, d = (f"{7 * i * k % 100:>2}" for i in range(1, 5))
            numbers = f"load {a} | {b}漢{c} x {d} end"
            wanted = [f" {k}/{total}", char, power, numbers, *expected]
            term.wait_for(partial(shows_all, wanted), what=f"frame {k}")
            screens.append(cells(term))
            texts.append("\n".join(term.screen.display))
            costs.append(bytes(term.raw[before:]))
        term.press("q")
        assert term.wait_exit() == 0
    return screens, costs


def test_the_same_frames_with_and_without_the_patch() -> None:
    assert textual_patches.applies(), "the suite runs the Textual of constraints.txt"
    plain, plain_bytes = frames("plain")
    patched, patched_bytes = frames("patched")
    assert len(plain) == len(patched) == len(textual_frames.FRAMES) + 1
    for k, (want, got) in enumerate(zip(plain, patched, strict=True)):
        assert got == want, f"frame {k} differs:\n" + "\n".join(
            f"row {y}:\n  {a}\n  {b}" for y, (a, b) in enumerate(zip(want, got, strict=True))
            if a != b)
    # What the frames show, so that the comparison is not between two blank screens:
    last = texts[-1]
    assert "漢字漢字漢字" in last and "🔥 700 W" in last and "gpu-東京-1" in last
    assert "電源 gpu0   666 W 全部 ok" in last
    assert "[日二三四" not in last  # the wide line: character 5 (not 0) became 日
    assert "木二三火五日七水九十百千金亿兆京垓秭穰土" in last.replace(" ", "")
    # ...in fewer bytes: the cells left of each change are not sent again. The wide
    # line (screen row 7) and the power line (row 8) change a few cells each frame:
    # Textual sends them from column 1, the fix from the change (the power's digits
    # at column 13; the wide line where the changed character starts).
    assert b"\x1b[7;1H" in plain_bytes[-1] and b"\x1b[8;1H" in plain_bytes[-1]
    assert b"\x1b[7;1H" not in patched_bytes[-1] and b"\x1b[8;1H" not in patched_bytes[-1]
    assert b"\x1b[8;13H" in patched_bytes[-1]
    _, (index, _) = textual_frames.FRAMES[-1]
    assert f"\x1b[7;{2 * index}H".encode() in patched_bytes[-1]  # 1-based: the cell before
    # The third line (row 9), numbers in four refresh regions of their own: the three
    # cells " | " between the first two, in the style already set, are written out
    # rather than moved over; the wide character between the next two is not.
    k = len(textual_frames.FRAMES)
    a, b, c = (f"{7 * i * k % 100:>2}" for i in range(1, 4))
    final = patched_bytes[-1]
    assert f"{a} | {b}\x1b[2C{c}".encode() in final.replace(b"\x1b[4;7m", b"")
    # Each style is set where it changes, not around every run of cells; no line
    # feeds (each line starts with a move); the last SGR is a reset, as Textual's.
    assert b"\r\n" in plain_bytes[-1] and b"\r\n" not in final
    sgr = re.compile(rb"\x1b\[[0-9;]*m")
    assert 3 * len(sgr.findall(final)) < len(sgr.findall(plain_bytes[-1]))
    assert sgr.findall(final)[-1] == b"\x1b[0m"
    assert 2 * sum(map(len, patched_bytes)) < sum(map(len, plain_bytes))


def test_the_version_check_reads_the_installed_version() -> None:
    import textual

    assert textual_patches.textual_version() == textual.__version__


def test_applied_at_app_start_not_on_import() -> None:
    probe = (
        "from textual._compositor import ChopsUpdate\n"
        "from textual.widgets import Input\n"
        "import nomadlab.ui.app, nomadlab.ui.textual_patches as p\n"
        "print(p.applied(), getattr(Input._on_key, '_nomadlab', False))\n"
        "from nomadlab.cli.tui import build_app\n"
        "from nomadlab.core.config import load_config_text\n"
        "build_app(load_config_text('show_local = false\\n'), start_fleet=False,"
        " store=__import__('nomadlab.core.store', fromlist=['Store']).Store(':memory:'))\n"
        "print(p.applied(), getattr(Input._on_key, '_nomadlab', False))\n"
        "p.remove()\n"
        "print(p.applied(), getattr(Input._on_key, '_nomadlab', False))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["False False", "True True", "False False"]
