"""User regexes cannot freeze nomadlab (issue 9, item 24).

An alert rule ``(a+)+$`` and one 35-character line froze ``nomadlab watch`` for over
40 s, SIGINT included. Patterns now run on the ``regex`` engine with a time limit; a
pattern that hits it is turned off with an alert naming its rule.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from test_watch import Events

from nomadlab.core.alert_engine import AlertEngine
from nomadlab.core.alerts import PATTERN_TOO_SLOW
from nomadlab.core.clock import ManualClock
from nomadlab.core.config import AlertRule, load_config_text
from nomadlab.core.logs import LogLine

LINE = "a" * 34 + "!"  # 35 characters
ISSUE_PATTERN = r"(a+)+$"  # catastrophic for re; the regex engine does not backtrack it
SLOW_PATTERN = r"(a|aa)+$"  # slow for the regex engine too: hits the time limit


def lines(*texts: str, start: int = 1) -> list[LogLine]:
    return [LogLine(seq=start + i, received=0.0, text=t) for i, t in enumerate(texts)]


def test_a_pattern_past_its_time_limit_is_turned_off_and_named() -> None:
    rules = [AlertRule(name="slow", when="log", pattern=SLOW_PATTERN, cooldown=0),
             AlertRule(name="greedy", when="log", pattern=ISSUE_PATTERN, cooldown=0),
             AlertRule(name="oom", when="log", pattern="CUDA out of memory", cooldown=0)]
    engine = AlertEngine(rules, ManualClock())
    alerts = engine.on_log_lines("train", "gpu1", lines(LINE, "CUDA out of memory"))
    slow = [a for a in alerts if a.rule == PATTERN_TOO_SLOW]
    assert len(slow) == 1
    assert "slow" in slow[0].title and SLOW_PATTERN in slow[0].message
    assert "line of train" in slow[0].message
    assert {a.rule for a in alerts} == {PATTERN_TOO_SLOW, "oom"}
    assert engine.disabled == ["slow"]
    # Turned off: the next lines cost nothing and the other rules go on.
    later = engine.on_log_lines("train", "gpu1", lines(LINE, "CUDA out of memory", start=3))
    assert [a.rule for a in later] == ["oom"]


def test_a_pattern_that_re_accepts_is_accepted_in_the_config() -> None:
    config = load_config_text(
        '[[alerts]]\nname = "nan"\nwhen = "log"\npattern = "[Ll](?i:oss is nan)|(a+)+$"\n')
    assert any(r.name == "nan" for r in config.alerts)


def test_watch_stays_responsive_and_exits_on_sigint(tmp_path: Path) -> None:
    log = tmp_path / "train.log"
    log.write_text("starting\n")
    config = tmp_path / "config.toml"
    config.write_text(f"""
show_local = false
data_dir = "{tmp_path / 'data'}"
[[logs]]
name = "train"
host = "local"
path = "{log}"
[[alerts]]
name = "greedy"
when = "log"
pattern = '{ISSUE_PATTERN}'
[[alerts]]
name = "slow"
when = "log"
pattern = '{SLOW_PATTERN}'
[[alerts]]
name = "done"
when = "log"
pattern = 'Training complete'
[notify]
default_rules = false
bell = false
desktop = false
notify_send = false
""")
    proc = subprocess.Popen([sys.executable, "-m", "nomadlab", "watch", "--states",
                             "--config", str(config)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    events = Events(proc)
    try:
        events.wait(lambda e: e["event"] == "log" and e["state"] == "live")
        with log.open("a") as f:
            f.write(LINE + "\n")
        _, alert = events.wait(lambda e: e["event"] == "alert"
                               and e["rule"] == PATTERN_TOO_SLOW)
        assert "slow" in alert["title"]
        with log.open("a") as f:
            f.write("Training complete\n")
        events.wait(lambda e: e["event"] == "alert" and e["rule"] == "done")
        proc.send_signal(signal.SIGINT)
        # Bounded: a frozen loop would ignore SIGINT and fail here, not hang the suite.
        assert proc.wait(20) == 0
        events.wait(lambda e: e["event"] == "stopped", timeout=5)
        alerts = [e["rule"] for _, e in events.items if e["event"] == "alert"]
        assert alerts == [PATTERN_TOO_SLOW, "done"]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
