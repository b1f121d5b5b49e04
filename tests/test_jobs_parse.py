"""Parsing recorded Slurm outputs: 22.05 and 23.11 JSON, the fallback format, garbage."""

from __future__ import annotations

from pathlib import Path

import pytest

from nomadlab.core.jobs.parse import (
    SlurmParseError,
    gpus_of,
    mine,
    parse_duration_text,
    parse_scontrol_job,
    parse_sinfo_json,
    parse_squeue_json,
    parse_squeue_text,
)
from nomadlab.core.jobs.reasons import reason_words

DATA = Path(__file__).resolve().parent / "data" / "slurm"


def read(name: str) -> str:
    return (DATA / name).read_text()


def test_squeue_22_05_recorded() -> None:
    parsed = parse_squeue_json(read("squeue-22.05.json"), "tiny")
    assert parsed.version == "22.05.8" and parsed.skipped == 0
    jobs = {j.id: j for j in parsed.jobs}
    assert set(jobs) == {"1", "2", "3_[0-2]"}
    run, pend, arr = jobs["1"], jobs["2"], jobs["3_[0-2]"]
    assert (run.state, run.gpus, run.nodes, run.time_limit_s) == ("RUNNING", 2, "vm", 600)
    assert run.start_time is not None and run.user == "root"
    assert run.stdout is not None and run.stdout.endswith("/shared/slurm-1.out")
    assert (pend.state, pend.reason, pend.gpus, pend.start_time) == (
        "PENDING", "Resources", 1, None)
    assert pend.time_limit_s is None  # unlimited
    assert arr.held and arr.reason == "JobHeldUser" and arr.array_job_id == 3


def test_squeue_22_05_exit_code_is_a_wait_status() -> None:
    text = read("squeue-22.05.json").replace('"exit_code": 0,', '"exit_code": 24832,', 1)
    text = text.replace('"job_state": "RUNNING"', '"job_state": "FAILED"', 1)
    job = parse_squeue_json(text, "tiny").jobs[0]
    assert job.exit_code == 97
    signalled = text.replace('"exit_code": 24832,', '"exit_code": 9,', 1)
    job = parse_squeue_json(signalled, "tiny").jobs[0]
    assert (job.exit_code, job.signal) == (None, 9)


def test_squeue_23_11_shapes_and_hostile_names() -> None:
    parsed = parse_squeue_json(read("squeue-23.11.json"), "della")
    assert parsed.version == "23.11.4"
    jobs = {j.id: j for j in parsed.jobs}
    llama = jobs["4242001"]
    assert llama.state == "RUNNING" and llama.gpus == 4 and llama.time_limit_s == 86400
    assert "\x1b" not in llama.name and "\x07" not in llama.name
    assert llama.name.startswith("llama-ft [bold]x")  # kept as text, not markup
    assert llama.stdout == "/home/alice/runs/llama-4242001.out"  # %j filled in
    sweep = jobs["4242002_[0-7%2]"]
    assert sweep.reason == "QOSMaxGRESPerUser" and sweep.gpus == 2
    assert "GPU limit" in reason_words(sweep.reason)
    assert jobs["4242002_3"].state == "RUNNING" and jobs["4242002_3"].job_id == 4242010
    failed = jobs["4241990"]
    assert (failed.state, failed.exit_code, failed.time_limit_s) == ("FAILED", 3, None)
    assert failed.stderr == "/home/alice/runs/eval.err"
    oom = jobs["4241991"]
    assert (oom.state, oom.signal, oom.gpus) == ("OUT_OF_MEMORY", 9, None)
    assert jobs["4241999"].held
    assert [j.id for j in mine(parsed.jobs, "bob")] == ["4241800"]
    assert len(mine(parsed.jobs, "alice", ["cpu"])) == 0


def test_sinfo_both_generations() -> None:
    (gpu,) = parse_sinfo_json(read("sinfo-22.05.json"))
    assert (gpu.name, gpu.gpus_total, gpu.gpus_alloc, gpu.gpus_idle) == ("gpu", 2, 2, 0)
    parts = {p.name: p for p in parse_sinfo_json(read("sinfo-23.11.json"))}
    assert (parts["gpu"].gpus_total, parts["gpu"].gpus_alloc, parts["gpu"].gpus_idle) == (8, 6, 2)
    assert parts["cpu"].gpus_total == 0


