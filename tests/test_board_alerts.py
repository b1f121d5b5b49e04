"""Cards that know their runs, end to end over a real sshd: a line written to a log on
the host moves its card (finished) or marks it failed, the alert names the card, and
the card shows its process's GPU utilization (stand-in NVML reporting a real process
of this machine) and the log's last line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import config_for, host_for, wait_for
from sshd import SshServer

from nomadlab.core.board import BoardService, make_service
from nomadlab.core.clock import SYSTEM_CLOCK
from nomadlab.core.config import LogConfig, TailSettings
from nomadlab.core.logs import LogState
from nomadlab.core.store import Store
from nomadlab.notify.hub import AlertHub
from nomadlab.remote.fleet import Fleet
from nomadlab.remote.tail import Logs

pytestmark = pytest.mark.sshd


def append(path: Path, lines: list[str]) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write("".join(line + "\n" for line in lines))


async def test_log_lines_on_the_host_move_and_fail_cards(
        gpu_server: SshServer, nvml_conf: Path, tmp_path: Path) -> None:
    # A real process on "the host" (this machine), reported by the stand-in NVML on GPU 2:
    # the agent reads its command line from /proc, as it would on a GPU box.
    run = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)",
                            "exp42-train", "--lr", "3e-4"])
    try:
        with nvml_conf.open("a") as f:
            f.write(f"\n[proc]\ngpu=2\npid={run.pid}\nmem_mib=20000\nname=python\n")
        gpu_server.write_known_hosts(gpu_server.base / "known_hosts")
        runs = tmp_path / "runs"
        runs.mkdir()
        log_a, log_b = runs / "a.log", runs / "b.log"
        append(log_a, ["epoch 1 loss 0.9"])
        append(log_b, ["starting"])
        config = config_for(host_for(gpu_server), tmp=tmp_path)
        config.logs = [LogConfig("train-a", "gpu1", str(log_a))]
        config.tail = TailSettings(lines=500, max_lines=100_000, poll=0.05, glob_every=0.2)
        store = Store(config.database)
        fleet = Fleet(config, store=store)
        logs = Logs(config, fleet, retry=0.3)
        hub = AlertHub(config, store)
        fleet.listeners.append(hub)
        logs.listeners.append(hub)
        board = make_service(config=config, store=store, clock=SYSTEM_CLOCK, fleet=fleet,
                             logs=logs, alerts=hub)
        assert isinstance(board, BoardService)
        a = board.add_card("exp42", column="Training", origin="tui", links={
            "host": "gpu1", "log": "train-a", "command": "exp42-train --lr 3e-4"})
        # A path on the card's host, not in [[logs]]: followed ad hoc because it runs.
        b = board.add_card("exp43", column="Training", origin="tui",
                           links={"host": "gpu1", "log": str(log_b)})
        idea = board.add_card("not running", origin="tui",
                              links={"host": "gpu1", "log": str(runs / "c.log")})
        await fleet.start()
        await logs.start()
        await hub.start()
        await board.start()
        try:
            adhoc = f"gpu1:{log_b}"
            assert adhoc in logs.tails and f"gpu1:{runs / 'c.log'}" not in logs.tails

            def live_a() -> object:
                card = board.card(a)
                assert card is not None
                return board.live(card)

            await wait_for(lambda: live_a().scope == "process", timeout=30,  # type: ignore[attr-defined]
                           what="the run's process on GPU 2")
            live = live_a()
            assert live.gpus == (2,) and live.utilization == 100.0  # type: ignore[attr-defined]
            await wait_for(lambda: live_a().last_line == "epoch 1 loss 0.9",  # type: ignore[attr-defined]
                           timeout=20, what="the log's last line")

            append(log_a, ["epoch 2 loss 0.5", "Training completed in 3h12m"])
            await wait_for(lambda: board.card(a).column == "Evaluation",  # type: ignore[union-attr]
                           timeout=20, what="the finished card to move")
            move = board.history(a).moves[-1]
            assert move.auto and move.from_col == "Training"
            assert hub.log is not None
            finished = next(x for x in hub.log.recent(20) if x.outcome == "finished")
            assert f"Card #{a} \u201cexp42\u201d moved to Evaluation." in finished.message
            assert finished.extra["cards"] == [a]

            # Lines already in a file when its tail starts are history (no alert): wait
            # until the ad hoc tail follows log_b before the run "fails".
            await wait_for(lambda: logs.statuses[adhoc].state is LogState.LIVE, timeout=20,
                           what="the ad hoc tail of log_b")
            append(log_b, ["Traceback (most recent call last):", "RuntimeError: boom"])
            await wait_for(lambda: board.card(b).failed is not None,  # type: ignore[union-attr]
                           timeout=20, what="the failed card to be marked")
            card_b = board.card(b)
            assert card_b is not None and card_b.column == "Training"
            assert "Traceback" in (card_b.failed or "")
            failed = next(x for x in hub.log.recent(20) if x.outcome == "failed")
            assert failed.log == adhoc
            assert f"Card #{b} \u201cexp43\u201d is marked failed." in failed.message
            assert board.card(idea).failed is None  # type: ignore[union-attr]

            # Both automatic changes are undoable, newest first.
            assert board.undo().label == f"mark #{b} failed (automatic)"  # type: ignore[union-attr]
            assert board.undo().label == f"move #{a} to Evaluation (automatic)"  # type: ignore[union-attr]
            assert board.card(a).column == "Training"  # type: ignore[union-attr]
            assert board.card(b).failed is None  # type: ignore[union-attr]
        finally:
            await board.stop()
            await hub.stop(timeout=2)
            await logs.stop()
            await fleet.stop()
    finally:
        run.kill()
        run.wait(10)

