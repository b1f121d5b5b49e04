"""The log tail agent on its own: a local child process through the real bootstrap.

No SSH here: the framing and the ``tail -F`` edge cases, quickly. The agent is started
exactly as on a host (``python -c BOOT`` reading the payload on stdin), and its
stdout is parsed with the client's own decoder.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import pytest
from conftest import wait_for

from nomadlab.hostside import tailagent
from nomadlab.remote import bootstrap
from nomadlab.remote.tail_wire import DataFrame, FrameDecoder, parse_cuts

TAILAGENT_DIR = Path(tailagent.__file__).parent  # the package shipped to hosts
PY38 = Path("/root/.pyenv/versions/3.8.18/bin/python3")


def numbered(start: int, count: int, prefix: str = "line") -> bytes:
    return b"".join(b"%s %06d\n" % (prefix.encode(), i) for i in range(start, start + count))


class Agent:
    """One tail agent child process, its stdout decoded as it arrives."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.decoder = FrameDecoder()
        self.raw = bytearray()
        self.events: list[dict[str, object]] = []
        self.frames: list[DataFrame] = []
        self.lines: list[bytes] = []
        self.cuts: list[int] = []
        self.reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, path: str | Path, *, python: str = sys.executable,
                    prefix: list[str] | None = None, **args: object) -> Agent:
        args.setdefault("start", {"lines": 10})
        args.setdefault("poll", 0.02)
        args.setdefault("glob_every", 0.05)
        args.setdefault("retry", 0.05)
        args["path"] = str(path)
        proc = await asyncio.create_subprocess_exec(
            *(prefix or []), python, "-u", "-c", bootstrap.BOOT,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        assert proc.stdin is not None
        proc.stdin.write(bootstrap.tail_payload(args))
        return cls(proc)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while True:
            data = await self.proc.stdout.read(1 << 16)
            if not data:
                return
            self.raw += data
            for item in self.decoder.feed(data):
                if isinstance(item, DataFrame):
                    self.frames.append(item)
                    lines = item.payload.split(b"\n")
                    assert lines.pop() == b""
                    self.lines.extend(lines)
                    self.cuts.extend(parse_cuts(item.cuts, len(lines)) or [0] * len(lines))
                else:
                    self.events.append(item)

    def kinds(self) -> list[object]:
        return [e["e"] for e in self.events]

    def last(self, kind: str) -> dict[str, object]:
        return next(e for e in reversed(self.events) if e["e"] == kind)

    async def until(self, predicate: object, what: str, timeout: float = 10.0) -> None:
        await wait_for(predicate, timeout=timeout, what=what)  # type: ignore[arg-type]

    async def has_lines(self, count: int) -> None:
        await self.until(lambda: len(self.lines) >= count, f"{count} lines "
                         f"(have {len(self.lines)}, events {self.kinds()})")

    async def close(self) -> int:
        """stdin EOF: the agent must end by itself."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        code = await asyncio.wait_for(self.proc.wait(), 10)
        await asyncio.wait_for(self.reader, 10)
        assert self.decoder.garbage == 0, self.decoder.junk
        return code

    async def kill(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        self.reader.cancel()


@pytest.fixture
async def agents() -> object:
    started: list[Agent] = []

    async def start(path: str | Path, **kwargs: object) -> Agent:
        agent = await Agent.start(path, **kwargs)  # type: ignore[arg-type]
        started.append(agent)
        return agent

    yield start
    for agent in started:
        await agent.kill()


# --------------------------------------------------------------------------- framing


async def test_framing_is_exact(tmp_path: Path, agents: object) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(b"one\ntwo\n")
    agent: Agent = await agents(log)  # type: ignore[operator]
    await agent.has_lines(2)
    st = log.stat()
    with log.open("ab") as f:
        f.write(b"thr")
    with log.open("ab") as f:
        f.write(b"ee\n")
    await agent.has_lines(3)
    assert await agent.close() == 0
    text = bytes(agent.raw)
    head, rest = text.split(b"\n", 1)
    assert head.startswith(b'E {"e":"hello","v":1,')
    file_line, rest = rest.split(b"\n", 1)
    assert file_line == (b'E {"e":"file","path":"%s","dev":%d,"ino":%d,"size":8,"offset":0,'
                         b'"how":"start"}' % (str(log).encode(), st.st_dev, st.st_ino))
    # The partial "thr" is held until its newline: one line, never two halves.
    assert rest == b"D 8 8 -\none\ntwo\nD 14 6 -\nthree\n"


def test_decoder_takes_any_split() -> None:
    stream = (b'E {"e":"hello","v":1}\nD 6 6 -\nab\ncd\nD 9 3 0:5\nxy\n'
              b'junk line\nE {"e":"waiting","path":"/x"}\n')
    for size in (1, 2, 3, 7, len(stream)):
        decoder = FrameDecoder()
        items: list[object] = []
        for i in range(0, len(stream), size):
            items.extend(decoder.feed(stream[i:i + size]))
        assert items == [{"e": "hello", "v": 1}, DataFrame(6, b"ab\ncd\n", "-"),
                         DataFrame(9, b"xy\n", "0:5"), {"e": "waiting", "path": "/x"}]
        assert decoder.garbage == 1 and decoder.junk == ["junk line"]


# --------------------------------------------------------------------------- start


async def test_last_lines_read_backwards_across_blocks(tmp_path: Path, agents: object) -> None:
    log = tmp_path / "big.log"
    # ~300 KB: the last 2000 lines span several 64 KB blocks read backwards.
    log.write_bytes(b"".join(b"%06d %s\n" % (i, b"x" * 93) for i in range(3000)) + b"partial")
    agent: Agent = await agents(log, start={"lines": 2000})  # type: ignore[operator]
    await agent.has_lines(2000)
    with log.open("ab") as f:
        f.write(b" end\n")
    await agent.has_lines(2001)
    assert [line[:6] for line in agent.lines[:2000]] == [b"%06d" % i for i in range(1000, 3000)]
    assert agent.lines[-1] == b"partial end"
    await agent.close()


@pytest.mark.parametrize(("count", "expected"), [(0, []), (3, [b"c", b"d", b"e"]),
                                                  (99, [b"a", b"b", b"c", b"d", b"e"])])
def test_last_lines_start(tmp_path: Path, count: int, expected: list[bytes]) -> None:
    for tail in (b"", b"part"):
        log = tmp_path / "l.log"
        log.write_bytes(b"a\nb\nc\nd\ne\n" + tail)
        fd = os.open(log, os.O_RDONLY)
        try:
            start = tailagent.last_lines_start(fd, log.stat().st_size, count)
        finally:
            os.close(fd)
        body = log.read_bytes()[start:]
        assert body.split(b"\n")[:-1] == expected
        assert body.endswith(b"\n" + tail if expected else tail)


# --------------------------------------------------------------------------- long lines


def feed_in_pieces(data: bytes, piece: int, max_line: int) -> list[DataFrame]:
    """Tail.feed with the file arriving ``piece`` bytes at a time (no process)."""
    out = io.BytesIO()
    tail = tailagent.Tail(tailagent.Output(out), "/nonexistent", max_line=max_line)
    offset = 0
    for i in range(0, len(data), piece):
        chunk = data[i:i + piece]
        offset += len(chunk)
        tail.offset = offset
        tail.feed(chunk, offset)
    decoder = FrameDecoder()
    frames = [f for f in decoder.feed(out.getvalue()) if isinstance(f, DataFrame)]
    assert decoder.garbage == 0
    return frames


@pytest.mark.parametrize("piece", [1, 7, 100, 101, 1000, 1 << 20])
def test_long_lines_are_cut_wherever_reads_fall(piece: int) -> None:
    data = (b"short\n" + b"x" * 100 + b"\n" + b"y" * 101 + b"\n" + b"z" * 5000 + b"\n"
            + b"after\n" + b"w" * 250 + b"\nlast\nheld")
    frames = feed_in_pieces(data, piece, max_line=100)
    lines: list[bytes] = []
    cuts: list[int] = []
    for frame in frames:
        # A frame ends where its last line ended in the file.
        assert data[frame.end - 1:frame.end] == b"\n", frame.end
        these = frame.payload.split(b"\n")
        assert these.pop() == b""
        lines.extend(these)
        cuts.extend(parse_cuts(frame.cuts, len(these)) or [0] * len(these))
    assert lines == [b"short", b"x" * 100, b"y" * 100, b"z" * 100, b"after", b"w" * 100,
                     b"last"]
    assert cuts == [0, 0, 1, 4900, 0, 150, 0]
    assert frames[-1].end == len(data) - len(b"held")  # "held" waits for its newline


def test_cut_indexes_are_per_frame() -> None:
    data = b"a\n" + b"z" * 500 + b"\nb\nc\n" + b"q" * 300 + b"\nd\n"
    out = io.BytesIO()
    tail = tailagent.Tail(tailagent.Output(out), "/nonexistent", max_line=100)
    tail.feed(data, len(data))
    frames = [f for f in FrameDecoder().feed(out.getvalue()) if isinstance(f, DataFrame)]
    assert len(frames) == 1
    frame = frames[0]
    assert frame.end == len(data)
    assert frame.cuts == "1:400,4:200"
    assert frame.payload == b"a\n" + b"z" * 100 + b"\nb\nc\n" + b"q" * 100 + b"\nd\n"


async def test_five_megabyte_line(tmp_path: Path, agents: object) -> None:
    log = tmp_path / "huge.log"
    log.write_bytes(b"before\n")
    agent: Agent = await agents(log, max_line=65536)  # type: ignore[operator]
    await agent.has_lines(1)
    with log.open("ab") as f:
        for _ in range(5):  # 5 MB in 1 MB writes: the agent may read it in pieces
            f.write(b"x" * (1 << 20))
            f.flush()
        f.write(b"\nafter 1\nafter 2\n")
    await agent.has_lines(4)
    assert agent.lines == [b"before", b"x" * 65536, b"after 1", b"after 2"]
    assert agent.cuts == [0, 5 * (1 << 20) - 65536, 0, 0]
    assert agent.frames[-1].end == log.stat().st_size
    await agent.close()


# --------------------------------------------------------------------------- content


async def test_bytes_arrive_verbatim(tmp_path: Path, agents: object) -> None:
    hostile = (b"[bold]x[/]\n[/]\n\x1b]0;title\x07\n\x1b[2J cleared\n"
               b"\xff\xfe\x80 invalid \xc3\n\xed\xa0\x80 surrogate\nnul \x00 byte\n"
               b"crlf\r\nplain\n")
    log = tmp_path / "hostile.log"
    log.write_bytes(b"")
    agent: Agent = await agents(log)  # type: ignore[operator]
    await agent.until(lambda: "file" in agent.kinds(), "file event")
    with log.open("ab") as f:
        f.write(hostile)
    await agent.has_lines(9)
    assert b"".join(line + b"\n" for line in agent.lines) == hostile
    await agent.close()


# --------------------------------------------------------------------------- tail -F


async def test_rotation_by_rename(tmp_path: Path, agents: object) -> None:
    log = tmp_path / "app.log"
    writer = log.open("ab", buffering=0)
    writer.write(numbered(0, 5))
    agent: Agent = await agents(log)  # type: ignore[operator]
    await agent.has_lines(5)
    os.rename(log, tmp_path / "app.log.1")
    writer.write(numbered(5, 5))  # the writer still holds the old file
    await agent.has_lines(10)  # followed through the rename
    log.write_bytes(numbered(10, 5))  # the new file
    await agent.has_lines(15)
    writer.close()
    assert agent.lines == numbered(0, 15).split(b"\n")[:-1]
    rotated = agent.last("rotated")
    assert rotated["to"] == str(log)
    new = agent.last("file")
    assert new["how"] == "rotated" and new["offset"] == 0 and new["ino"] == log.stat().st_ino
    await agent.close()


async def test_rotation_drains_the_old_file_first(tmp_path: Path, agents: object) -> None:
    log = tmp_path / "app.log"
    writer = log.open("ab", buffering=0)
    writer.write(numbered(0, 3))
    agent: Agent = await agents(log, poll=0.5)  # type: ignore[operator]
    await agent.has_lines(3)
    # Between two polls: rename, more into the old file, then a new file.
    os.rename(log, tmp_path / "app.log.1")
    writer.write(numbered(3, 3))
    writer.close()
    log.write_bytes(numbered(6, 3))
    await agent.has_lines(9)
    assert agent.lines == numbered(0, 9).split(b"\n")[:-1]
    await agent.close()


async def test_copytruncate(tmp_path: Path, agents: object) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(numbered(0, 50))
    agent: Agent = await agents(log, start={"lines": 100})  # type: ignore[operator]
    await agent.has_lines(50)
    shutil.copy(log, tmp_path / "app.log.1")
    with log.open("r+b") as f:
        f.truncate(0)
    with log.open("ab") as f:
        f.write(numbered(50, 3))  # less than before: the shrink is seen
    await agent.has_lines(53)
    assert agent.lines == numbered(0, 53).split(b"\n")[:-1]
    truncated = agent.last("truncated")
    assert truncated["offset"] == len(numbered(0, 50))
    await agent.close()


async def test_delete_and_recreate(tmp_path: Path, agents: object) -> None:
    log = tmp_path / "app.log"
    log.write_bytes(numbered(0, 4))
    agent: Agent = await agents(log)  # type: ignore[operator]
    await agent.has_lines(4)
    with log.open("ab") as f:
        f.write(numbered(4, 2))
    log.unlink()  # the lines just written are still read from the open file
    await agent.until(lambda: agent.kinds()[-2:] == ["gone", "waiting"], "gone, then waiting")
    log.write_bytes(numbered(6, 3))
    await agent.has_lines(9)
    assert agent.lines == numbered(0, 9).split(b"\n")[:-1]
    assert agent.last("file")["how"] == "created"
    await agent.close()


async def test_missing_file_is_waited_for_and_read_whole(tmp_path: Path, agents: object) -> None:
    log = tmp_path / "later" / "run.log"
    agent: Agent = await agents(log, start={"lines": 1})  # type: ignore[operator]
    await agent.until(lambda: "waiting" in agent.kinds(), "waiting")
    log.parent.mkdir()
    log.write_bytes(numbered(0, 5))  # all of it is new: not only the last line
    await agent.has_lines(5)
    assert agent.kinds().count("waiting") == 1  # said once, not once per poll
    assert agent.last("file")["how"] == "created"
    await agent.close()


async def test_permission_denied_then_granted(tmp_path: Path, agents: object) -> None:
    log = tmp_path / "secret.log"
    log.write_bytes(numbered(0, 3))
    log.chmod(0)
    prefix: list[str] = []
    if os.geteuid() == 0:  # root reads anything: drop the capabilities that allow it
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.skip("running as root without setpriv")
        prefix = [setpriv, "--bounding-set=-dac_override,-dac_read_search"]
    agent: Agent = await agents(log, prefix=prefix)  # type: ignore[operator]
    await agent.until(lambda: "error" in agent.kinds(), "error")
    error = agent.last("error")
    assert error["error"] == "permission denied" and error["path"] == str(log)
    log.chmod(0o644)
    await agent.has_lines(3)
    assert agent.kinds().count("error") == 1
    await agent.close()


async def test_a_directory_is_an_error(tmp_path: Path, agents: object) -> None:
    agent: Agent = await agents(tmp_path)  # type: ignore[operator]
    await agent.until(lambda: "error" in agent.kinds(), "error")
    assert agent.last("error")["error"] == "is a directory"
    await agent.close()


async def test_home_is_expanded_on_the_host(tmp_path: Path, isolated_home: Path,
                                            agents: object) -> None:
    (isolated_home / "logs").mkdir()
    (isolated_home / "logs" / "h.log").write_bytes(b"at home\n")
    agent: Agent = await agents("~/logs/h.log")  # type: ignore[operator]
    await agent.has_lines(1)
    assert agent.last("file")["path"] == str(isolated_home / "logs" / "h.log")
    await agent.close()


async def test_glob_follows_the_newest_file(tmp_path: Path, agents: object) -> None:
    old = tmp_path / "run-1.log"
    older = tmp_path / "run-0.log"
    older.write_bytes(b"zero\n")
    old.write_bytes(b"one a\n")
    os.utime(older, (1_000_000, 1_000_000))
    os.utime(old, (2_000_000, 2_000_000))
    agent: Agent = await agents(tmp_path / "run-*.log")  # type: ignore[operator]
    await agent.has_lines(1)
    assert agent.lines == [b"one a"]
    new = tmp_path / "run-2.log"
    new.write_bytes(b"two a\ntwo b\n")  # now: newer than run-1 (mtime 2_000_000)
    await agent.has_lines(3)
    assert agent.last("file")["path"] == str(new)
    assert agent.last("file")["how"] == "newer"
    # Writing to the old file again does not make the tail go back and forth.
    with old.open("ab") as f:
        f.write(b"one b\n")
    with new.open("ab") as f:
        f.write(b"two c\n")
    await agent.has_lines(4)
    assert agent.lines == [b"one a", b"two a", b"two b", b"two c"]
    await agent.close()


# --------------------------------------------------------------------------- resume


async def test_resume_continues_at_the_offset(tmp_path: Path, agents: object) -> None:
    log = tmp_path / "r.log"
    log.write_bytes(numbered(0, 10))
    st = log.stat()
    offset = len(numbered(0, 6))
    agent: Agent = await agents(log, start={"resume": {  # type: ignore[operator]
        "dev": st.st_dev, "ino": st.st_ino, "offset": offset}})
    await agent.has_lines(4)
    assert agent.lines == numbered(6, 4).split(b"\n")[:-1]
    assert agent.last("file")["how"] == "resumed"
    await agent.close()


async def test_resume_after_truncation_restarts(tmp_path: Path, agents: object) -> None:
    log = tmp_path / "r.log"
    log.write_bytes(numbered(0, 2))
    st = log.stat()
    agent: Agent = await agents(log, start={"resume": {  # type: ignore[operator]
        "dev": st.st_dev, "ino": st.st_ino, "offset": 10_000}})
    await agent.has_lines(2)
    file = agent.last("file")
    assert file["how"] == "restarted" and file["reason"] == "truncated"
    await agent.close()


async def test_resume_after_rotation_drains_the_old_file(tmp_path: Path, agents: object) -> None:
    log = tmp_path / "r.log"
    log.write_bytes(numbered(0, 10))
    st = log.stat()
    offset = len(numbered(0, 7))
    os.rename(log, tmp_path / "r.log.1")  # rotated while the link was down
    log.write_bytes(numbered(10, 2))
    agent: Agent = await agents(log, start={"resume": {  # type: ignore[operator]
        "dev": st.st_dev, "ino": st.st_ino, "offset": offset, "file": str(log)}})
    await agent.has_lines(5)
    assert agent.lines == numbered(7, 5).split(b"\n")[:-1]
    assert [e["how"] for e in agent.events if e["e"] == "file"] == ["resumed", "rotated"]
    await agent.close()


async def test_resume_of_a_replaced_file_restarts(tmp_path: Path, agents: object) -> None:
    log = tmp_path / "r.log"
    log.write_bytes(numbered(0, 3))
    agent: Agent = await agents(log, start={"resume": {  # type: ignore[operator]
        "dev": 1, "ino": 1, "offset": 5}})
    await agent.has_lines(3)
    file = agent.last("file")
    assert file["how"] == "restarted" and file["reason"] == "replaced"
    await agent.close()


# --------------------------------------------------------------------------- ending


async def test_ends_on_stdin_eof(tmp_path: Path, agents: object) -> None:
    agent: Agent = await agents(tmp_path / "none.log")  # type: ignore[operator]
    await agent.until(lambda: "waiting" in agent.kinds(), "waiting")
    assert await agent.close() == 0


async def test_ends_without_heartbeats(tmp_path: Path, agents: object) -> None:
    agent: Agent = await agents(tmp_path / "none.log",  # type: ignore[operator]
                                heartbeat_timeout=0.3)
    # stdin stays open, but nothing arrives on it: the agent gives up by itself.
    assert await asyncio.wait_for(agent.proc.wait(), 10) == 3


async def test_ends_when_stdout_is_gone(tmp_path: Path) -> None:
    log = tmp_path / "w.log"
    log.write_bytes(b"")
    proc = subprocess.Popen([sys.executable, "-u", "-c", bootstrap.BOOT],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(bootstrap.tail_payload({"path": str(log), "poll": 0.02}))
        proc.stdin.flush()
        assert proc.stdout.readline().startswith(b'E {"e":"hello"')
        proc.stdout.close()  # the channel is gone, stdin is not
        with log.open("ab") as f:
            f.write(b"x\n" * 10)
        assert proc.wait(10) == 2
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


# --------------------------------------------------------------------------- Python 3.8


@pytest.mark.skipif(not PY38.exists(), reason="no Python 3.8 interpreter here")
async def test_runs_on_python_38(tmp_path: Path, agents: object) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(b"a\n" + b"z" * 200 + b"\n")
    agent: Agent = await agents(log, python=str(PY38), max_line=100)  # type: ignore[operator]
    await agent.has_lines(2)
    assert agent.events[0]["python"].startswith("3.8.")  # type: ignore[union-attr]
    os.rename(log, tmp_path / "a.log.1")
    log.write_bytes(b"b\n")
    await agent.has_lines(3)
    assert agent.lines == [b"a", b"z" * 100, b"b"]
    assert agent.cuts == [0, 100, 0]
    await agent.close()


def test_needs_nothing_above_python_38() -> None:
    exe = shutil.which("vermin", path=os.path.dirname(sys.executable)) or shutil.which("vermin")
    if exe is None:
        pytest.fail("vermin is not installed (pip install -e '.[test]')", pytrace=False)
    result = subprocess.run(
        [exe, "--target=3.8-", "--violations", "--no-tips", "--eval-annotations",
         "--no-config-file", str(TAILAGENT_DIR)],
        capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "requires" not in result.stdout


def test_the_bundle_ships_every_module_of_the_tail_agent() -> None:
    size, body = bootstrap.tail_payload({"path": "/x.log"}).split(b"\n", 1)
    assert int(size) == len(body)
    bundle = json.loads(zlib.decompress(body))
    expected = {"nomadlab_tailagent" + ("" if f.stem == "__init__" else f".{f.stem}")
                for f in TAILAGENT_DIR.rglob("*.py") if f.name != "__main__.py"}
    assert bundle["package"] == "nomadlab_tailagent"
    assert set(bundle["modules"]) == expected
    assert bundle["agent"] == (TAILAGENT_DIR / "__main__.py").read_text(encoding="utf-8")
    assert bundle["args"] == {"path": "/x.log"}


def test_imports_only_the_standard_library() -> None:
    code = (
        "import sys; before = set(sys.modules)\n"
        # as on a host: the package alone (no nomadlab above it), under another name
        f"sys.path.insert(0, {str(TAILAGENT_DIR.parent)!r}); import tailagent.run\n"
        "import sysconfig\n"
        "std = sysconfig.get_paths()['stdlib']\n"
        "bad = [n for n in set(sys.modules) - before\n"
        "       if getattr(sys.modules[n], '__file__', None)\n"
        "       and not sys.modules[n].__file__.startswith(std)\n"
        "       and n != 'tailagent' and not n.startswith('tailagent.')]\n"
        "assert 'tailagent.follow' in sys.modules and 'nomadlab' not in sys.modules\n"
        "print(bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60)
    assert out.stdout.strip() == "[]"
