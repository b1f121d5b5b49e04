#!/usr/bin/env python3
"""A stand-in ``nvidia-smi`` that replays real captures (``tests/data/nvidia-smi``).

Stdlib only; runs on Python 3.8+. Tests install it as an executable called
``nvidia-smi`` with ``tests/standins/smi.py:install_fake_smi``.

Environment:

``NOMADLAB_FAKE_SMI_CAPTURE``
    Path of a capture file. If it is unset (or the file can't be read), the stand-in
    acts like a host without a driver: it prints the real driver-failure message
    and exits 9.
``NOMADLAB_FAKE_SMI_STATE``
    ``load`` (default) or ``idle``: which captured sections to replay.
``NOMADLAB_FAKE_SMI_GPUS``
    N (default 1). The captured GPU is copied N times as indices 0..N-1. Each copy
    gets its own uuid (the uuid's last hex digits are replaced by the index), its own
    PCI bus number and serial. GPU 0 keeps the captured identity, and the captured
    processes all stay on GPU 0.
``NOMADLAB_FAKE_SMI_COUNT``
    When looping (``-l`` / ``-lms``), stop after this many iterations. The default
    is to loop forever, like the real tool.

Supported arguments: ``--query-gpu=F,...`` and ``--query-compute-apps=F,...``, both
with ``--format=csv[,noheader][,nounits]``. The loops ``-l SEC`` / ``--loop=SEC`` and
``-lms MS`` / ``--loop-ms=MS``. ``-i`` / ``--id=`` takes indices, uuids or bus ids.
Captured sections are printed as they are for ``-L``, ``--version``, ``-q``, ``-h``,
``--help-query-gpu``, ``--help-query-compute-apps``, ``pmon``, ``dmon``, ``topo``,
``nvlink`` and no arguments at all (the default table). Anything else is a usage
error (exit 2).

Query rows get a fresh ``timestamp`` on each poll (the same value for every row of
one poll), so consumers can group rows by poll. A closed stdout kills the process
with SIGPIPE, as it kills the real tool, and prints no traceback.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import time

ENV_CAPTURE = "NOMADLAB_FAKE_SMI_CAPTURE"
ENV_STATE = "NOMADLAB_FAKE_SMI_STATE"
ENV_GPUS = "NOMADLAB_FAKE_SMI_GPUS"
ENV_COUNT = "NOMADLAB_FAKE_SMI_COUNT"

DRIVER_FAILURE = (
    "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
    "Make sure that the latest NVIDIA driver is installed and running."
)
USAGE_ERROR = "Invalid combination of input arguments. Please run 'nvidia-smi -h' for help."

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_NO_DEVICE = 6
EXIT_DRIVER = 9

BANNER = "#" * 80
STATES = ("load", "idle")

# Aliases that nvidia-smi accepts. The captures' own --help-query-* sections supply
# the full lists; these are the fallback if a capture lacks those sections.
FALLBACK_ALIASES = {
    "gpu": [
        ("name", "gpu_name"),
        ("serial", "gpu_serial"),
        ("uuid", "gpu_uuid"),
        ("pci.bus_id", "gpu_bus_id"),
    ],
    "apps": [
        ("process_name", "name"),
        ("used_gpu_memory", "used_memory"),
    ],
}

# Sections that are printed as they are: (state or None for "capabilities", title).
PLAIN_SECTIONS = {
    "-L": ("capabilities", "list (-L)"),
    "--list-gpus": ("capabilities", "list (-L)"),
    "--version": ("capabilities", "version"),
    "-h": ("capabilities", "help (-h)"),
    "--help": ("capabilities", "help (-h)"),
    "--help-query-gpu": ("capabilities", "help-query-gpu"),
    "--help-query-compute-apps": ("capabilities", "help-query-compute-apps"),
    "--help-query-accounted-apps": ("capabilities", "help-query-accounted-apps"),
    "--help-query-retired-pages": ("capabilities", "help-query-retired-pages"),
    "-q": (None, "query (-q)"),
    "--query": (None, "query (-q)"),
    "topo": ("capabilities", "topo -m"),
    "nvlink": ("capabilities", "nvlink -s"),
    "pmon": (None, "pmon (per-process monitor)"),
    "dmon": (None, "dmon (per-device monitor, incl. PCIe rx/tx)"),
    "": (None, "nvidia-smi (default table)"),
}
SUBCOMMANDS = ("topo", "nvlink", "pmon", "dmon")


class SmiExit(Exception):
    """Print ``message`` (to stdout, like nvidia-smi) and exit with ``code``."""

    def __init__(self, code: int, message: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --------------------------------------------------------------------------- capture


def parse_sections(text: str) -> dict[str, str]:
    """Split a capture into ``{"<state> :: <title>": body}``.

    A section header is an 80-``#`` banner, then ``# ``-comment lines, then another
    banner. The body runs to the next header. Body lines may start with ``#`` (as
    pmon/dmon output does), so only a full banner counts.
    """
    lines = text.split("\n")
    sections: dict[str, str] = {}
    key = None
    body: list[str] = []

    def flush() -> None:
        if key is not None:
            while body and not body[-1].strip():
                body.pop()
            sections[key] = "\n".join(body)

    i = 0
    while i < len(lines):
        if lines[i] == BANNER:
            j = i + 1
            comments = []
            while j < len(lines) and lines[j] != BANNER and lines[j].startswith("#"):
                comments.append(lines[j])
                j += 1
            if comments and j < len(lines) and lines[j] == BANNER:
                flush()
                key = comments[0][1:].strip()
                body = []
                i = j + 1
                continue
        body.append(lines[i])
        i += 1
    flush()
    return sections


class Column:
    def __init__(self, header: str) -> None:
        self.header = header
        m = re.match(r"^(.*?) \[([^\]]*)\]$", header)
        if m:
            self.name = m.group(1)
            self.unit: str | None = m.group(2)
        else:
            self.name = header
            self.unit = None

    def strip_unit(self, value: str) -> str:
        if self.unit and value.endswith(" " + self.unit):
            return value[: -len(self.unit) - 1]
        return value


class Table:
    """One captured ``--format=csv`` section: columns plus data rows."""

    def __init__(self, body: str) -> None:
        lines = [line for line in body.split("\n") if line.strip()]
        if not lines:
            raise SmiExit(EXIT_DRIVER, "fake nvidia-smi: empty csv section in capture")
        self.columns = [Column(h) for h in lines[0].split(", ")]
        self.rows = [self._split(line) for line in lines[1:]]

    def _split(self, line: str) -> list[str]:
        # nvidia-smi joins values with ", " and does not quote. Only a process name
        # could hold ", " itself; give surplus pieces back to that column.
        parts = line.split(", ")
        extra = len(parts) - len(self.columns)
        if extra > 0:
            names = [c.name for c in self.columns]
            at = names.index("process_name") if "process_name" in names else len(names) - 1
            parts[at : at + extra + 1] = [", ".join(parts[at : at + extra + 1])]
        elif extra < 0:
            parts += ["[N/A]"] * -extra
        return parts

    def index_of(self, name: str) -> int | None:
        for i, col in enumerate(self.columns):
            if col.name == name:
                return i
        return None


def parse_aliases(help_body: str | None, fallback: list[tuple[str, ...]]) -> dict[str, tuple]:
    """Map every accepted field name to its group of equivalent names."""
    groups: list[tuple[str, ...]] = list(fallback)
    if help_body:
        for line in help_body.split("\n"):
            if re.match(r'^"[^"]+"( or "[^"]+")+\s*$', line):
                groups.append(tuple(re.findall(r'"([^"]+)"', line)))
    out: dict[str, tuple] = {}
    for group in groups:
        for name in group:
            out[name] = tuple(dict.fromkeys(out.get(name, ()) + group))
    return out


class Capture:
    def __init__(self, path: str, state: str) -> None:
        with open(path, encoding="utf-8", errors="replace") as f:
            self.sections = parse_sections(f.read())
        self.state = state
        self.path = path

    def section(self, state: str | None, title: str) -> str | None:
        return self.sections.get(f"{state or self.state} :: {title}")

    def table(self, title: str) -> Table:
        body = self.section(None, title)
        if body is None:
            raise SmiExit(
                EXIT_DRIVER,
                f"fake nvidia-smi: no {title!r} section for state {self.state!r} in {self.path}",
            )
        return Table(body)

    def gpu_table(self) -> Table:
        return self.table("query-gpu (csv, what the exporter parses)")

    def apps_table(self) -> Table:
        return self.table("query-compute-apps (per-process)")

    def aliases(self, kind: str) -> dict[str, tuple]:
        title = "help-query-gpu" if kind == "gpu" else "help-query-compute-apps"
        return parse_aliases(self.section("capabilities", title), FALLBACK_ALIASES[kind])


# --------------------------------------------------------------------------- GPUs


def vary_uuid(uuid: str, index: int) -> str:
    if index == 0:
        return uuid
    m = re.match(r"^(.*?)([0-9a-fA-F]{4})$", uuid)
    if not m:
        return f"{uuid}-{index}"
    new = m.group(1) + f"{index:04x}"
    if new == uuid:  # the captured uuid already ended in these digits
        new = m.group(1) + f"{index ^ 0x8000:04x}"
    return new


def vary_bus_id(bus_id: str, index: int) -> str:
    m = re.match(r"^([0-9A-Fa-f]+):([0-9A-Fa-f]{2}):(.*)$", bus_id)
    if not m or index == 0:
        return bus_id
    bus = (int(m.group(2), 16) + index) % 256
    return f"{m.group(1)}:{bus:02X}:{m.group(3)}"


def vary_bus(bus: str, index: int) -> str:
    m = re.match(r"^0x([0-9A-Fa-f]+)$", bus)
    if not m or index == 0:
        return bus
    return f"0x{(int(m.group(1), 16) + index) % 256:02X}"


def vary_serial(serial: str, index: int) -> str:
    if index == 0 or not serial.isdigit():
        return serial
    digits = str(index)
    return serial[: -len(digits)] + digits if len(digits) < len(serial) else serial + digits


def replicate_gpus(table: Table, n: int) -> list[list[str]]:
    """The captured GPU row copied ``n`` times, with per-GPU identity fields."""
    base = table.rows[0]
    varying = {
        "index": lambda _v, i: str(i),
        "count": lambda _v, _i: str(n),
        "uuid": vary_uuid,
        "pci.bus_id": vary_bus_id,
        "pci.bus": vary_bus,
        "serial": vary_serial,
    }
    rows = []
    for i in range(n):
        row = list(base)
        for name, fn in varying.items():
            at = table.index_of(name)
            if at is not None:
                row[at] = fn(row[at], i)
        rows.append(row)
    return rows


def select_gpus(table: Table, rows: list[list[str]], ids: str | None) -> list[list[str]]:
    """Apply ``-i``: indices, uuids or PCI bus ids, comma separated."""
    if ids is None:
        return rows
    keys = [
        k for k in (table.index_of(n) for n in ("index", "uuid", "pci.bus_id")) if k is not None
    ]
    wanted = [w.strip().lower() for w in ids.split(",") if w.strip()]
    chosen = set()
    for w in wanted:
        found = {n for n, r in enumerate(rows) if any(r[k].lower() == w for k in keys)}
        if not found:
            raise SmiExit(EXIT_NO_DEVICE, "No devices were found")
        chosen |= found
    return [r for n, r in enumerate(rows) if n in chosen]  # device order, like nvidia-smi


# --------------------------------------------------------------------------- output


def now_timestamp() -> str:
    t = time.time()
    millis = int(t * 1000) % 1000
    return time.strftime("%Y/%m/%d %H:%M:%S", time.localtime(t)) + f".{millis:03d}"


def resolve_fields(table: Table, fields: list[str], aliases: dict[str, tuple]) -> list[int]:
    picked = []
    for field in fields:
        at = None
        for name in aliases.get(field, (field,)):
            at = table.index_of(name)
            if at is not None:
                break
        if at is None:
            raise SmiExit(EXIT_USAGE, f'Field "{field}" is not a valid field to query.\n')
        picked.append(at)
    return picked


class Query:
    def __init__(
        self,
        kind: str,
        fields: list[str],
        fmt: set[str],
        capture: Capture,
        gpus: int,
        ids: str | None,
    ) -> None:
        self.kind = kind
        self.noheader = "noheader" in fmt
        self.nounits = "nounits" in fmt
        if kind == "gpu":
            self.table = capture.gpu_table()
            self.rows = select_gpus(self.table, replicate_gpus(self.table, gpus), ids)
        else:
            self.table = capture.apps_table()
            self.rows = self.table.rows
            if ids is not None:
                gpu_table = capture.gpu_table()
                chosen = select_gpus(gpu_table, replicate_gpus(gpu_table, gpus), ids)
                u_gpu, u_app = gpu_table.index_of("uuid"), self.table.index_of("gpu_uuid")
                if u_gpu is not None and u_app is not None:
                    uuids = {r[u_gpu] for r in chosen}
                    self.rows = [r for r in self.rows if r[u_app] in uuids]
        self.picked = resolve_fields(self.table, fields, capture.aliases(kind))
        self.ts_at = self.table.index_of("timestamp")

    def header(self) -> str:
        # The real tool keeps the units in the header even with nounits.
        return ", ".join(self.table.columns[i].header for i in self.picked)

    def lines(self) -> list[str]:
        stamp = now_timestamp()
        out = []
        for row in self.rows:
            values = []
            for i in self.picked:
                value = stamp if i == self.ts_at else row[i]
                if self.nounits:
                    value = self.table.columns[i].strip_unit(value)
                values.append(value)
            out.append(", ".join(values))
        return out


def write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


# --------------------------------------------------------------------------- args


def parse_args(argv: list[str]) -> dict:
    opts: dict = {
        "query": None,
        "fields": None,
        "format": None,
        "interval": None,
        "ids": None,
        "plain": None,
    }
    i = 0

    def value_of(arg: str, names: tuple[str, ...]) -> str | None:
        """``--opt=value`` or ``--opt value``, else None."""
        nonlocal i
        for name in names:
            if arg == name:
                if i + 1 >= len(argv):
                    raise SmiExit(EXIT_USAGE, USAGE_ERROR)
                i += 1
                return argv[i]
            if name.startswith("--") and arg.startswith(name + "="):
                return arg[len(name) + 1 :]
        return None

    def set_plain(key: str) -> None:
        if opts["plain"] is not None or opts["query"] is not None:
            raise SmiExit(EXIT_USAGE, USAGE_ERROR)
        opts["plain"] = key

    while i < len(argv):
        arg = argv[i]
        if arg in SUBCOMMANDS and i == 0:
            set_plain(arg)
            break  # the subcommand's own options (-c 5, -m, -s) are not replayed
        if arg in PLAIN_SECTIONS and arg:
            set_plain(arg)
        elif (v := value_of(arg, ("--query-gpu",))) is not None:
            if opts["query"] or opts["plain"]:
                raise SmiExit(EXIT_USAGE, USAGE_ERROR)
            opts["query"], opts["fields"] = "gpu", v
        elif (v := value_of(arg, ("--query-compute-apps",))) is not None:
            if opts["query"] or opts["plain"]:
                raise SmiExit(EXIT_USAGE, USAGE_ERROR)
            opts["query"], opts["fields"] = "apps", v
        elif (v := value_of(arg, ("--format",))) is not None:
            opts["format"] = v
        elif (v := value_of(arg, ("-lms", "--loop-ms"))) is not None:
            opts["interval"] = _number(v) / 1000.0
        elif arg in ("-l", "--loop") and (i + 1 >= len(argv) or argv[i + 1].startswith("-")):
            opts["interval"] = 5.0  # nvidia-smi's default loop interval
        elif (v := value_of(arg, ("-l", "--loop"))) is not None:
            opts["interval"] = _number(v)
        elif (v := value_of(arg, ("-i", "--id"))) is not None:
            opts["ids"] = v
        else:
            raise SmiExit(EXIT_USAGE, USAGE_ERROR)
        i += 1

    if opts["query"]:
        if opts["format"] is None:
            raise SmiExit(
                EXIT_USAGE, '"--format" is required with "--query-*" options.\n' + USAGE_ERROR
            )
        tokens = [t.strip() for t in opts["format"].split(",") if t.strip()]
        if "csv" not in tokens or any(t not in ("csv", "noheader", "nounits") for t in tokens):
            raise SmiExit(EXIT_USAGE, f'"{opts["format"]}" is not a valid format.\n' + USAGE_ERROR)
        opts["format"] = set(tokens)
        fields = [f.strip() for f in opts["fields"].split(",")]
        if not all(fields):
            raise SmiExit(EXIT_USAGE, USAGE_ERROR)
        opts["fields"] = fields
    elif opts["format"] is not None:
        raise SmiExit(EXIT_USAGE, USAGE_ERROR)
    if opts["interval"] is not None and opts["interval"] <= 0:
        raise SmiExit(EXIT_USAGE, USAGE_ERROR)
    return opts


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise SmiExit(EXIT_USAGE, USAGE_ERROR) from None


def _env_int(name: str, default: int | None, minimum: int) -> int | None:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise SmiExit(
            EXIT_USAGE, f"fake nvidia-smi: {name} must be an integer >= {minimum}, not {raw!r}"
        )
    return value


# --------------------------------------------------------------------------- main


def list_gpus(capture: Capture, gpus: int) -> str:
    """``-L``: the captured text, repeated per GPU when replicating."""
    text = capture.section("capabilities", "list (-L)") or ""
    if gpus == 1:
        return text
    table = capture.gpu_table()
    at = table.index_of("uuid")
    uuid = table.rows[0][at] if at is not None else None
    out = []
    for i in range(gpus):
        block = re.sub(r"^GPU 0:", f"GPU {i}:", text, flags=re.MULTILINE)
        if uuid:
            block = block.replace(uuid, vary_uuid(uuid, i))
        out.append(block)
    return "\n".join(out)


def run(argv: list[str]) -> int:
    opts = parse_args(argv)
    state = os.environ.get(ENV_STATE, "").strip() or "load"
    if state not in STATES:
        choices = "/".join(STATES)
        raise SmiExit(
            EXIT_USAGE, f"fake nvidia-smi: {ENV_STATE} must be one of {choices}, not {state!r}"
        )
    gpus = _env_int(ENV_GPUS, 1, 1)
    count = _env_int(ENV_COUNT, None, 1)

    path = os.environ.get(ENV_CAPTURE, "")
    if not path:
        raise SmiExit(EXIT_DRIVER, DRIVER_FAILURE)
    try:
        capture = Capture(path, state)
    except OSError as e:
        sys.stderr.write(f"fake nvidia-smi: cannot read capture {path!r}: {e}\n")
        raise SmiExit(EXIT_DRIVER, DRIVER_FAILURE) from None

    interval = opts["interval"]
    if opts["query"]:
        query = Query(opts["query"], opts["fields"], opts["format"], capture, gpus, opts["ids"])

        def emit(first: bool) -> None:
            lines = query.lines()
            if first and not query.noheader:
                lines.insert(0, query.header())
            write("".join(line + "\n" for line in lines))
    else:
        key = opts["plain"] or ""
        state_or_caps, title = PLAIN_SECTIONS[key]
        if key in ("-L", "--list-gpus"):
            text = list_gpus(capture, gpus)
        else:
            text = capture.section(state_or_caps, title)
            if text is None:
                raise SmiExit(EXIT_USAGE, USAGE_ERROR)
        if key not in ("", "-q", "--query"):
            interval = None  # only the table and -q repeat with -l

        def emit(first: bool) -> None:
            write(text + "\n")

    start = time.monotonic()
    done = 0
    while True:
        emit(done == 0)
        done += 1
        if interval is None or (count is not None and done >= count):
            return EXIT_OK
        time.sleep(max(0.0, start + done * interval - time.monotonic()))


def main(argv: list[str] | None = None) -> int:
    if hasattr(signal, "SIGPIPE"):
        # Die of SIGPIPE when the reader goes away, like the real (C) tool, instead
        # of Python's BrokenPipeError traceback.
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        return run(sys.argv[1:] if argv is None else argv)
    except SmiExit as e:
        if e.message:
            try:
                write(e.message if e.message.endswith("\n") else e.message + "\n")
            except BrokenPipeError:
                pass
        return e.code
    except BrokenPipeError:
        # No SIGPIPE on this platform: leave quietly, and stop the interpreter from
        # complaining while it flushes stdout at exit.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except OSError:
            pass
        return EXIT_OK
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
