"""Where the bytes a program wrote to its terminal go: text, cursor moves, colour
and attribute (SGR) sequences, resets, line ends, other escapes.

Input: a file of raw terminal output, e.g. one written by ``terminal_bytes.py --dump
DIR``. Prints bytes and count per kind, the most frequent SGR sequences, and how many
SGR sequences set exactly the state that was already set (a terminal-state model:
SGR attributes and colours, tracked through resets; cursor moves that land where the
cursor already is are counted for absolute moves after printable ASCII only).

With ``--cells``, for ``NAME.all.bin`` files (``terminal_bytes.py --dump`` writes them
with ``NAME.all.from``, the offset where its window began): the output is replayed
through a VT100 emulator (pyte) and every character written in the window is counted
as changing its cell or rewriting what the cell already showed (same character,
colours and attributes): a rewrite is a byte spent on nothing.

Run: ``python benchmarks/ansi_census.py [--cells] FILE [FILE...]``.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

TOKEN = re.compile(
    rb"\x1b\[(?P<params>[0-9;?<=>]*)(?P<inter>[ -/]*)(?P<final>[@-~])"  # CSI
    rb"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC
    rb"|\x1b[()][0-9A-Za-z]|\x1b[^\[\]()]"  # charset, other ESC
    rb"|\r\n|\r|\n"
    rb"|[^\x1b\r\n]+"
)


def kind(token: re.Match[bytes]) -> str:
    raw = token.group(0)
    final = token.group("final")
    if final is not None:
        params = token.group("params")
        if final == b"m":
            return "SGR reset" if params in (b"", b"0") else "SGR"
        if final in (b"H", b"f"):
            return "cursor move (CUP row;col)"
        if final in b"ABCDEFG":
            return "cursor move (relative / column)"
        if final in (b"h", b"l"):
            return "mode set/reset"
        return f"other CSI ...{final.decode()}"
    if raw.startswith(b"\x1b]"):
        return "OSC (links, title)"
    if raw.startswith(b"\x1b"):
        return "other ESC"
    if raw in (b"\r\n", b"\n", b"\r"):
        return "line end"
    return "text"


def census(data: bytes) -> None:
    by_kind: Counter[str] = Counter()
    count: Counter[str] = Counter()
    sgrs: Counter[bytes] = Counter()
    redundant_sgr = 0
    redundant_bytes = 0
    state = b""  # the parameters of the last SGR since a reset ("" = default)
    for token in TOKEN.finditer(data):
        raw = token.group(0)
        k = kind(token)
        by_kind[k] += len(raw)
        count[k] += 1
        if k == "SGR":
            sgrs[raw] += 1
            if token.group("params") == state:
                redundant_sgr += 1
                redundant_bytes += len(raw)
            state = token.group("params")
        elif k == "SGR reset":
            state = b""
    total = len(data)
    print(f"{total} bytes")
    for k, n in by_kind.most_common():
        print(f"  {k:34s} {n:7d} bytes ({100 * n / max(total, 1):4.1f} %) in {count[k]} pieces")
    print(f"  SGR that repeat the state already set: {redundant_sgr} ({redundant_bytes} bytes)")
    print("  most frequent SGR sequences:")
    for raw, n in sgrs.most_common(6):
        print(f"    {n:5d} x {raw!r}")


def cells(data: bytes, start: int, cols: int = 160, rows: int = 48) -> None:
    import pyte

    counts = {"changed": 0, "rewritten": 0}
    lines: dict[int, int] = {}

    class Screen(pyte.Screen):
        counting = False

        def draw(self, text: str) -> None:
            for char in text:
                y, x = self.cursor.y, self.cursor.x
                before = self.buffer[y][x] if x < self.columns else None
                super().draw(char)
                if self.counting and before is not None:
                    same = self.buffer[y][x] == before
                    counts["rewritten" if same else "changed"] += 1
                    if same:
                        lines[y] = lines.get(y, 0) + 1

    screen = Screen(cols, rows)
    stream = pyte.ByteStream(screen)
    stream.feed(data[:start])
    screen.counting = True
    stream.feed(data[start:])
    total = counts["changed"] + counts["rewritten"]
    print(f"  characters written in the window: {total}; changing their cell "
          f"{counts['changed']}, rewriting what it showed {counts['rewritten']}")
    if lines:
        print("  rewrites by screen row (1-based): " + ", ".join(
            f"{y + 1}: {n}" for y, n in sorted(lines.items())))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--cells", action="store_true",
                        help="replay NAME.all.bin (window from NAME.all.from) through pyte")
    args = parser.parse_args()
    for path in args.files:
        print(f"== {path}")
        data = path.read_bytes()
        if args.cells:
            start = int(path.with_suffix(".from").read_text())
            census(data[start:])
            cells(data, start)
        else:
            census(data)


if __name__ == "__main__":
    main()
