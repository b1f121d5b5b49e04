"""A real Prometheus (Debian's ``prometheus`` package) on 127.0.0.1 for tests.

Temp TSDB, 1 s scrape interval, targets from a file_sd JSON file the test rewrites
(Prometheus notices the change itself). Missing binary: the test is skipped, unless
NOMADLAB_REQUIRE_PROMETHEUS=1 (CI), where it fails. Also a bearer-token proxy, for a
Prometheus that needs a token.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

READY_WAIT = 60.0  # seconds: a loaded CI machine starts Prometheus slowly


def prometheus_binary() -> str:
    found = shutil.which("prometheus") or (
        "/usr/bin/prometheus" if os.path.exists("/usr/bin/prometheus") else None)
    if found is None:
        message = "prometheus is not installed (apt-get install prometheus)"
        if os.environ.get("NOMADLAB_REQUIRE_PROMETHEUS") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PromServer:
    def __init__(self, directory: Path, scrape_interval: str = "1s",
                 port: int | None = None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.sd_file = directory / "targets.json"
        self.config = directory / "prometheus.yml"
        self.sd_file.write_text("[]")
        self.config.write_text(json.dumps({
            "global": {"scrape_interval": scrape_interval, "scrape_timeout": "1s"
                       if scrape_interval == "1s" else "4s",
                       "evaluation_interval": scrape_interval},
            "scrape_configs": [{
                "job_name": "dcgm",
                "file_sd_configs": [{"files": [str(self.sd_file)], "refresh_interval": "1s"}],
            }],
        }))
        self.process: subprocess.Popen[bytes] | None = None
        self.binary = prometheus_binary()

    def start(self) -> None:
        # free_port() closes its socket before prometheus binds: another pytest-xdist
        # worker may take the port in between. A few tries with fresh ports.
        for attempt in range(3):
            try:
                self._start()
                return
            except RuntimeError as exc:
                if attempt == 2 or "address already in use" not in str(exc):
                    raise
                self.port = free_port()
                self.url = f"http://127.0.0.1:{self.port}"

    def _start(self) -> None:
        log = (self.directory / "prometheus.log").open("ab")
        self.process = subprocess.Popen(
            [self.binary, f"--config.file={self.config}",
             f"--storage.tsdb.path={self.directory / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}",
             "--storage.tsdb.retention.time=1h", "--web.enable-lifecycle"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        self.wait_ready()

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_WAIT
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError("prometheus exited: "
                                   + (self.directory / "prometheus.log").read_text()[-2000:])
            try:
                with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as r:
                    if r.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"prometheus not ready within {READY_WAIT:.0f}s")

    def set_targets(self, targets: list[dict[str, object]]) -> None:
        tmp = self.sd_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(targets))
        tmp.replace(self.sd_file)

    def query(self, promql: str) -> list[dict[str, Any]]:
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=10) as r:
            data = json.load(r)
        return list(data["data"]["result"])

    def wait_for(self, promql: str, check: Callable[[list[dict[str, Any]]], bool],
                 limit: float = 30.0) -> list[dict[str, Any]]:
        """Poll an instant query until ``check`` holds (scrapes land once a second)."""
        deadline = time.monotonic() + limit
        result: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            result = self.query(promql)
            if check(result):
                return result
            time.sleep(0.25)
        raise AssertionError(f"{promql}: not as expected within {limit:.0f}s: {result}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


class TokenProxy:
    """Forwards GET requests to ``upstream`` when they carry ``Bearer <token>``; 401 else."""

    def __init__(self, upstream: str, token: str) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.headers.get("Authorization") != f"Bearer {proxy.token}":
                    body = b"Unauthorized\n"
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", "Bearer")
                else:
                    try:
                        with urllib.request.urlopen(upstream + self.path, timeout=10) as r:
                            body, code = r.read(), r.status
                    except urllib.error.HTTPError as exc:
                        body, code = exc.read(), exc.code
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.token = token
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def exporters() -> Any:
    from standins.dcgm import StandinExporters

    server = StandinExporters()
    yield server
    server.close()


@pytest.fixture
def prometheus(tmp_path: Path) -> Any:
    directory = tmp_path / "prom"
    directory.mkdir()
    server = PromServer(directory)
    server.start()
    yield server
    server.stop()
