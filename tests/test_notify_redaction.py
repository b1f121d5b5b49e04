"""Webhook secrets never leak through a failed delivery (issue 9, item 27).

A real HTTP server on 127.0.0.1 whose 404 body echoes the request's path (as many
servers do), and a webhook URL with a space in it (which Python quotes in its error
message). ``nomadlab watch`` runs as a process; its stdout, its stderr and the alerts
table in the SQLite file must hold no form of the token.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from test_watch import Events

from nomadlab.core.alerts import DELIVERY_FAILED
from nomadlab.notify.redaction import redact

TOKEN = "Xq7Zt0kEnS3cr3tV4lu3"  # the secret part of the webhook URL


class EchoServer:
    """Answers every POST with 404 and a body that repeats the path, raw and encoded."""

    def __init__(self) -> None:
        paths: list[str] = []
        self.paths = paths

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                paths.append(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                body = (f"no webhook at {self.path} "
                        f"(decoded: {urllib.parse.unquote(self.path)}; "
                        f"quoted: {urllib.parse.quote(self.path, safe='')})").encode()
                self.send_response(404)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05},
                         daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def echo() -> Iterator[EchoServer]:
    server = EchoServer()
    yield server
    server.close()


def forms(secret: str) -> set[str]:
    return {secret, urllib.parse.quote(secret), urllib.parse.quote_plus(secret),
            urllib.parse.quote(secret, safe="")}


def leaks(text: str, secrets: list[str]) -> list[str]:
    return [f for s in secrets for f in forms(s) if f in text]


def run_watch(tmp_path: Path, url: str) -> tuple[str, str, list[str]]:
    """watch with one webhook at ``url``; a traceback in the log; its failure reported.
    Returns stdout, stderr and every text of the alerts table."""
    log = tmp_path / "train.log"
    log.write_text("epoch 1\n")
    config = tmp_path / "config.toml"
    config.write_text(f"""
show_local = false
data_dir = "{tmp_path / 'data'}"
[[logs]]
name = "exp"
host = "local"
path = "{log}"
[notify]
bell = false
desktop = false
notify_send = false
retries = 1
[[notify.webhooks]]
name = "hook"
kind = "json"
secret = "hook-url"
""")
    env = dict(os.environ, NOMADLAB_SECRET_HOOK_URL=url, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "nomadlab", "watch", "--states",
                             "--config", str(config)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    events = Events(proc)
    try:
        events.wait(lambda e: e["event"] == "log" and e["state"] == "live")
        with log.open("a") as f:
            f.write("Traceback (most recent call last):\nRuntimeError: boom\n")
        events.wait(lambda e: e["event"] == "alert" and e["rule"] == DELIVERY_FAILED,
                    timeout=30)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    events.wait(lambda e: e["event"] == "stopped", timeout=5)
    stdout = "\n".join(repr(e) for _, e in events.items)
    stderr = proc.stderr.read() if proc.stderr else ""
    db = sqlite3.connect(tmp_path / "data" / "nomadlab.db")
    rows = db.execute("SELECT title, message, line, extra FROM alerts").fetchall()
    db.close()
    stored = [str(v) for row in rows for v in row if v is not None]
    return stdout, stderr, stored


def test_a_server_echoing_the_path_gets_nothing_stored_or_printed(
        echo: EchoServer, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{echo.port}/hooks/T0001/{TOKEN}"
    stdout, stderr, stored = run_watch(tmp_path, url)
    assert echo.paths, "the webhook was not tried"
    failure = [s for s in stored if "not sent to hook" in s]
    assert failure and "HTTP 404" in failure[0] and "<secret>" in failure[0]
    for where, text in (("stdout", stdout), ("stderr", stderr), ("db", "\n".join(stored))):
        assert not leaks(text, [TOKEN, url]), (where, text)


def test_a_url_with_a_space_gets_nothing_stored_or_printed(
        echo: EchoServer, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{echo.port}/hooks/my team/{TOKEN}"
    stdout, stderr, stored = run_watch(tmp_path, url)
    assert any("not sent to hook" in s for s in stored)
    for where, text in (("stdout", stdout), ("stderr", stderr), ("db", "\n".join(stored))):
        assert not leaks(text, [TOKEN, url, "/hooks/my team/" + TOKEN]), (where, text)


def test_redact_takes_every_form_and_cuts_nothing_half() -> None:
    url = f"https://hooks.example.com/services/T0123ABCD/{TOKEN}?key=s3cr3tkey123"
    texts = [url, f"path /services/T0123ABCD/{TOKEN}", urllib.parse.quote(url, safe=""),
             f"token {TOKEN} alone", "query key=s3cr3tkey123", "/services/T0123ABCD%2F" + TOKEN]
    for text in texts:
        out = redact(text, [url])
        assert TOKEN not in out and "s3cr3tkey123" not in out, out
        assert "<secret>" in out
    assert redact("nothing secret here", [url]) == "nothing secret here"
