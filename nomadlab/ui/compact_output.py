"""Terminal output for Textual's screen updates in fewer bytes, with the same picture.

Textual writes every segment as ``ESC[<full style>m text ESC[0m`` and every run of
changed cells after an absolute cursor move (``ESC[row;colH``), plus a line feed
between lines that the next move makes pointless. A table cell of three digits costs
about 35 bytes that way, 30 of them escape sequences that repeat what the terminal
already has. :class:`Writer` keeps track of the terminal's state while it writes
one update (the colours and attributes set, where the cursor is) and sends only what
changes it:

- SGR: nothing when the next segment's style is the one already set; only the
  colours and attributes that differ otherwise (``ESC[38;5;184m`` for a new
  foreground on the same background); a reset (``ESC[0;...m``) only when an
  attribute has to go off. One ``ESC[0m`` at the end of the update leaves the
  terminal in the default state, as Textual's own output does.
- Cursor: no move where the cursor already is (the next fragment starts where the
  last one ended); on the same row the shortest of a column move (``ESC[colG``), a
  forward/back move (``ESC[nC``/``ESC[nD``) or the absolute move; a gap of one to
  three cells between two runs on a row is written out instead when its cells are
  plain ASCII in the style already set (cheaper than any move).

What the writer relies on: the width of the text it wrote. It counts only characters
whose width every terminal agrees on (printable ASCII, Latin-1, box drawing and block
elements: the same widths Textual's layout assumes) and forgets the column after
anything else (wide characters, emoji), so the next move is an absolute one. After
the last column of a row the column is forgotten too (the terminal's pending wrap).

Used by :mod:`nomadlab.ui.textual_patches` for ``ChopsUpdate`` (partial updates) and
``LayoutUpdate`` (full repaints). tests/test_textual_patch.py renders the same frames
with Textual's output and with this one through a terminal emulator and requires the
same screen after every frame.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import lru_cache

from rich.cells import cell_len
from rich.color import ColorSystem
from rich.segment import Segment
from rich.style import Style

# Style bits in the order rich numbers them (Style._attributes), and their SGR codes:
# bold, dim, italic, underline, blink, blink2, reverse, conceal, strike, underline2,
# frame, encircle, overline. The same table as textual.strip.SGR_STYLES.
SGR_ON = ("1", "2", "3", "4", "5", "6", "7", "8", "9", "21", "51", "52", "53")
MAX_FILL = 3  # a gap of at most this many cells may be written out instead of a move

DEFAULT: tuple[int, str, str] = (0, "", "")  # attributes, foreground, background

# Characters one cell wide on every terminal Textual's layout works on.
_NARROW_MAX = 0x2FF
_NARROW_RANGES = ((0x2500, 0x259F),)  # box drawing, block elements


def narrow_cells(text: str) -> int | None:
    """Cells ``text`` takes when every character is one cell wide for certain, else
    None."""
    if text.isascii():
        return len(text) if text.isprintable() else None
    for char in text:
        code = ord(char)
        if code < 0x20 or 0x7F <= code < 0xA0 or code == 0xAD:
            return None
        if code > _NARROW_MAX and not any(a <= code <= b for a, b in _NARROW_RANGES):
            return None
    return len(text)


@lru_cache(maxsize=4096)
def sgr_state(style: Style | None, color_system: ColorSystem) -> tuple[int, str, str]:
    """(attribute bits, foreground codes, background codes) that ``style`` sets, as
    Textual's ``Strip.render_ansi`` would write them."""
    if style is None:
        return DEFAULT
    attributes = style._attributes & style._set_attributes
    color = style._color
    bgcolor = style._bgcolor
    fg = ";".join(color.downgrade(color_system).get_ansi_codes()) if color is not None else ""
    bg = (";".join(bgcolor.downgrade(color_system).get_ansi_codes(False))
          if bgcolor is not None else "")
    return attributes, fg, bg


def _full(state: tuple[int, str, str]) -> list[str]:
    attributes, fg, bg = state
    codes = [SGR_ON[bit] for bit in range(attributes.bit_length()) if attributes >> bit & 1]
    if fg:
        codes.append(fg)
    if bg:
        codes.append(bg)
    return codes


