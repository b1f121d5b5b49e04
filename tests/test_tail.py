"""Log tails end to end: LogTail/Logs over a real sshd, and on "local".

The sshd host is this machine, so the test itself is the program writing the log:
it appends to a temp file, and checks what reaches the tail's buffer. Every line
written must be seen exactly once, in order, through rotation, truncation, deletion,
a link cut, and hostile names and contents.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from conftest import config_for, host_for, wait_for
from sshd import SshServer
from tcpproxy import TcpProxy

from nomadlab.core.config import Config, LogConfig, TailSettings
from nomadlab.core.logs import LogLine, LogState, LogStatus
from nomadlab.core.model import HostState
from nomadlab.remote.fleet import Fleet
from nomadlab.remote.tail import Logs
from nomadlab.remote.tail_follow import LogTail

# --------------------------------------------------------------------------- helpers


class Recorder:
    def __init__(self) -> None:
        self.batches: dict[str, list[list[LogLine]]] = {}
        self.statuses: list[LogStatus] = []

    def log_lines(self, name: str, lines: list[LogLine]) -> None:
        self.batches.setdefault(name, []).append(lines)

    def log_status(self, status: LogStatus) -> None:
        self.statuses.append(status)

    def texts(self, name: str) -> list[str]:
        return [line.text for batch in self.batches.get(name, []) for line in batch]

    def lines(self, name: str) -> list[LogLine]:
        return [line for batch in self.batches.get(name, []) for line in batch]

    def states(self, name: str) -> list[LogState]:
        out: list[LogState] = []
        for s in self.statuses:
            if s.name == name and (not out or out[-1] is not s.state):
                out.append(s.state)
        return out


def numbered(start: int, count: int, tag: str = "line") -> list[str]:
    return [f"{tag} {i:06d}" for i in range(start, start + count)]


def append(path: Path, lines: list[str]) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))


def trusted(server: SshServer) -> None:
    server.write_known_hosts(server.base / "known_hosts")


def tail_settings(**changes: object) -> TailSettings:
    settings = TailSettings(lines=500, max_lines=100_000, poll=0.05, glob_every=0.2)
    for key, value in changes.items():
        setattr(settings, key, value)
    return settings


@contextlib.asynccontextmanager
async def following(config: Config, *, fleet: bool = True, **kwargs: object
                    ) -> AsyncIterator[tuple[Logs, Recorder, Fleet | None]]:
    the_fleet = Fleet(config) if fleet else None
    if the_fleet is not None:
        await the_fleet.start()
    logs = Logs(config, the_fleet, retry=0.3, **kwargs)  # type: ignore[arg-type]
    rec = Recorder()
    logs.listeners.append(rec)
    await logs.start()
    try:
        yield logs, rec, the_fleet
    finally:
        await logs.stop()
        if the_fleet is not None:
            await the_fleet.stop()


def ssh_config(server: SshServer, tmp: Path, *logs: LogConfig, port: int | None = None,
               **settings: object) -> Config:
    trusted(server)
    host = host_for(server) if port is None else host_for(server, port=port)
    config = config_for(host, tmp=tmp)
    config.logs = list(logs)
    config.tail = tail_settings(**settings)
    return config


async def seen(rec: Recorder, name: str, count: int, timeout: float = 15.0) -> None:
    await wait_for(lambda: len(rec.texts(name)) >= count, timeout=timeout,
                   what=f"{count} lines of {name} (have {len(rec.texts(name))}, "
                        f"states {rec.states(name)})")


def state(logs: Logs, name: str) -> LogState:
    return logs.statuses[name].state


async def in_state(logs: Logs, name: str, wanted: LogState, timeout: float = 15.0) -> None:
    await wait_for(lambda: state(logs, name) is wanted, timeout=timeout,
                   what=f"{name} {wanted} (is {logs.statuses[name]})")


pytestmark = pytest.mark.sshd


# --------------------------------------------------------------------------- rotation & co


async def test_rotation_truncation_and_deletion_lose_and_repeat_nothing(
        make_sshd: Callable[..., SshServer], tmp_path: Path) -> None:
    server = make_sshd()
    log = tmp_path / "logs" / "train.log"
    log.parent.mkdir()
    append(log, numbered(0, 10))
    config = ssh_config(server, tmp_path, LogConfig("train", "gpu1", str(log)))
    expected = numbered(0, 10)
    async with following(config) as (logs, rec, _):
        await seen(rec, "train", 10)
        assert state(logs, "train") is LogState.LIVE
        assert logs.statuses["train"].file == str(log)

        expected += numbered(10, 100)
        append(log, numbered(10, 100))
        await seen(rec, "train", len(expected))

        # logrotate "create": rename, the writer finishes in the old file, new file.
        with log.open("a", encoding="utf-8") as writer:
            os.rename(log, log.with_suffix(".log.1"))
            writer.write("".join(f"{t}\n" for t in numbered(110, 20)))
        append(log, numbered(130, 30))
        expected += numbered(110, 50)
        await seen(rec, "train", len(expected))

        # logrotate "copytruncate": copy, cut to 0, a few (shorter) lines after.
        shutil.copy(log, log.with_suffix(".log.2"))
        with log.open("r+b") as f:
            f.truncate(0)
        append(log, numbered(160, 5))
        expected += numbered(160, 5)
        await seen(rec, "train", len(expected))
        tail = logs.tails["train"]
        assert any(e["e"] == "truncated" for e in tail.events)

        # Deleted and created again later.
        log.unlink()
        await in_state(logs, "train", LogState.WAITING)
        append(log, numbered(165, 7))
        expected += numbered(165, 7)
        await seen(rec, "train", len(expected))
        assert state(logs, "train") is LogState.LIVE

        assert rec.texts("train") == expected
        assert [line.seq for line in rec.lines("train")] == list(range(1, len(expected) + 1))
        assert [line.text for line in tail.buffer] == expected
        assert logs.statuses["train"].lines == len(expected)
        assert logs.statuses["train"].last_line_at is not None
        assert tail.sessions == 1  # all of it through one agent


# --------------------------------------------------------------------------- hostile names


async def test_a_hostile_path_is_data_not_shell(make_sshd: Callable[..., SshServer],
                                               tmp_path: Path) -> None:
    server = make_sshd()
    folder = tmp_path / "we ird; dir"
    folder.mkdir()
    log = folder / "we ird $(touch pwned) `touch pwned2` 'x' \"y\" ;touch pwned3.log"
    append(log, ["first"])
    home = Path(pwd.getpwuid(os.getuid()).pw_dir)  # where the remote shell would run
    places = [home, tmp_path, folder, Path.cwd()]
    before = {p / n for p in places for n in ("pwned", "pwned2", "pwned3.log") if
              (p / n).exists()}
    config = ssh_config(server, tmp_path)
    async with following(config) as (logs, rec, _):
        name = logs.open_adhoc("gpu1", str(log))
        assert name == f"gpu1:{log}"
        await seen(rec, name, 1)
        append(log, ["second"])
        await seen(rec, name, 2)
        assert rec.texts(name) == ["first", "second"]
        assert logs.statuses[name].file == str(log)
    after = {p / n for p in places for n in ("pwned", "pwned2", "pwned3.log") if
             (p / n).exists()}
    assert after == before


# --------------------------------------------------------------------------- waiting, errors


async def test_a_log_that_does_not_exist_yet(make_sshd: Callable[..., SshServer],
                                             tmp_path: Path) -> None:
    server = make_sshd()
    log = tmp_path / "later" / "run.log"
    config = ssh_config(server, tmp_path, LogConfig("run", "gpu1", str(log), lines=2))
    async with following(config) as (logs, rec, _):
        await in_state(logs, "run", LogState.WAITING)
        assert rec.states("run") == [LogState.CONNECTING, LogState.WAITING]
        log.parent.mkdir()
        append(log, numbered(0, 5))  # all 5 are new, though lines=2
        await seen(rec, "run", 5)
        assert state(logs, "run") is LogState.LIVE
        assert rec.texts("run") == numbered(0, 5)
        assert rec.states("run") == [LogState.CONNECTING, LogState.WAITING, LogState.LIVE]


async def test_permission_denied(make_sshd: Callable[..., SshServer], tmp_path: Path) -> None:
    extra = ""
    if os.geteuid() == 0:
        # root reads a mode-000 file anyway: sessions of this sshd lose that power.
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv")
        extra = ('ForceCommand /usr/bin/setpriv --bounding-set=-dac_override,'
                 '-dac_read_search /bin/sh -c "$SSH_ORIGINAL_COMMAND"')
    server = make_sshd(extra=extra)
    log = tmp_path / "secret.log"
    append(log, numbered(0, 3))
    log.chmod(0)
    config = ssh_config(server, tmp_path, LogConfig("secret", "gpu1", str(log)))
    async with following(config) as (logs, rec, _):
        await in_state(logs, "secret", LogState.ERROR)
        status = logs.statuses["secret"]
        assert status.error is not None and "permission denied" in status.error
        assert not rec.texts("secret")
        log.chmod(0o644)  # retried: the lines come
        await seen(rec, "secret", 3)
        assert state(logs, "secret") is LogState.LIVE
        assert logs.statuses["secret"].error is None


async def test_a_host_without_python(make_sshd: Callable[..., SshServer],
                                     tmp_path: Path) -> None:
    server = make_sshd()
    log = tmp_path / "a.log"
    append(log, ["a"])
    config = ssh_config(server, tmp_path, LogConfig("a", "gpu1", str(log)))
    config.hosts[0].python = "/nonexistent/python3"
    async with following(config) as (logs, _rec, _):
        await in_state(logs, "a", LogState.ERROR)
        assert "no python3" in (logs.statuses["a"].error or "")


async def test_a_host_that_is_not_monitored(tmp_path: Path) -> None:
    config = config_for(tmp=tmp_path)
    config.logs = [LogConfig("ghost", "nowhere", "/var/log/x.log")]
    async with following(config) as (logs, _rec, _):
        await in_state(logs, "ghost", LogState.ERROR)
        assert "not monitored" in (logs.statuses["ghost"].error or "")
        with pytest.raises(KeyError, match="not monitored"):
            logs.open_adhoc("nowhere", "/var/log/y.log")
        with pytest.raises(ValueError, match="no path"):
            logs.open_adhoc("local", " ")
        assert list(logs.tails) == ["ghost"]


# --------------------------------------------------------------------------- contents


async def test_a_five_megabyte_line_is_cut(make_sshd: Callable[..., SshServer],
                                           tmp_path: Path) -> None:
    server = make_sshd()
    log = tmp_path / "huge.log"
    append(log, ["before"])
    config = ssh_config(server, tmp_path, LogConfig("huge", "gpu1", str(log)))
    async with following(config) as (_logs, rec, _):
        await seen(rec, "huge", 1)
        with log.open("ab") as f:
            f.write(b"x" * (5 << 20) + b"\n")
        append(log, numbered(0, 3))
        await seen(rec, "huge", 5)
        lines = rec.lines("huge")
        assert [line.text for line in lines] == ["before", "x" * 65536, *numbered(0, 3)]
        assert [line.cut for line in lines] == [0, (5 << 20) - 65536, 0, 0, 0]


async def test_invalid_utf8_markup_and_escapes_arrive_as_data(
        make_sshd: Callable[..., SshServer], tmp_path: Path) -> None:
    server = make_sshd()
    log = tmp_path / "hostile.log"
    log.write_bytes(b"")
    config = ssh_config(server, tmp_path, LogConfig("hostile", "gpu1", str(log)))
    content = (b"[bold]x[/]\n[/]\n[@click=app.quit]\n\x1b]0;title\x07\n\x1b[2J\n"
               b"bad \xff\xfe\x80 bytes \xc3\nafter bad\n\x85 c1 \xc2\x9b\n")
    async with following(config) as (logs, rec, fleet):
        await in_state(logs, "hostile", LogState.LIVE)
        assert fleet is not None
        conn = fleet.supervisors["gpu1"].connection
        assert conn is not None
        with log.open("ab") as f:
            f.write(content)
        await seen(rec, "hostile", 8)
        assert rec.texts("hostile") == [
            "[bold]x[/]", "[/]", "[@click=app.quit]", "\x1b]0;title\x07", "\x1b[2J",
            "bad \ufffd\ufffd\ufffd bytes \ufffd", "after bad", "\ufffd c1 \x9b"]
        assert state(logs, "hostile") is LogState.LIVE
        # Raw bytes on the channel: the connection itself never noticed the bad UTF-8.
        assert fleet.supervisors["gpu1"].connection is conn
        assert logs.tails["hostile"].sessions == 1


async def test_initial_lines_are_the_last_n(make_sshd: Callable[..., SshServer],
                                            tmp_path: Path) -> None:
    server = make_sshd()
    log = tmp_path / "long.log"
    append(log, numbered(0, 1000))
    config = ssh_config(server, tmp_path, LogConfig("long", "gpu1", str(log), lines=5))
    async with following(config) as (logs, rec, _):
        await seen(rec, "long", 5)
        append(log, numbered(1000, 1))
        await seen(rec, "long", 6)
        assert rec.texts("long") == numbered(995, 6)
        assert [line.seq for line in logs.tails["long"].buffer] == [1, 2, 3, 4, 5, 6]


async def test_a_glob_follows_the_newest_file(make_sshd: Callable[..., SshServer],
                                              tmp_path: Path) -> None:
    server = make_sshd()
    runs = tmp_path / "runs"
    runs.mkdir()
    append(runs / "run-1.log", ["one"])
    append(runs / "run-0.log", ["zero"])
    os.utime(runs / "run-0.log", (1_000_000, 1_000_000))
    os.utime(runs / "run-1.log", (2_000_000, 2_000_000))
    config = ssh_config(server, tmp_path, LogConfig("runs", "gpu1", str(runs / "run-*.log")))
    async with following(config) as (logs, rec, _):
        await seen(rec, "runs", 1)
        assert logs.statuses["runs"].file == str(runs / "run-1.log")
        append(runs / "run-2.log", ["two a", "two b"])
        await seen(rec, "runs", 3)
        assert rec.texts("runs") == ["one", "two a", "two b"]
        assert logs.statuses["runs"].file == str(runs / "run-2.log")
        assert logs.statuses["runs"].path == str(runs / "run-*.log")


# --------------------------------------------------------------------------- link cut


async def test_link_cut_and_restored_resumes_without_gap_or_repeat(
        make_sshd: Callable[..., SshServer], tmp_path: Path) -> None:
    server = make_sshd()
    proxy = await TcpProxy(server.port).start()
    log = tmp_path / "train.log"
    append(log, numbered(0, 20))
    config = ssh_config(server, tmp_path, LogConfig("train", "gpu1", str(log)),
                        port=proxy.port)
    known_hosts = server.base / "known_hosts"
    known_hosts.write_text(server.host_key_line.replace(
        f"]:{server.port} ", f"]:{proxy.port} ") + "\n")
    expected = numbered(0, 20)
    try:
        async with following(config) as (logs, rec, fleet):
            assert fleet is not None
            await seen(rec, "train", 20)
            proxy.blackhole()
            written = 20
            # Lines keep coming while the link is dead (the old agent may even read
            # some of them: what it sent is lost with the link, and sent again).
            deadline = asyncio.get_running_loop().time() + 15
            while state(logs, "train") is not LogState.CONNECTING:
                assert asyncio.get_running_loop().time() < deadline, "dead link not noticed"
                append(log, numbered(written, 10))
                written += 10
                await asyncio.sleep(0.05)  # the writer's pace, not a timer
            append(log, numbered(written, 25))
            written += 25
            expected = numbered(0, written)
            proxy.restore()
            await seen(rec, "train", written, timeout=20)
            append(log, numbered(written, 5))
            expected = numbered(0, written + 5)
            await seen(rec, "train", written + 5)
            assert rec.texts("train") == expected
            tail = logs.tails["train"]
            assert tail.sessions == 2
            files = [e for e in tail.events if e["e"] == "file"]
            assert [e["how"] for e in files] == ["start", "resumed"]
            assert rec.states("train")[-2:] == [LogState.CONNECTING, LogState.LIVE]
        await wait_for(lambda: server.session_pids() == [], timeout=15,
                       what="no session left under sshd")
    finally:
        await proxy.close()


# --------------------------------------------------------------------------- cleanup


async def test_nothing_is_left_running_after_stop(make_sshd: Callable[..., SshServer],
                                                  tmp_path: Path) -> None:
    server = make_sshd()
    log = tmp_path / "a.log"
    append(log, ["a"])
    config = ssh_config(server, tmp_path, LogConfig("a", "gpu1", str(log)),
                        LogConfig("b", "gpu1", str(tmp_path / "missing.log")))
    fleet = Fleet(config)
    await fleet.start()
    try:
        await wait_for(lambda: fleet.statuses["gpu1"].state is HostState.LIVE, timeout=15,
                       what="the host live")
        baseline = set(server.session_pids())  # the sampling agent's session
        logs = Logs(config, fleet, retry=0.3)
        rec = Recorder()
        logs.listeners.append(rec)
        await logs.start()
        await seen(rec, "a", 1)
        await in_state(logs, "b", LogState.WAITING)
        adhoc = logs.open_adhoc("gpu1", str(log))
        await seen(rec, adhoc, 1)
        assert len(set(server.session_pids()) - baseline) >= 3  # three tail agents
        logs.close(adhoc)
        assert adhoc not in logs.statuses and adhoc not in logs.tails
        assert rec.statuses[-1].name == adhoc and rec.statuses[-1].state is LogState.STOPPED
        await logs.stop()
        assert all(s.state is LogState.STOPPED for s in logs.statuses.values())
        await wait_for(lambda: set(server.session_pids()) <= baseline, timeout=10,
                       what="the tail agents gone, the sampler still there")
        assert fleet.statuses["gpu1"].state is HostState.LIVE
    finally:
        await fleet.stop()
    await wait_for(lambda: server.session_pids() == [], timeout=10, what="nothing under sshd")


# --------------------------------------------------------------------------- completion


async def test_path_completion_over_sftp(make_sshd: Callable[..., SshServer],
                                         tmp_path: Path) -> None:
    server = make_sshd()
    base = tmp_path / "c"
    (base / "logs").mkdir(parents=True)
    (base / "long name.txt").write_text("x")
    (base / "lost").mkdir()
    (base / ".hidden").write_text("x")
    (base / "other").write_text("x")
    (base / "link").symlink_to(base / "logs")
    config = ssh_config(server, tmp_path)
    async with following(config) as (logs, _rec, fleet):
        assert fleet is not None
        await fleet.supervisors["gpu1"].wait_connected()
        assert await logs.complete_path("gpu1", f"{base}/lo") == [
            f"{base}/logs/", f"{base}/long name.txt", f"{base}/lost/"]
        assert await logs.complete_path("gpu1", f"{base}/li") == [f"{base}/link/"]
        assert await logs.complete_path("gpu1", f"{base}/.h") == [f"{base}/.hidden"]
        assert await logs.complete_path("gpu1", f"{base}/nothing") == []
        assert await logs.complete_path("gpu1", f"{base}/missing/x") == []
        home = Path(pwd.getpwuid(os.getuid()).pw_dir)
        names = sorted(n + ("/" if (home / n).is_dir() else "")
                       for n in os.listdir(home) if not n.startswith("."))
        assert await logs.complete_path("gpu1", "~/") == [f"~/{n}" for n in names]
        assert await logs.complete_path("gpu1", "~") == ["~/"]
        assert await logs.complete_path("nowhere", "/") == []


# --------------------------------------------------------------------------- local


async def test_local_tail_takes_the_same_path(tmp_path: Path, isolated_home: Path) -> None:
    log = isolated_home / "runs" / "local.log"
    log.parent.mkdir()
    append(log, numbered(0, 3))
    config = config_for(tmp=tmp_path)
    config.logs = [LogConfig("mine", "local", "~/runs/local.log")]
    config.tail = tail_settings()
    async with following(config, fleet=False) as (logs, rec, _):
        await seen(rec, "mine", 3)
        assert logs.statuses["mine"].file == str(log)
        os.rename(log, log.with_suffix(".log.1"))
        append(log, numbered(3, 2))
        await seen(rec, "mine", 5)
        with log.open("r+b") as f:
            f.truncate(0)
        append(log, numbered(5, 1))
        await seen(rec, "mine", 6)
        assert rec.texts("mine") == numbered(0, 6)
        tail = logs.tails["mine"]
        pid_events = [e for e in tail.events if e["e"] == "file"]
        assert len(pid_events) == 2
    assert logs.statuses["mine"].state is LogState.STOPPED


async def test_local_adhoc_open_close_and_completion(tmp_path: Path,
                                                     isolated_home: Path) -> None:
    (isolated_home / "exp").mkdir()
    (isolated_home / "exp" / "a.log").write_text("alpha\n")
    (isolated_home / "exp" / "b.log").write_text("beta\n")
    config = config_for(tmp=tmp_path)
    config.tail = tail_settings()
    async with following(config, fleet=False) as (logs, rec, _):
        assert await logs.complete_path("local", "~/e") == ["~/exp/"]
        assert await logs.complete_path("local", "~/exp/") == ["~/exp/a.log", "~/exp/b.log"]
        assert await logs.complete_path("local", str(isolated_home / "exp" / "a")) == [
            str(isolated_home / "exp" / "a.log")]
        name = logs.open_adhoc("local", "~/exp/a.log")
        assert name == "local:~/exp/a.log"
        assert logs.open_adhoc("local", "~/exp/a.log") == name  # already open
        await seen(rec, name, 1)
        tail = logs.tails[name]
        assert isinstance(tail, LogTail)
        logs.close(name)
        assert name not in logs.tails
        with pytest.raises(KeyError):
            logs.close(name)
    assert rec.texts(name) == ["alpha"]


async def test_local_agent_ends_with_the_tail(tmp_path: Path) -> None:
    log = tmp_path / "x.log"
    append(log, ["x"])
    config = config_for(tmp=tmp_path)
    config.logs = [LogConfig("x", "local", str(log))]
    config.tail = tail_settings()
    pids: list[int] = []
    async with following(config, fleet=False) as (logs, rec, _):
        await seen(rec, "x", 1)
        hello = next(e for e in logs.tails["x"].events if e["e"] == "file")
        assert hello["path"] == str(log)
        pids = [int(p) for p in os.listdir("/proc") if p.isdigit()
                and _is_child_agent(int(p))]
        assert len(pids) == 1
    await wait_for(lambda: not any(Path(f"/proc/{p}").exists() and _is_child_agent(p)
                                   for p in pids), timeout=5, what="the local agent gone")


def _is_child_agent(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    ppid = int(stat.rpartition(")")[2].split()[1])
    return ppid == os.getpid() and b"BUNDLE" in cmdline
