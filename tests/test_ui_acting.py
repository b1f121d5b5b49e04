"""Acting from the fleet screen, as a user: k signals a process, T shows the tree,
a lists the host's tmux sessions and n starts one. A real sshd, real processes, a
real tmux server on the "host" (its own socket directory)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from conftest import config_for, host_for, nvml_env
from sshd import SshServer
from textual.pilot import Pilot
from textual.widgets import DataTable, Static

from nomadlab.core.clock import ManualClock
from nomadlab.core.config import Config
from nomadlab.remote.fleet import Fleet
from nomadlab.ui.confirm import ConfirmScreen
from nomadlab.ui.fleet.acting_dialogs import SessionName, TmuxSessions
from nomadlab.ui.fleet.processes import ProcessTable
from nomadlab.ui.fleet.rows import gpu_key, host_key
from nomadlab.ui.fleet.screen import FleetScreen
from nomadlab.ui.fleet.table import FleetTable

pytestmark = pytest.mark.sshd

STEPS = 600  # bounded waits: pauses of the app, not timers


@pytest.fixture
def victim() -> Iterator[subprocess.Popen[bytes]]:
    """A 'training run' that ignores SIGTERM, so only SIGKILL ends it."""
    proc = subprocess.Popen([sys.executable, "-c",
                             "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                             "print('up', flush=True)\ntime.sleep(120)", "--run=llama"],
                            stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"up\n"
    yield proc
    proc.kill()
    proc.wait()
    proc.stdout.close()


@pytest.fixture
def tmux_dir(tmp_path: Path) -> Iterator[Path]:
    directory = tmp_path / "tmux"
    directory.mkdir()
    yield directory
    subprocess.run(["tmux", "kill-server"], env={**os.environ, "TMUX_TMPDIR": str(directory)},
                   capture_output=True, check=False, timeout=10)


@pytest.fixture
def host(make_sshd: Callable[..., SshServer], fake_nvml_dir: Path, nvml_conf: Path,
         victim: subprocess.Popen[bytes], tmux_dir: Path) -> SshServer:
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    text = nvml_conf.read_text()
    for offset, pid in enumerate((11345, 11327, 11328, 11346, 11347, 11348)):
        text = text.replace(f"pid={pid}\n", f"pid={pid_max + offset}\n")
    nvml_conf.write_text(text + f"\n[proc]\ngpu=5\npid={victim.pid}\nmem_mib=2048\n")
    server = make_sshd({**nvml_env(fake_nvml_dir, nvml_conf), "TMUX_TMPDIR": str(tmux_dir)})
    server.write_known_hosts(server.base / "known_hosts")
    return server


def build(config: Config):  # type: ignore[no-untyped-def]
    from nomadlab.cli.tui import build_app
    from nomadlab.core.store import Store

    clock = ManualClock(1_795_000_000.0)
    store = Store(config.database)
    fleet = Fleet(config, store=store, clock=clock)
    return build_app(config, clock=clock, store=store, fleet=fleet), fleet, clock


async def until(pilot: Pilot[None], check: Callable[[], object], what: str) -> None:
    for _ in range(STEPS):
        if check():
            return
        await pilot.pause(0.05)
    raise AssertionError(f"never happened: {what}")


async def on_victim(pilot: Pilot[None], fleet: Fleet, victim: subprocess.Popen[bytes]
                    ) -> ProcessTable:
    """Fleet screen, cursor on the victim's GPU, focus in the process table."""
    await pilot.press("1")

    def seen() -> bool:
        sample = fleet.latest.get("gpu1")
        return sample is not None and any(
            p.pid == victim.pid and p.info is not None and p.info.cpu_percent is not None
            for g in sample.gpus for p in g.processes)

    await until(pilot, seen, "the victim's process with its details")
    screen = pilot.app.screen
    assert isinstance(screen, FleetScreen)
    table = screen.query_one(FleetTable)
    await until(pilot, lambda: gpu_key("gpu1", 5) in table.index, "the GPU row")
    table.move_cursor(row=table.get_row_index(gpu_key("gpu1", 5)))
    procs = screen.query_one(ProcessTable)
    await until(pilot, lambda: procs.row_count == 1, "the process row")
    procs.focus()
    await pilot.pause()
    return procs


