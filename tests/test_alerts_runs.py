"""A new file behind a log's path is a new run: its failure is said even within the
cooldown of the last run's (issue 9, item 3). Repeats within one file keep the cooldown.

End to end: a real tail agent over a real sshd follows a real file; the test writes the
log, rotates it (rename + new file) and truncates it (copytruncate), and counts the
alerts the AlertHub raises. The clock is a ManualClock that never moves, so everything
happens "within the cooldown".
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from conftest import config_for, host_for, wait_for
from sshd import SshServer

from nomadlab.core.alert_engine import AlertEngine
from nomadlab.core.alerts import default_rules
from nomadlab.core.clock import ManualClock
from nomadlab.core.config import LogConfig, TailSettings
from nomadlab.core.logs import LogLine
from nomadlab.notify.hub import AlertHub
from nomadlab.remote.fleet import Fleet
from nomadlab.remote.tail import Logs


class Lines:
    def __init__(self) -> None:
        self.texts: list[str] = []

    def log_lines(self, name: str, lines: list[LogLine]) -> None:
        self.texts.extend(line.text for line in lines)

    def log_status(self, status: object) -> None:
        return None


def append(path: Path, *texts: str) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write("".join(t + "\n" for t in texts))


def test_engine_new_run_resets_the_cooldown_and_same_run_keeps_it() -> None:
    engine = AlertEngine(default_rules(), ManualClock())

    def feed(run: int, seq: int, text: str) -> list[str]:
        return [a.rule for a in engine.on_log_lines("train", "gpu1",
                                                    [LogLine(seq, text, 0.0, run=run)])]

    assert feed(0, 1, "Traceback (most recent call last):") == ["run failed"]
    assert feed(0, 2, "CUDA out of memory") == []  # same file: cooldown
    assert feed(1, 3, "Killed") == ["run failed"]  # the next file: a new run
    assert feed(1, 4, "Killed") == []
    # One batch across a rotation: one alert per run.
    batch = [LogLine(5, "Killed", 0.0, run=1), LogLine(6, "Training complete", 0.0, run=2),
             LogLine(7, "Killed", 0.0, run=2)]
    assert sorted(a.rule for a in engine.on_log_lines("train", "gpu1", batch)) == [
        "run failed", "run finished"]


@pytest.mark.sshd
async def test_a_rotated_or_truncated_log_is_a_new_run(make_sshd: Callable[..., SshServer],
                                                       tmp_path: Path) -> None:
    server = make_sshd()
    server.write_known_hosts(server.base / "known_hosts")
    log = tmp_path / "runs" / "train.log"
    log.parent.mkdir()
    log.write_text("")
    config = config_for(host_for(server), tmp=tmp_path)
    config.logs = [LogConfig("train", "gpu1", str(log))]
    config.tail = TailSettings(lines=500, max_lines=10_000, poll=0.05, glob_every=0.2)
    for channel in ("toast", "bell", "desktop", "notify_send"):
        setattr(config.notify, channel, False)
    clock = ManualClock()  # never advanced: every failure below is within the cooldown
    hub = AlertHub(config, None, clock=clock)
    alerts: list[str] = []
    hub.subscribe(lambda a: alerts.append(f"{a.rule}: {a.line}"))
    seen = Lines()
    fleet = Fleet(config)
    await fleet.start()
    logs = Logs(config, fleet, retry=0.3)
    logs.listeners += [hub, seen]
    await logs.start()
    written: list[str] = []

    async def write(*texts: str) -> None:
        append(log, *texts)
        written.extend(texts)
        await wait_for(lambda: seen.texts == written, what=f"{written} (have {seen.texts})")

    try:
        await wait_for(lambda: logs.statuses["train"].file == str(log), what="following")
        await write("epoch 1", "Traceback (most recent call last):", "RuntimeError: boom")
        assert alerts == ["run failed: Traceback (most recent call last):"]

        await write("Traceback (most recent call last):")  # same file, same run
        assert len(alerts) == 1

        # Restarted run, logrotate "create": rename, new file, it fails again.
        os.rename(log, log.with_suffix(".log.1"))
        await write("epoch 1 (restarted)", "torch.OutOfMemoryError: CUDA out of memory")
        assert alerts[1:] == ["run failed: torch.OutOfMemoryError: CUDA out of memory"]

        await write("Killed")  # the same (new) file again: cooldown holds
        assert len(alerts) == 2

        # Restarted again, logrotate "copytruncate": the file is cut to 0 and reused.
        with log.open("r+b") as f:
            f.truncate(0)
        await write("Killed")
        assert alerts[2:] == ["run failed: Killed"]
        await write("Training complete")  # another rule, same run: said once
        await write("Training complete")
        assert alerts[3:] == ["run finished: Training complete"]
    finally:
        await logs.stop()
        await fleet.stop()
        await hub.stop(timeout=5)