def test_fallback_format() -> None:
    parsed = parse_squeue_text(read("squeue-format.txt"), "old")
    assert parsed.skipped == 2  # the garbage line and the non-numeric id
    jobs = {j.id: j for j in parsed.jobs}
    run = jobs["777"]
    assert run.name == "name|with|pipes"  # the name is last: pipes in it shift nothing
    assert (run.gpus, run.nodes, run.time_limit_s, run.start_time) == (
        4, "node[1-2]", 86400, 1765000100)
    arr = jobs["778_3"]
    assert (arr.state, arr.reason, arr.array_job_id, arr.nodes, arr.gpus) == (
        "PENDING", "Priority", 778, None, 1)
    assert arr.time_limit_s is None
    assert jobs["779"].time_limit_s == 1800 and jobs["779"].gpus is None


@pytest.mark.parametrize("text", ["", "not json", "[]", '{"jobs": 3}', '{"meta": {}}',
                                  '{"jobs": [' + "[" * 100000 + "]}"])
def test_garbage_is_one_clear_error(text: str) -> None:
    with pytest.raises(SlurmParseError) as info:
        parse_squeue_json(text, "x")
    assert "\n" not in str(info.value)


def test_partial_output_skips_bad_entries() -> None:
    parsed = parse_squeue_json('{"jobs": [{"job_id": 5, "job_state": "RUNNING", '
                               '"name": "ok"}, {"name": "no id"}, 7]}', "x")
    assert [j.id for j in parsed.jobs] == ["5"] and parsed.skipped == 2
    truncated = read("squeue-22.05.json")[:5000]
    with pytest.raises(SlurmParseError):
        parse_squeue_json(truncated, "x")


def test_controller_errors_in_json() -> None:
    text = ('{"errors": [{"description": "Failed while looking for jobs", "error_number": -1}],'
            ' "jobs": []}')
    with pytest.raises(SlurmParseError, match="Failed while looking for jobs"):
        parse_squeue_json(text, "x")


def test_scontrol_show_job_line() -> None:
    line = ("JobId=12 ArrayJobId=10 ArrayTaskId=2 JobName=my job name=odd UserId=alice(1000) "
            "JobState=TIMEOUT Reason=TimeLimit ExitCode=0:15 RunTime=00:10:00 "
            "TimeLimit=00:10:00 SubmitTime=2026-12-07T06:00:00 StartTime=2026-12-07T06:01:00 "
            "EndTime=2026-12-07T06:11:00 Partition=gpu NodeList=vm "
            "TRES=cpu=1,node=1,billing=1 TresPerNode=gres:gpu:1 StdOut=/tmp/a b.out "
            "StdErr=/tmp/a b.err")
    (job,) = parse_scontrol_job(line + "\n\n", "c")
    assert (job.id, job.state, job.signal, job.user) == ("10_2", "TIMEOUT", 15, "alice")
    assert job.time_limit_s == 600 and job.gpus == 1
    assert job.stdout == "/tmp/a b.out" and job.stderr == "/tmp/a b.err"
    assert job.end_time is not None and job.start_time is not None
    assert job.end_time - job.start_time == 600


def test_small_pieces() -> None:
    assert parse_duration_text("2-01:00:00") == 2 * 86400 + 3600
    assert parse_duration_text("05:30") == 330
    assert parse_duration_text("45") == 2700
    assert parse_duration_text("UNLIMITED") is None
    assert parse_duration_text("x:y") is None
    assert gpus_of("cpu=4,gres/gpu:h100=8") == 8
    assert gpus_of(["gpu:2(IDX:0-1)", "gpu:1(IDX:0)"]) == 3
    assert gpus_of("N/A", "") is None
    assert reason_words("Priority") == "Priority (waiting behind higher-priority jobs)"
    assert reason_words("SomethingNew") == "SomethingNew"
    assert reason_words(None) == ""


def test_sacct_json_final_states() -> None:
    """``sacct --json`` (accounting on): state and times live in sub-objects."""
    text = """{"meta": {"slurm": {"release": "23.11.4"}}, "errors": [], "jobs": [
      {"job_id": 77, "name": "train", "user": "alice", "partition": "gpu",
       "nodes": "della-l01g3", "array": {"job_id": 0, "task_id": {"set": false}},
       "state": {"current": ["TIMEOUT"], "reason": "None"},
       "exit_code": {"status": ["SIGNALED"], "return_code": {"set": true, "number": 0},
                     "signal": {"id": {"set": true, "number": 15}, "name": "TERM"}},
       "time": {"submission": 1765000000, "start": 1765000010, "end": 1765003610,
                "limit": {"set": true, "infinite": false, "number": 60}},
       "tres": {"allocated": [{"type": "gres", "name": "gpu", "count": 4}]}}]}"""
    (job,) = parse_squeue_json(text, "della").jobs
    assert (job.state, job.user, job.signal, job.time_limit_s) == ("TIMEOUT", "alice", 15, 3600)
    assert job.elapsed_s(0) == 3600
