"""Delivery: OSC bytes, notify-send, webhooks against real HTTP servers on 127.0.0.1,
retries, failures reported as alerts, the hold policy, and the hub that ties it up."""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from conftest import wait_for

from nomadlab.core.alert_store import AlertLog
from nomadlab.core.alerts import DELIVERY_FAILED, Alert
from nomadlab.core.clock import ManualClock
from nomadlab.core.config import AlertRule, NotifySettings, WebhookConfig, load_config_text
from nomadlab.core.logs import LogLine, LogState, LogStatus
from nomadlab.core.model import HostState, HostStatus
from nomadlab.core.store import Store
from nomadlab.notify.desktop import notify_send, notify_send_available
from nomadlab.notify.hub import AlertHub
from nomadlab.notify.notifier import Notifier
from nomadlab.notify.terminal import (
    bell,
    terminal_notification,
    terminal_sink,
    terminal_style,
    tmux_wrap,
)
from nomadlab.remote.fleet import FleetListener

# --------------------------------------------------------------------------- a real server


@dataclass
class Seen:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


@dataclass
class Server:
    url: str
    statuses: list[int]  # answered in order, then ``default``
    default: int
    requests: list[Seen] = field(default_factory=list)
    httpd: ThreadingHTTPServer | None = None


@pytest.fixture
def http_server() -> Iterator[Callable[..., Server]]:
    servers: list[Server] = []

    def make(statuses: tuple[int, ...] = (), default: int = 200) -> Server:
        server = Server("", list(statuses), default)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                server.requests.append(Seen(self.path, dict(self.headers.items()), body))
                code = server.statuses.pop(0) if server.statuses else server.default
                self.send_response(code)
                if code == 204:
                    self.end_headers()
                    return
                reply = b'{"ok": true}' if code < 400 else b'{"ok": false, "description": "no"}'
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: object) -> None:
                pass

        httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02},
                         daemon=True).start()
        server.httpd = httpd
        server.url = f"http://127.0.0.1:{httpd.server_address[1]}"
        servers.append(server)
        return server

    yield make
    for server in servers:
        assert server.httpd is not None
        server.httpd.shutdown()
        server.httpd.server_close()


@pytest.fixture(autouse=True)
def no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy",
                 "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)


def alert(severity: str = "error", rule: str = "run failed", title: str = "run failed: train",
          message: str = "The run logging to train on gpu1 failed: CUDA out of memory.") -> Alert:
    return Alert(time=1_790_000_000.0, rule=rule, severity=severity, title=title,
                 message=message, host="gpu1", log="train", outcome="failed",
                 line="CUDA out of memory.", extra={"seq": 3})


def settings(*hooks: WebhookConfig, retries: int = 2, toast: bool = False, bell: bool = False,
             desktop: bool = False, notify_send: bool = False) -> NotifySettings:
    return NotifySettings(webhooks=list(hooks), retries=retries, toast=toast, bell=bell,
                          desktop=desktop, notify_send=notify_send)


class Failures(list[Alert]):
    def __call__(self, failure: Alert) -> None:
        self.append(failure)


# --------------------------------------------------------------------------- terminal


def test_osc_777_and_9_exact_bytes() -> None:
    assert terminal_notification("run failed: train", "OOM; step 5") == (
        "\x1b]777;notify;run failed: train;OOM; step 5\x07")
    assert terminal_notification("run failed: train", "OOM", style="9") == (
        "\x1b]9;run failed: train: OOM\x07")
    assert terminal_notification("t", "b", style="both") == "\x1b]777;notify;t;b\x07\x1b]9;t: b\x07"
    assert bell() == "\x07"


def test_osc_sanitised() -> None:
    evil_title = "a;b\x1b]0;pwned\x07\x9c"
    evil_body = "line1\nline2\x1b[2J\x07end\x1b\\"
    seq = terminal_notification(evil_title, evil_body)
    assert seq == "\x1b]777;notify;a,b ]0,pwned;line1 line2 [2J end \\\x07"
    # exactly one ESC (the opener) and one BEL (the terminator)
    assert seq.count("\x1b") == 1 and seq.count("\x07") == 1
    assert not any(0x80 <= ord(c) <= 0x9F for c in seq)
    # OSC 9: "digits;" at the start would be a ConEmu command
    assert terminal_notification("", "4;1;50", style="9") == "\x1b]9;4,1;50\x07"
    long = terminal_notification("t" * 500, "b" * 5000)
    assert len(long) < 700


