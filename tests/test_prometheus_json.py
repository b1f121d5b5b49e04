"""Prometheus answers parsed one result element at a time, or read without json,
give what json.loads gives."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from nomadlab.remote.prometheus import (
    STEP_FROM,
    PrometheusClient,
    PrometheusError,
    loads_in_steps,
    split_vector,
)


def _answer(n: int, **extra: object) -> dict[str, object]:
    result = [{"metric": {"__name__": "DCGM_FI_DEV_GPU_UTIL", "Hostname": f"gpu-{i:04d}",
                          "gpu": str(i % 8), "odd": '},{"metric":[\\ ]'},
               "value": [1765092000.123, str(i)]} for i in range(n)]
    return {"status": "success",
            "data": {"resultType": "vector", "result": result,
                     "stats": {"timings": {"execTotalTime": 0.5}}}, **extra}


@pytest.mark.parametrize("doc", [
    _answer(5000),  # large: parsed in steps
    _answer(5000, warnings=["a ] b"]),
    _answer(3),  # small: one json.loads
    {"status": "success", "data": {"resultType": "vector", "result": []},
     "pad": "x" * STEP_FROM},
    {"status": "error", "errorType": "bad_data", "error": "x", "pad": "x" * STEP_FROM},
])
def test_same_as_json_loads(doc: dict[str, object]) -> None:
    compact = json.dumps(doc, separators=(",", ":")).encode()
    assert loads_in_steps(compact) == doc
    spaced = json.dumps(doc, indent=1).encode()  # not Prometheus' layout: json.loads
    assert loads_in_steps(spaced) == doc


def test_a_cut_answer_is_an_error() -> None:
    body = json.dumps(_answer(5000), separators=(",", ":")).encode()
    for cut in (body[:-3], body[: len(body) // 2]):
        with pytest.raises(ValueError):
            loads_in_steps(cut)


def _vector(metrics: list[dict[str, str]], values: list[str]) -> bytes:
    result = [{"metric": m, "value": [1765092000.5 + i, v]}
              for i, (m, v) in enumerate(zip(metrics, values, strict=True))]
    doc = {"status": "success", "data": {"resultType": "vector", "result": result,
                                         "stats": {"timings": {"execTotalTime": 0.25}}}}
    return json.dumps(doc, separators=(",", ":")).encode()


def _json_series(body: bytes) -> list[tuple[dict[str, str], float, float | None]]:
    out = []
    for item in json.loads(body)["data"]["result"]:
        value = float(item["value"][1])
        out.append((item["metric"], float(item["value"][0]),
                    None if math.isnan(value) or math.isinf(value) else value))
    return out


def test_vector_read_without_json_gives_what_json_gives() -> None:
    metrics = [{"Hostname": f"gpu-{i:04d}", "gpu": str(i % 8)} for i in range(2000)]
    metrics += [{}, {"instance": "[::1]:9400", "gpu": "0", "x": "a:b,c=d {}"[:5]}]
    values = [str(i * 0.5) for i in range(2000)] + ["NaN", "+Inf"]
    body = _vector(metrics, values)
    split = split_vector(body.decode())
    assert split is not None
    series, rest = split
    assert [(dict(s.labels), s.time, s.value) for s in series] == _json_series(body)
    assert json.loads(rest)["data"] == {"resultType": "vector", "result": [],
                                        "stats": {"timings": {"execTotalTime": 0.25}}}
    empty = _vector([], [])
    assert split_vector(empty.decode()) == ([], empty.decode())


@pytest.fixture
def answers() -> Iterator[tuple[str, dict[str, bytes]]]:
    """A loopback HTTP server answering /api/v1/query with the body set for the test."""
    bodies: dict[str, bytes] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = bodies["query"]
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", bodies
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("label", ['say "hi"', "back\\slash", "brace }", "é", "plain"])
def test_a_query_reads_every_label_as_json_would(
        label: str, answers: tuple[str, dict[str, bytes]]) -> None:
    """Labels that JSON escapes (or that the pattern keeps out) send the whole answer to
    json: the series the client returns are the same either way, stats counted once."""
    url, bodies = answers
    body = _vector([{"Hostname": "a", "gpu": "0"}, {"Hostname": label, "gpu": "1"}],
                   ["1", "NaN"])
    assert (split_vector(body.decode()) is None) == (label != "plain")
    bodies["query"] = body
    client = PrometheusClient(url)
    series = client.query_blocking("up")
    assert [(dict(s.labels), s.time, s.value) for s in series] == _json_series(body)
    assert series[1].labels["Hostname"] == label
    assert (client.stats.queries, client.stats.server_seconds) == (1, 0.25)
    bodies["query"] = body[:-40]  # cut after the result: the rest is not JSON
    with pytest.raises(PrometheusError, match="did not answer with Prometheus JSON"):
        client.query_blocking("up")


def test_not_prometheus_layout_is_left_to_json() -> None:
    body = _vector([{"Hostname": "a", "gpu": "0"}], ["1"]).decode()
    assert split_vector(body.replace('"value":[', '"value": [')) is None
    assert split_vector(body.replace('"success"', '"error"')) is None
    assert split_vector(body[:90]) is None  # cut inside the result
    assert split_vector(json.dumps(json.loads(body), indent=1)) is None
