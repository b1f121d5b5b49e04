"""`nomadlab watch` end to end: a real sshd, a real log, a real webhook receiver."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sshd import SshServer

pytestmark = pytest.mark.sshd


class Receiver:
    """An HTTP server on 127.0.0.1 that records every POST (a webhook endpoint)."""

    def __init__(self) -> None:
        self.requests: list[tuple[float, dict[str, Any]]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver.requests.append((time.monotonic(), json.loads(body)))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02},
                         daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hook"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


class Events:
    """JSON lines from the watch process, read on a thread (every wait is bounded)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.items: list[tuple[float, dict[str, Any]]] = []
        self.proc = proc
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.items.append((time.monotonic(), json.loads(line)))

    def wait(self, predicate: Any, timeout: float = 20.0) -> tuple[float, dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for item in list(self.items):
                if predicate(item[1]):
                    return item
            time.sleep(0.01)
        raise AssertionError(f"no such event within {timeout}s; got {[e for _, e in self.items]}")


def test_watch_traceback_gives_one_event_and_one_webhook(make_sshd: Any, tmp_path: Path,
                                                         receiver: Receiver) -> None:
    server: SshServer = make_sshd({"NOMADLAB_FAKE_NVML": "/nonexistent"})
    known_hosts = server.write_known_hosts(server.base / "known_hosts")
    log = tmp_path / "runs" / "exp 42" / "train.log"  # a space in the path, on purpose
    log.parent.mkdir(parents=True)
    log.write_text("epoch 1 step 1 loss=2.31\n")
    config = tmp_path / "config.toml"
    config.write_text(f"""
show_local = false
data_dir = "{tmp_path / 'data'}"

[[hosts]]
name = "gpu1"
hostname = "127.0.0.1"
port = {server.port}
user = "{server.user}"
identity_file = "{server.client_key}"
known_hosts = "{known_hosts}"

[[logs]]
name = "exp42"
host = "gpu1"
path = "{log}"

[notify]
bell = false
desktop = false
notify_send = false

[[notify.webhooks]]
name = "hook"
kind = "json"
secret = "hook-url"

[ssh]
connect_timeout = "5s"
""")
    env = dict(os.environ, NOMADLAB_SECRET_HOOK_URL=receiver.url, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "nomadlab", "watch", "--states",
                             "--config", str(config)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    events = Events(proc)
    try:
        events.wait(lambda e: e["event"] == "started")
        events.wait(lambda e: e["event"] == "log" and e["state"] == "live")
        with log.open("a") as f:
            written = time.monotonic()
            f.write("Traceback (most recent call last):\n"
                    '  File "train.py", line 88, in <module>\n'
                    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n")
        seen, event = events.wait(lambda e: e["event"] == "alert")
        assert event["rule"] == "run failed" and event["severity"] == "error"
        assert event["log"] == "exp42" and event["host"] == "gpu1"
        assert event["outcome"] == "failed"
        assert seen - written < 1.0, f"the event took {seen - written:.2f}s"
        deadline = time.monotonic() + 5
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.01)
        assert receiver.requests, "no webhook"
        hook_time, body = receiver.requests[0]
        assert hook_time - written < 1.0, f"the webhook took {hook_time - written:.2f}s"
        assert body["rule"] == "run failed" and body["log"] == "exp42"
        # A later, different event proves nothing else was pending for the traceback.
        with log.open("a") as f:
            f.write("Training complete: best val_loss=0.231\n")
        events.wait(lambda e: e["event"] == "alert" and e["rule"] == "run finished")
        deadline = time.monotonic() + 5
        while len(receiver.requests) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        alerts = [e for _, e in events.items if e["event"] == "alert"]
        assert [a["rule"] for a in alerts] == ["run failed", "run finished"]
        assert [b["rule"] for _, b in receiver.requests] == ["run failed", "run finished"]
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(15)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert code == 0, proc.stderr.read() if proc.stderr else ""
    events.wait(lambda e: e["event"] == "stopped", timeout=5)
    stderr = proc.stderr.read() if proc.stderr else ""
    assert "Traceback" not in stderr
    deadline = time.monotonic() + 10
    while server.session_pids() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.session_pids() == []  # nothing of ours left on the host


def test_watch_exits_cleanly_on_sigint_with_no_config(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(f'show_local = false\ndata_dir = "{tmp_path / "data"}"\n')
    proc = subprocess.Popen([sys.executable, "-m", "nomadlab", "watch", "--config", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    events = Events(proc)
    events.wait(lambda e: e["event"] == "started")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(15) == 0
    events.wait(lambda e: e["event"] == "stopped", timeout=5)
    assert "Traceback" not in (proc.stderr.read() if proc.stderr else "")


def test_old_lines_are_shown_but_do_not_alert(tmp_path: Path) -> None:
    """A traceback already in the log when nomadlab starts is history, not news."""
    log = tmp_path / "train.log"
    log.write_text("step 1\nTraceback (most recent call last):\nRuntimeError: old failure\n")
    config = tmp_path / "config.toml"
    config.write_text(f"""
show_local = false
data_dir = "{tmp_path / 'data'}"
[[logs]]
name = "old"
host = "local"
path = "{log}"
[notify]
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
            f.write("Training complete\n")
        events.wait(lambda e: e["event"] == "alert" and e["rule"] == "run finished")
        assert [e["rule"] for _, e in events.items if e["event"] == "alert"] == ["run finished"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0


def _watch_local_log(tmp_path: Path, log: Path) -> tuple[subprocess.Popen[str], Events]:
    config = tmp_path / "config.toml"
    config.write_text(f"""
show_local = false
data_dir = "{tmp_path / 'data'}"
[[logs]]
name = "run"
host = "local"
path = "{log}"
[notify]
bell = false
desktop = false
notify_send = false
""")
    proc = subprocess.Popen([sys.executable, "-m", "nomadlab", "watch", "--states",
                             "--config", str(config)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    return proc, Events(proc)


def test_lines_after_an_unfinished_last_line_are_news(tmp_path: Path) -> None:
    """The log's last line is unfinished when nomadlab starts (a progress bar): what is
    written after it alerts, although it reaches us together with that old line."""
    log = tmp_path / "train.log"
    log.write_text("step 1\nepoch 3 [=====")
    proc, events = _watch_local_log(tmp_path, log)
    try:
        events.wait(lambda e: e["event"] == "log" and e["state"] == "live")
        with log.open("a") as f:
            f.write("=====] 100%\nTraceback (most recent call last):\nRuntimeError: boom\n")
        events.wait(lambda e: e["event"] == "alert" and e["rule"] == "run failed")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0


def test_a_log_rewritten_from_its_start_is_news(tmp_path: Path) -> None:
    """A run restarted with ``> train.log`` truncates the file: its new lines alert,
    although the old file reached further when nomadlab started."""
    log = tmp_path / "train.log"
    log.write_text("".join(f"step {i}\n" for i in range(200)))
    proc, events = _watch_local_log(tmp_path, log)
    try:
        events.wait(lambda e: e["event"] == "log" and e["state"] == "live")
        with log.open("w") as f:
            f.write("Traceback (most recent call last):\nRuntimeError: boom\n")
        events.wait(lambda e: e["event"] == "alert" and e["rule"] == "run failed")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