async def test_k_asks_then_terms_then_offers_kill(host: SshServer, tmp_path: Path,
                                                  victim: subprocess.Popen[bytes]) -> None:
    app, fleet, clock = build(config_for(host_for(host), tmp=tmp_path))
    async with app.run_test(size=(160, 48)) as pilot:
        procs = await on_victim(pilot, fleet, victim)
        row = " ".join(c.plain for c in procs.get_row_at(0))
        assert "--run=llama" in row and "%" in row  # command and CPU %
        await pilot.press("k")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        body = " ".join(str(w.render()) for w in app.screen.query(Static))
        assert "gpu1" in body and str(victim.pid) in body and "--run=llama" in body
        assert "SIGTERM" in body
        await pilot.press("y")
        screen = app.screen
        assert isinstance(screen, FleetScreen)
        await until(pilot, lambda: screen.acting.pending, "SIGTERM sent")
        assert victim.poll() is None  # it ignores SIGTERM
        clock.advance(11)  # 10 s later, it still runs: SIGKILL is offered
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the SIGKILL offer")
        body = " ".join(str(w.render()) for w in app.screen.query(Static))
        assert "SIGKILL" in body and "Still running 10 s after SIGTERM" in body
        await pilot.press("y")
        await until(pilot, lambda: victim.poll() is not None, "the victim's end")
    assert victim.returncode == -9


async def test_k_in_read_only_asks_nothing(host: SshServer, tmp_path: Path,
                                           victim: subprocess.Popen[bytes]) -> None:
    config = config_for(host_for(host), tmp=tmp_path)
    config.fleet.read_only = True
    app, fleet, _clock = build(config)
    async with app.run_test(size=(160, 48)) as pilot:
        await on_victim(pilot, fleet, victim)
        await pilot.press("k")
        await pilot.pause()
        assert isinstance(app.screen, FleetScreen)
        assert any("read-only" in str(n.message) for n in app._notifications)
    assert victim.poll() is None


async def test_T_shows_the_parent_chain(host: SshServer, tmp_path: Path,
                                        victim: subprocess.Popen[bytes]) -> None:
    app, fleet, _clock = build(config_for(host_for(host), tmp=tmp_path))
    async with app.run_test(size=(160, 48)) as pilot:
        procs = await on_victim(pilot, fleet, victim)
        await pilot.press("T")
        await pilot.pause()
        assert "tree" in str(procs.border_title)
        rows = [[c.plain for c in procs.get_row_at(i)] for i in range(procs.row_count)]
        pids = [r[1] for r in rows]
        assert pids.index(str(os.getpid())) < pids.index(str(victim.pid))  # parent above
        assert pids[0] == "1"  # from init down
        victim_row = rows[pids.index(str(victim.pid))]
        assert victim_row[4].lstrip().startswith("└") and "--run=llama" in victim_row[4]
        await pilot.press("T")
        await pilot.pause()
        assert procs.row_count == 1


async def test_a_lists_tmux_sessions_and_n_starts_one(host: SshServer, tmp_path: Path,
                                                      tmux_dir: Path) -> None:
    env = {**os.environ, "TMUX_TMPDIR": str(tmux_dir)}
    subprocess.run(["tmux", "new-session", "-d", "-s", "train-7", "-x", "80", "-y", "24"],
                   env=env, check=True, timeout=10)
    app, fleet, _clock = build(config_for(host_for(host), tmp=tmp_path))
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.press("1")
        await until(pilot, lambda: fleet.supervisors["gpu1"].connection is not None,
                    "the connection")
        screen = app.screen
        table = screen.query_one(FleetTable)
        await until(pilot, lambda: host_key("gpu1") in table.index, "the host row")
        table.move_cursor(row=table.get_row_index(host_key("gpu1")))
        await pilot.press("a")
        await until(pilot, lambda: isinstance(app.screen, TmuxSessions), "the session list")
        dialog = app.screen
        assert isinstance(dialog, TmuxSessions)
        sessions = dialog.query_one(DataTable)
        note = dialog.query_one("#tmux-note", Static)
        await until(pilot, lambda: sessions.row_count == 1, f"train-7 listed ({note.render()})")
        cells = [c.plain for c in sessions.get_row_at(0)]
        assert cells[0] == "train-7" and cells[1] == "1" and cells[2] == "detached"
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, SessionName), "the name prompt")
        await pilot.press(*"eval-3", "enter")
        await until(pilot, lambda: sessions.row_count == 2, "the new session listed")
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, FleetScreen)
    listed = subprocess.run(["tmux", "list-sessions", "-F", "#{session_name}"], env=env,
                            capture_output=True, text=True, check=True, timeout=10).stdout
    assert sorted(listed.split()) == ["eval-3", "train-7"]