@lru_cache(maxsize=4096)
def transition(old: tuple[int, str, str], new: tuple[int, str, str]) -> str:
    """The shortest SGR sequence that takes the terminal from ``old`` to ``new``."""
    if old == new:
        return ""
    if new == DEFAULT:
        return "\x1b[0m"
    old_attributes, old_fg, old_bg = old
    attributes, fg, bg = new
    if old_attributes & ~attributes:  # something goes off: start from a reset
        return f"\x1b[0;{';'.join(_full(new))}m"
    codes = [SGR_ON[bit] for bit in range((attributes & ~old_attributes).bit_length())
             if (attributes & ~old_attributes) >> bit & 1]
    if fg != old_fg:
        codes.append(fg or "39")
    if bg != old_bg:
        codes.append(bg or "49")
    return f"\x1b[{';'.join(codes)}m"


class Writer:
    """Builds the bytes of one screen update, tracking the terminal's SGR state and
    cursor. Starts from (and :meth:`finish` returns to) the default SGR state; the
    cursor is unknown until the first :meth:`move_to`."""

    def __init__(self, color_system: ColorSystem | None, width: int) -> None:
        self.color_system = color_system or ColorSystem.TRUECOLOR
        self.width = width
        self.parts: list[str] = []
        self.state = DEFAULT
        self.row: int | None = None
        self.col: int | None = None  # None: not known for certain

    def move_to(self, x: int, y: int,
                fill: Callable[[int, int], Iterable[Segment]] | None = None) -> None:
        """Put the cursor at column ``x`` of row ``y`` (0-based). ``fill(x1, x2)``:
        the segments of cells ``[x1, x2)`` of row ``y`` as the screen has them, asked
        for a short gap between the cursor and ``x`` (written out instead of a move
        when that is shorter)."""
        row, col = self.row, self.col
        if row != y:
            self.parts.append(f"\x1b[{y + 1};{x + 1}H")
        elif col == x:
            return
        elif (col is not None and fill is not None and 0 < x - col <= MAX_FILL
              and self._fill(fill(col, x), x - col)):
            pass
        else:
            best = f"\x1b[{x + 1}G"
            if col is not None:
                step = f"\x1b[{x - col}C" if x > col else f"\x1b[{col - x}D"
                if len(step) < len(best):
                    best = step
            self.parts.append(best)
        self.row, self.col = y, x

    def _fill(self, segments: Iterable[Segment], cells: int) -> bool:
        texts = []
        for text, style, control in segments:
            if (control or sgr_state(style, self.color_system) != self.state
                    or (style is not None and style._link)):
                return False  # another style, or a link (written with its OSC 8)
            texts.append(text)
        text = "".join(texts)
        if len(text) != cells or not (text.isascii() and text.isprintable()):
            return False
        self.parts.append(text)
        return True

    def segments(self, segments: Iterable[Segment]) -> None:
        """Write ``segments`` at the cursor, as ``Strip.render`` would."""
        append = self.parts.append
        color_system = self.color_system
        for text, style, control in segments:
            if control:  # Textual's strips carry none; if one does, forget the cursor
                append(text)
                self.row = self.col = None
                continue
            if not text:
                continue
            new = sgr_state(style, color_system)
            if new != self.state:
                append(transition(self.state, new))
                self.state = new
            if style is not None and style._link:
                append(f"\x1b]8;id={style._link_id};{style._link}\x1b\\{text}\x1b]8;;\x1b\\")
            else:
                append(text)
            self._advance(text)

    def _advance(self, text: str) -> None:
        col = self.col
        if col is None:  # it may have reached the margin: the row is not known either
            self.row = None
            return
        cells = narrow_cells(text)
        if cells is None:
            # Not certain: the column is lost, the row kept unless the text might
            # reach the right margin even at twice its counted width.
            if col + 2 * cell_len(text) >= self.width:
                self.row = None
            self.col = None
            return
        col += cells
        if col >= self.width:  # at (or past) the margin: pending wrap
            self.col = None
            if col > self.width:
                self.row = None
        else:
            self.col = col

    def finish(self) -> str:
        """The update's bytes, ending in the default SGR state."""
        if self.state != DEFAULT:
            self.parts.append("\x1b[0m")
            self.state = DEFAULT
        return "".join(self.parts)