def test_osc_tmux_passthrough() -> None:
    assert tmux_wrap("\x1b]9;hi\x07") == "\x1bPtmux;\x1b\x1b]9;hi\x07\x1b\\"
    assert terminal_notification("t", "b", True) == (
        "\x1bPtmux;\x1b\x1b]777;notify;t;b\x07\x1b\\")


def test_terminal_style_and_sink() -> None:
    assert terminal_style({}) == "777"
    assert terminal_style({"LC_TERMINAL": "iTerm2"}) == "9"
    assert terminal_style({"TERM_PROGRAM": "iTerm.app"}) == "9"
    assert terminal_style({"KITTY_WINDOW_ID": "1"}) == "9"
    assert terminal_style({"NOMADLAB_OSC": "off", "LC_TERMINAL": "iTerm2"}) == "off"
    written: list[str] = []
    sink = terminal_sink(written.append, {"TMUX": "/tmp/tmux-1/default,1,0"})
    sink("bell", alert())
    sink("desktop", alert(title="t", message="m"))
    sink("toast", alert())  # not a terminal channel
    assert written == ["\x07", "\x1bPtmux;\x1b\x1b]777;notify;t;m\x07\x1b\\"]
    quiet: list[str] = []
    terminal_sink(quiet.append, {"NOMADLAB_OSC": "off"})("desktop", alert())
    assert quiet == []


# --------------------------------------------------------------------------- notify-send


def fake_notify_send(tmp_path: Path) -> tuple[dict[str, str], Path]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    record = tmp_path / "notify-send.json"
    script = bin_dir / "notify-send"
    script.write_text(f"#!{sys.executable}\nimport json, os, sys\n"
                      "open(os.environ['NOTIFY_SEND_LOG'], 'w').write(json.dumps(sys.argv[1:]))\n")
    script.chmod(0o755)
    env = {"PATH": str(bin_dir), "DISPLAY": ":0", "NOTIFY_SEND_LOG": str(record)}
    return env, record


async def test_notify_send_runs_without_a_shell(tmp_path: Path) -> None:
    env, record = fake_notify_send(tmp_path)
    assert notify_send_available(env)
    assert not notify_send_available({**env, "DISPLAY": ""})
    assert not notify_send_available({"PATH": str(tmp_path), "DISPLAY": ":0"})
    ok = await notify_send("-t $(rm -rf x)", "a <b>&\x1b[31m", "error", environ=env)
    assert ok
    assert json.loads(record.read_text()) == [
        "--app-name=nomadlab", "--urgency=critical", "--", "-t $(rm -rf x)",
        "a &lt;b&gt;&amp; [31m"]


async def test_notifier_uses_notify_send_only_with_a_display(tmp_path: Path) -> None:
    env, record = fake_notify_send(tmp_path)
    await Notifier(settings(notify_send=True), environ={**env, "DISPLAY": ""}).deliver(alert())
    assert not record.exists()
    await Notifier(settings(notify_send=True), environ=env).deliver(alert())
    assert json.loads(record.read_text())[3] == "run failed: train"


# --------------------------------------------------------------------------- webhooks


async def deliver(hook: WebhookConfig, the_alert: Alert | None = None, retries: int = 2,
                  **kwargs: object) -> Failures:
    failures = Failures()
    notifier = Notifier(settings(hook, retries=retries), on_failure=failures, base_delay=0.01,
                        **kwargs)  # type: ignore[arg-type]
    await asyncio.wait_for(notifier.deliver(the_alert or alert()), 20)
    return failures


