"""The Prometheus answer parsed one result element at a time gives what json.loads gives."""

from __future__ import annotations

import json

import pytest

from nomadlab.remote.prometheus import STEP_FROM, loads_in_steps


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