async def test_webhook_json(http_server: Callable[..., Server],
                            monkeypatch: pytest.MonkeyPatch) -> None:
    server = http_server()
    monkeypatch.setenv("NOMADLAB_SECRET_HOOK_URL", server.url + "/hooks/abc")
    failures = await deliver(WebhookConfig(name="hook", kind="json", secret="hook-url"))
    assert failures == []
    (seen,) = server.requests
    assert seen.path == "/hooks/abc"
    assert seen.headers["Content-Type"] == "application/json"
    assert seen.json() == {
        "title": "run failed: train",
        "message": "The run logging to train on gpu1 failed: CUDA out of memory.",
        "severity": "error", "rule": "run failed", "host": "gpu1", "log": "train",
        "time": "2026-09-21T14:13:20Z", "outcome": "failed",
        "line": "CUDA out of memory.", "extra": {"seq": 3},
    }


async def test_webhook_slack_escapes_and_prefixes(http_server: Callable[..., Server],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    server = http_server()
    monkeypatch.setenv("NOMADLAB_SECRET_SLACK", server.url + "/services/T/B/x")
    the_alert = alert(severity="warning", message="log said <!channel> & more")
    await deliver(WebhookConfig(name="s", kind="slack", secret="slack"), the_alert)
    (seen,) = server.requests
    assert seen.json() == {"text": "[WARNING] run failed: train\nlog said &lt;!channel&gt; "
                                   "&amp; more"}


async def test_webhook_discord(http_server: Callable[..., Server],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    server = http_server(default=204)  # what Discord answers
    monkeypatch.setenv("NOMADLAB_SECRET_DISCORD", server.url + "/api/webhooks/1/x")
    failures = await deliver(WebhookConfig(name="d", kind="discord", secret="discord"),
                             alert(severity="info", message="@everyone done"))
    assert failures == []
    (seen,) = server.requests
    assert seen.json() == {"content": "[INFO] run failed: train\n@everyone done",
                           "allowed_mentions": {"parse": []}}


async def test_webhook_ntfy(http_server: Callable[..., Server],
                            monkeypatch: pytest.MonkeyPatch) -> None:
    server = http_server()
    monkeypatch.setenv("NOMADLAB_SECRET_NTFY", server.url + "/my-topic")
    await deliver(WebhookConfig(name="n", kind="ntfy", secret="ntfy"))
    await deliver(WebhookConfig(name="n", kind="ntfy", secret="ntfy"),
                  alert(severity="info", title="run finished: 训练 ✓"))
    first, second = server.requests
    assert first.path == "/my-topic"
    assert first.body == b"The run logging to train on gpu1 failed: CUDA out of memory."
    assert first.headers["Title"] == "run failed: train"
    assert first.headers["Priority"] == "5"
    assert first.headers["Tags"] == "rotating_light,nomadlab"
    assert second.headers["Priority"] == "3"
    # not ASCII: RFC 2047, which ntfy decodes
    assert second.headers["Title"] == "=?UTF-8?B?cnVuIGZpbmlzaGVkOiDorq3nu4Mg4pyT?="


async def test_webhook_telegram_through_the_documented_api_override(
        http_server: Callable[..., Server], monkeypatch: pytest.MonkeyPatch) -> None:
    server = http_server()
    monkeypatch.setenv("NOMADLAB_TELEGRAM_API", server.url)
    monkeypatch.setenv("NOMADLAB_SECRET_TG", "123456:ABC-def_ghi")
    failures = await deliver(WebhookConfig(name="t", kind="telegram", secret="tg",
                                           chat_id="-100200300"))
    assert failures == []
    (seen,) = server.requests
    assert seen.path == "/bot123456:ABC-def_ghi/sendMessage"
    assert seen.json() == {
        "chat_id": "-100200300",
        "text": "run failed: train\nThe run logging to train on gpu1 failed: CUDA out of memory.",
        "disable_web_page_preview": True,
    }


async def test_retry_after_a_500_delivers_once(http_server: Callable[..., Server],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    server = http_server(statuses=(500,))
    monkeypatch.setenv("NOMADLAB_SECRET_HOOK", server.url + "/x")
    failures = await deliver(WebhookConfig(name="h", kind="json", secret="hook"))
    assert failures == []
    assert len(server.requests) == 2
    assert server.requests[0].body == server.requests[1].body


async def test_always_failing_webhook_reports_once_and_raises_nothing(
        http_server: Callable[..., Server], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server = http_server(default=503)
    monkeypatch.setenv("NOMADLAB_SECRET_HOOK", server.url + "/secret-path-xyz")
    hook = WebhookConfig(name="ops", kind="json", secret="hook", timeout=2)
    failures = await deliver(hook, retries=3)
    assert len(server.requests) == 4  # 1 + 3 retries
    (failure,) = failures
    assert failure.rule == DELIVERY_FAILED and failure.severity == "warning"
    assert failure.title == "not delivered: ops"
    assert "gave up after 4 attempts: HTTP 503" in failure.message
    assert failure.extra["webhook"] == "ops" and failure.extra["alert_rule"] == "run failed"
    assert "secret-path-xyz" not in failure.message + caplog.text


async def test_permanent_http_error_is_not_retried(http_server: Callable[..., Server],
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server = http_server(default=401)
    token = "987654:SECRET-token"
    monkeypatch.setenv("NOMADLAB_TELEGRAM_API", server.url)
    monkeypatch.setenv("NOMADLAB_SECRET_TG", token)
    failures = await deliver(WebhookConfig(name="t", kind="telegram", secret="tg",
                                           chat_id="1"), retries=5)
    assert len(server.requests) == 1
    (failure,) = failures
    assert "gave up after 1 attempt: HTTP 401" in failure.message
    assert token not in failure.message and token not in caplog.text
    assert "SECRET-token" not in json.dumps(failure.extra)


async def test_unreachable_webhook(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("NOMADLAB_SECRET_HOOK", f"http://127.0.0.1:{port}/x")
    failures = await deliver(WebhookConfig(name="h", kind="json", secret="hook"), retries=1)
    (failure,) = failures
    assert "gave up after 2 attempts: cannot connect" in failure.message


async def test_missing_secret_says_which_and_how(http_server: Callable[..., Server]) -> None:
    failures = await deliver(WebhookConfig(name="team", kind="slack", secret="slack-url"))
    (failure,) = failures
    assert ("secret 'slack-url' is not set; store it with `nomadlab secret set slack-url` or "
            "set the environment variable NOMADLAB_SECRET_SLACK_URL") in failure.message


async def test_secret_that_is_not_a_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOMADLAB_SECRET_HOOK", "hunter2-not-a-url")
    failures = await deliver(WebhookConfig(name="h", kind="json", secret="hook"))
    (failure,) = failures
    assert "secret 'hook' does not hold an http(s) URL" in failure.message
    assert "hunter2" not in failure.message


async def test_failures_of_one_webhook_are_rate_limited(monkeypatch: pytest.MonkeyPatch) -> None:
    failures = Failures()
    clock = ManualClock()
    hook = WebhookConfig(name="h", kind="json", secret="nowhere")
    notifier = Notifier(settings(hook), on_failure=failures, clock=clock, base_delay=0.01)
    for _ in range(3):
        await notifier.deliver(alert())
    assert len(failures) == 1
    clock.advance(601)
    await notifier.deliver(alert())
    assert len(failures) == 2 and "2 earlier failures" in failures[1].message


async def test_failure_without_callback_goes_to_local_channels_only(
        http_server: Callable[..., Server], monkeypatch: pytest.MonkeyPatch) -> None:
    server = http_server(default=500)
    monkeypatch.setenv("NOMADLAB_SECRET_HOOK", server.url)
    seen: list[tuple[str, str]] = []
    notifier = Notifier(settings(WebhookConfig(name="h", kind="json", secret="hook"),
                                 retries=0, toast=True), base_delay=0.01)
    notifier.add_sink(lambda channel, a: seen.append((channel, a.rule)))
    await notifier.deliver(alert())
    assert seen == [("toast", "run failed"), ("toast", DELIVERY_FAILED)]
    assert len(server.requests) == 1  # the failure report did not go to the webhook


# --------------------------------------------------------------------------- channels, hold


async def test_channels_follow_rule_severity_and_settings(http_server: Callable[..., Server],
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    loud = http_server()
    quiet = http_server()
    monkeypatch.setenv("NOMADLAB_SECRET_LOUD", loud.url)
    monkeypatch.setenv("NOMADLAB_SECRET_QUIET", quiet.url)
    s = settings(WebhookConfig(name="loud", kind="json", secret="loud"),
                 WebhookConfig(name="quiet", kind="json", secret="quiet", min_severity="error"),
                 toast=True, bell=True, desktop=True)
    rules = [AlertRule(name="only-toast", when="log", pattern="x", channels=["toast"])]
    notifier = Notifier(s, rules)
    assert notifier.channels_for(alert("error")) == ["toast", "bell", "desktop", "loud", "quiet"]
    assert notifier.channels_for(alert("warning")) == ["toast", "bell", "desktop", "loud"]
    assert notifier.channels_for(alert("error", rule="only-toast")) == ["toast"]
    assert notifier.channels_for(alert("error", rule=DELIVERY_FAILED)) == [
        "toast", "bell", "desktop"]
    s.min_severity = "warning"
    assert notifier.channels_for(alert("info")) == []
    await notifier.deliver(alert("warning"))
    assert len(loud.requests) == 1 and quiet.requests == []


async def test_hold_queues_info_and_release_keeps_order() -> None:
    holding = True
    seen: list[str] = []
    notifier = Notifier(settings(toast=True), hold=lambda: holding)
    notifier.add_sink(lambda channel, a: seen.append(a.title))
    await notifier.deliver(alert("info", title="finished 1"))
    await notifier.deliver(alert("error", title="failed"))
    await notifier.deliver(alert("info", title="finished 2"))
    await notifier.deliver(alert("warning", title="idle"))
    assert seen == ["failed", "idle"]
    assert [a.title for a in notifier.held] == ["finished 1", "finished 2"]
    holding = False
    await notifier.release()
    assert seen == ["failed", "idle", "finished 1", "finished 2"]
    assert notifier.held == []


async def test_held_alerts_go_first_when_hold_ends_without_release() -> None:
    holding = True
    seen: list[str] = []
    notifier = Notifier(settings(toast=True), hold=lambda: holding)
    notifier.add_sink(lambda channel, a: seen.append(a.title))
    await notifier.deliver(alert("info", title="a"))
    holding = False
    await notifier.deliver(alert("info", title="b"))
    assert seen == ["a", "b"]


async def test_broken_sink_and_hold_do_not_raise() -> None:
    def broken_hold() -> bool:
        raise RuntimeError("focus store gone")

    def broken_sink(channel: str, a: Alert) -> None:
        raise RuntimeError("screen gone")

    seen: list[str] = []
    notifier = Notifier(settings(toast=True), hold=broken_hold)
    notifier.add_sink(broken_sink)
    remove = notifier.add_sink(lambda channel, a: seen.append(channel))
    await notifier.deliver(alert("info"))
    assert seen == ["toast"]
    remove()
    await notifier.deliver(alert("info"))
    assert seen == ["toast"]


# --------------------------------------------------------------------------- the hub


def hub_config(url_secret: str, tmp: Path, extra: str = "") -> str:
    return (f'data_dir = "{tmp}"\n'
            '[[hosts]]\nname = "gpu1"\nhostname = "10.0.0.1"\nhourly_cost = 16.0\n'
            '[[logs]]\nname = "train"\nhost = "gpu1"\npath = "~/train.log"\n'
            '[notify]\ntoast = false\nbell = false\ndesktop = false\nnotify_send = false\n'
            'retries = 1\n'
            f'[[notify.webhooks]]\nname = "phone"\nkind = "json"\nsecret = "{url_secret}"\n'
            + extra)


async def test_hub_stores_tells_and_delivers(http_server: Callable[..., Server],
                                             monkeypatch: pytest.MonkeyPatch,
                                             isolated_home: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server = http_server()
    secret_url = server.url + "/t0ps3cret-webhook-path"
    monkeypatch.setenv("NOMADLAB_SECRET_PHONE_URL", secret_url)
    data = isolated_home / ".local" / "share" / "nomadlab"
    config = load_config_text(hub_config("phone-url", data))
    clock = ManualClock()
    store = Store(config.database)
    heard: list[Alert] = []
    hub = AlertHub(config, store, clock=clock)
    unsubscribe = hub.subscribe(heard.append)

    hub.log_lines("train", [LogLine(1, "epoch 9", 0.0), LogLine(2, "Training complete", 0.0)])
    hub.fleet_status(HostStatus("gpu1", HostState.RECONNECTING, clock.time(), "timed out"))
    clock.advance(300)
    assert [a.rule for a in hub.tick()] == ["host down"]
    assert [(a.rule, a.host) for a in heard] == [("run finished", "gpu1"), ("host down", "gpu1")]
    assert all(a.id is not None for a in heard)
    assert await hub.drain(10)
    assert sorted(r.json()["rule"] for r in server.requests) == [  # type: ignore[index]
        "host down", "run finished"]

    unsubscribe()
    hub.log_status(LogStatus("eval", "gpu2", "~/eval.log", LogState.LIVE, clock.time()))
    hub.log_lines("eval", [LogLine(1, "Traceback (most recent call last):", 0.0)])
    assert len(heard) == 2
    assert await hub.drain(10)
    log = AlertLog(store, clock)
    assert log.count_unacknowledged() == 3
    assert log.recent(limit=1)[0].host == "gpu2"
    store.close()

    # the secret is in no file of ours and in no log line
    for path in isolated_home.rglob("*"):
        if path.is_file():
            assert b"t0ps3cret" not in path.read_bytes(), path
    assert "t0ps3cret" not in caplog.text


async def test_hub_reports_a_failed_delivery_once(http_server: Callable[..., Server],
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  isolated_home: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    server = http_server(default=500)
    monkeypatch.setenv("NOMADLAB_SECRET_PHONE_URL", server.url + "/hook/s3cr3t-t0ken")
    config = load_config_text(hub_config("phone-url", isolated_home / "data"))
    store = Store(config.database)
    heard: list[Alert] = []
    notifier = Notifier(config.notify, base_delay=0.01)
    hub = AlertHub(config, store, clock=ManualClock(), notifier=notifier)
    hub.subscribe(heard.append)
    hub.log_lines("train", [LogLine(1, "CUDA out of memory", 0.0)])
    await wait_for(lambda: len(heard) == 2, timeout=10, what="the failure report")
    assert await hub.drain(10)
    assert [a.rule for a in heard] == ["run failed", DELIVERY_FAILED]
    assert len(server.requests) == 2  # one alert, one retry; the report is not sent there
    assert [a.rule for a in AlertLog(store).recent()] == [DELIVERY_FAILED, "run failed"]
    assert "gave up after 2 attempts: HTTP 500" in heard[1].message
    store.close()
    for path in isolated_home.rglob("*"):
        if path.is_file():
            assert b"s3cr3t-t0ken" not in path.read_bytes(), path
    assert "s3cr3t-t0ken" not in caplog.text


async def test_hub_ticks_on_its_own_and_stops(tmp_path: Path) -> None:
    config = load_config_text(hub_config("unused", tmp_path,
                                         '[[alerts]]\nname = "host down"\nwhen = "host_down"\n'
                                         'duration = "1m"\nchannels = []\n'))
    clock = ManualClock()
    heard: list[Alert] = []
    hub = AlertHub(config, None, clock=clock, tick_every=0.01)
    hub.subscribe(heard.append)
    hub.fleet_status(HostStatus("gpu1", HostState.CONNECTING, clock.time()))
    await hub.start()
    clock.advance(61)
    await wait_for(lambda: heard, timeout=5, what="a tick")
    await hub.stop(timeout=1)
    assert [a.rule for a in heard] == ["host down"]
    assert "1m" in heard[0].message


async def test_hub_survives_a_broken_subscriber(tmp_path: Path) -> None:
    config = load_config_text(hub_config("unused", tmp_path))
    hub = AlertHub(config, None, clock=ManualClock())

    def broken(a: Alert) -> None:
        raise RuntimeError("UI gone")

    heard: list[Alert] = []
    hub.subscribe(broken)
    hub.subscribe(heard.append)
    listener: FleetListener = hub  # it is one
    assert listener is hub
    hub.log_lines("train", [LogLine(1, "Killed", 0.0)])
    assert [a.rule for a in heard] == ["run failed"]
    await hub.stop(timeout=5)
