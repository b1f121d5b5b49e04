"""Parsing what Slurm prints: ``squeue --json`` of 21.08/22.05 and of 23.02 and newer,
the fallback ``squeue --format`` text, ``scontrol -o show job`` and ``sinfo --json``.

Every parser takes untrusted text and returns jobs or raises :class:`SlurmParseError`
with a one-line reason; a job entry it cannot read is skipped and counted, never fatal.
Names, comments and paths are cleaned of control characters here (they end up in
tables, alerts and JSON output).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from nomadlab.core.jobs.model import Job, PartitionGpus

# ``squeue`` fallback: a fixed format whose only free-text field, the job name, comes
# last, so a delimiter inside a name cannot shift the other fields. Times as epoch
# seconds come from SLURM_TIME_FORMAT=%s set by the caller.
FALLBACK_SEP = "|"
FALLBACK_FIELDS = ("%i", "%A", "%u", "%T", "%r", "%P", "%N", "%b", "%V", "%S", "%e", "%l",
                   "%j")
FALLBACK_FORMAT = FALLBACK_SEP.join(FALLBACK_FIELDS)

NAME_LIMIT = 200
PATH_LIMIT = 1000
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_GPU_COUNT = re.compile(r"gpu(?::[^:,()\s]+)?:(\d+)")
_GPU_TRES = re.compile(r"gres/gpu(?::[^=,]+)?=(\d+)")


class SlurmParseError(ValueError):
    """Output that is not what the command should print (one line, for the user)."""


@dataclass(slots=True)
class Parsed:
    jobs: list[Job] = field(default_factory=list)
    skipped: int = 0  # entries that could not be read
    version: str | None = None


def clean(text: object, limit: int = NAME_LIMIT) -> str:
    """Outside text as data: no control characters, bounded length."""
    value = text if isinstance(text, str) else ("" if text is None else str(text))
    return _CONTROLS.sub("?", value)[:limit]


# --------------------------------------------------------------------------- values


def _number(value: Any) -> float | None:
    """A plain number (22.05) or ``{"set", "infinite", "number"}`` (23.02+); None when
    unset or infinite."""
    if isinstance(value, dict):
        if not value.get("set", True) or value.get("infinite", False):
            return None
        value = value.get("number")
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _time(value: Any) -> float | None:
    number = _number(value)
    return number if number is not None and number > 0 else None


def _state(value: Any) -> tuple[str, list[str]]:
    """``"RUNNING"`` (22.05) or ``["RUNNING", "COMPLETING"]`` (23.02+): base state, flags."""
    if isinstance(value, list):
        words = [str(v) for v in value if isinstance(v, str)]
    elif isinstance(value, str):
        words = value.split("+")
    else:
        words = []
    if not words:
        return "UNKNOWN", []
    return clean(words[0].upper(), 40), [clean(w, 40) for w in words[1:]]


def gpus_of(*texts: object) -> int | None:
    """GPUs from GRES/TRES strings: ``gres:gpu:2``, ``gres/gpu:a100:4``, ``gpu:2(IDX:0-1)``,
    ``cpu=8,gres/gpu=4``. The first string that names GPUs wins."""
    for text in texts:
        if isinstance(text, list):
            found = [gpus_of(t) for t in text]
            counts = [n for n in found if n is not None]
            if counts:
                return sum(counts)
            continue
        if not isinstance(text, str) or "gpu" not in text:
            continue
        match = _GPU_TRES.search(text) or _GPU_COUNT.search(text)
        if match:
            return int(match.group(1))
    return None


def _exit_code(value: Any, raw_wait_status: bool) -> tuple[int | None, int | None]:
    """(exit code, signal). 22.05 gives the raw wait status (24832 for ``exit 97``);
    23.02+ give ``{"status", "return_code", "signal"}``."""
    if isinstance(value, dict):
        code = _number(value.get("return_code"))
        sig = value.get("signal")
        signal = _number(sig.get("id")) if isinstance(sig, dict) else None
        return (int(code) if code is not None else None,
                int(signal) if signal else None)
    number = _number(value)
    if number is None:
        return None, None
    status = int(number)
    if not raw_wait_status:
        return status, None
    if status & 0x7F:
        return None, status & 0x7F
    return (status >> 8) & 0xFF, None


def _default_output(cwd: str, job_id: int, array_id: int | None, task: int | None) -> str | None:
    if not cwd:
        return None
    name = f"slurm-{array_id}_{task}.out" if array_id and task is not None else (
        f"slurm-{job_id}.out")
    return cwd.rstrip("/") + "/" + name


def _path(value: Any) -> str | None:
    text = clean(value, PATH_LIMIT) if isinstance(value, str) else ""
    return text or None


_PATTERN = re.compile(r"%(%|[0-9]*[jAaxu])")


def expand_path(path: str | None, job_id: int, array_id: int | None, task: int | None, *,
                name: str, user: str) -> str | None:
    """Fill in sbatch's filename patterns (%j, %A, %a, %x, %u, %%)."""
    if path is None or "%" not in path:
        return path

    def one(match: re.Match[str]) -> str:
        spec = match.group(1)
        if spec == "%":
            return "%"
        width, letter = spec[:-1], spec[-1]
        value = {"j": str(job_id), "A": str(array_id or job_id),
                 "a": str(task) if task is not None else "4294967294",
                 "x": name, "u": user}[letter]
        return value.zfill(int(width)) if width and letter in "jAa" else value

    return _PATTERN.sub(one, path)


# --------------------------------------------------------------------------- squeue --json


def _json_job(raw: Mapping[str, Any], cluster: str, raw_wait_status: bool) -> Job:
    job_id = _number(raw.get("job_id"))
    if job_id is None:
        raise KeyError("job_id")
    jid = int(job_id)
    array_job = _number(raw.get("array_job_id"))
    array_task = _number(raw.get("array_task_id"))
    tasks = raw.get("array_task_string")
    array_id = int(array_job) if array_job else None
    if array_id and array_task is not None:
        ident = f"{array_id}_{int(array_task)}"
    elif array_id and isinstance(tasks, str) and tasks:
        ident = f"{array_id}_[{clean(tasks, 60)}]"
    else:
        ident = str(jid)
    got = raw.get("time")
    times: dict[str, Any] = got if isinstance(got, dict) else {}
    sacct_state = raw.get("state") if isinstance(raw.get("state"), dict) else None
    if sacct_state is not None:  # sacct --json: {"current": ..., "reason": ...}
        state, _flags = _state(sacct_state.get("current"))
        reason = sacct_state.get("reason")
    else:
        state, _flags = _state(raw.get("job_state"))
        reason = raw.get("state_reason")
    reason_text = clean(reason, 80) if isinstance(reason, str) and reason != "None" else None
    limit = _number(raw.get("time_limit", times.get("limit")))
    exit_code, signal = _exit_code(raw.get("exit_code"), raw_wait_status)
    cwd = clean(raw.get("current_working_directory"), PATH_LIMIT)
    stdout = _path(raw.get("standard_output")) or _default_output(
        cwd, jid, array_id, int(array_task) if array_task is not None else None)
    stderr = _path(raw.get("standard_error")) or stdout
    task_no = int(array_task) if array_task is not None else None
    name = clean(raw.get("name"))
    user = clean(raw.get("user_name") or raw.get("user") or raw.get("user_id") or "", 64)
    stdout = expand_path(stdout, jid, array_id, task_no, name=name, user=user)
    stderr = expand_path(stderr, jid, array_id, task_no, name=name, user=user)
    nodes = raw.get("nodes")
    if state in ("PENDING",):
        exit_code = None
    return Job(
        cluster=cluster, id=ident, job_id=jid,
        name=name,
        user=user,
        state=state,
        reason=reason_text,
        partition=clean(raw.get("partition"), 80) or None,
        nodes=clean(nodes, 200) if isinstance(nodes, str) and nodes else None,
        gpus=gpus_of(raw.get("tres_alloc_str"), raw.get("gres_detail"),
                     raw.get("tres_per_node"), raw.get("tres_per_job"),
                     raw.get("tres_req_str")),
        submit_time=_time(raw.get("submit_time", times.get("submission"))),
        start_time=_time(raw.get("start_time", times.get("start")))
        if state != "PENDING" else None,
        end_time=_time(raw.get("end_time", times.get("end"))),
        time_limit_s=limit * 60 if limit is not None and limit < 0xFFFFFFF0 else None,
        stdout=stdout,
        stderr=stderr,
        exit_code=exit_code,
        signal=signal,
        held=reason_text in ("JobHeldUser", "JobHeldAdmin"),
        array_job_id=array_id,
    )


def parse_squeue_json(text: str, cluster: str) -> Parsed:
    """``squeue --json`` (or ``sacct --json``-like job lists) of any JSON-speaking release."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        why = exc.msg if isinstance(exc, json.JSONDecodeError) else "too deep"
        raise SlurmParseError(f"squeue printed something that is not JSON ({why})") from None
    if not isinstance(data, dict) or not isinstance(data.get("jobs"), list):
        raise SlurmParseError("squeue's JSON has no job list")
    errors = data.get("errors")
    if isinstance(errors, list) and errors and not data["jobs"]:
        first = errors[0] if isinstance(errors[0], dict) else {}
        words = first.get("description") or first.get("error") or "an error"
        raise SlurmParseError(f"squeue failed: {clean(words, 200)}")
    got = data.get("meta")
    meta: dict[str, Any] = got if isinstance(got, dict) else {}
    version = _version(meta)
    major = _major(version)
    # 21.08 and 22.05 put the raw wait status in exit_code (see the module doc).
    raw_wait = major is not None and major < 23
    out = Parsed(version=version)
    for entry in data["jobs"]:
        if not isinstance(entry, dict):
            out.skipped += 1
            continue
        try:
            out.jobs.append(_json_job(entry, cluster, raw_wait))
        except (KeyError, TypeError, ValueError):
            out.skipped += 1
    return out


def _version(meta: Mapping[str, Any]) -> str | None:
    slurm = meta.get("Slurm") or meta.get("slurm")
    if isinstance(slurm, dict):
        release = slurm.get("release")
        if isinstance(release, str):
            return clean(release, 40)
        version = slurm.get("version")
        if isinstance(version, dict):
            return f"{version.get('major')}.{version.get('minor')}.{version.get('micro')}"
    return None


def _major(version: str | None) -> int | None:
    if not version:
        return None
    head = version.split(".")[0]
    return int(head) if head.isdigit() else None


# --------------------------------------------------------------------------- fallback text


def parse_duration_text(text: str) -> float | None:
    """Slurm's ``[D-]HH:MM:SS`` / ``MM:SS`` / ``UNLIMITED``; None when not a duration."""
    text = text.strip()
    if not text or text.upper() in ("UNLIMITED", "INVALID", "NOT_SET", "N/A", "INFINITE"):
        return None
    days = 0
    if "-" in text:
        head, text = text.split("-", 1)
        if not head.isdigit():
            return None
        days = int(head)
    parts = text.split(":")
    if not all(p.isdigit() for p in parts) or not 1 <= len(parts) <= 3:
        return None
    values = [int(p) for p in parts]
    while len(values) < 3:
        values.insert(0, 0)
    if len(parts) == 1:  # plain minutes
        return float(days * 86400 + int(parts[0]) * 60)
    hours, minutes, seconds = values
    return float(days * 86400 + hours * 3600 + minutes * 60 + seconds)


def _epoch(text: str) -> float | None:
    text = text.strip()
    return float(text) if text.isdigit() and int(text) > 0 else None


def parse_squeue_text(text: str, cluster: str) -> Parsed:
    """Lines of ``squeue --noheader --format=FALLBACK_FORMAT`` with SLURM_TIME_FORMAT=%s."""
    out = Parsed()
    width = len(FALLBACK_FIELDS)
    for line in text.splitlines():
        if not line.strip():
            continue
        parts = line.split(FALLBACK_SEP, width - 1)
        if len(parts) != width:
            out.skipped += 1
            continue
        ident, job_id, user, state, reason, part, nodes, gres, submit, start, end, limit, name = (
            p.strip() if i < width - 1 else p for i, p in enumerate(parts))
        if not job_id.isdigit():
            out.skipped += 1
            continue
        array_id = None
        if "_" in ident:
            head = ident.split("_", 1)[0]
            array_id = int(head) if head.isdigit() else None
        base, _ = _state(state)
        out.jobs.append(Job(
            cluster=cluster, id=clean(ident, 60), job_id=int(job_id), name=clean(name),
            user=clean(user, 64), state=base,
            reason=clean(reason, 80) if reason and reason != "None" else None,
            partition=clean(part, 80) or None,
            nodes=clean(nodes, 200) if nodes and nodes != "(null)" else None,
            gpus=gpus_of(gres),
            submit_time=_epoch(submit),
            start_time=_epoch(start) if base != "PENDING" else None,
            end_time=_epoch(end),
            time_limit_s=parse_duration_text(limit),
            held=reason in ("JobHeldUser", "JobHeldAdmin"),
            array_job_id=array_id,
        ))
    return out


# --------------------------------------------------------------------------- scontrol


_SCONTROL_KEY = re.compile(r"(?:^|\s)([A-Za-z][A-Za-z/:_]*)=")


def parse_scontrol_fields(line: str) -> dict[str, str]:
    """One ``scontrol -o show job`` line as key -> value.

    Values may hold spaces (names, commands, paths): a value runs until the next
    `` Key=`` of a known-looking key. A name that itself looks like `` Key=`` can only
    shift its own value, the keys read here come before JobName or are Slurm's own.
    """
    fields: dict[str, str] = {}
    matches = list(_SCONTROL_KEY.finditer(line))
    for i, match in enumerate(matches):
        end = matches[i + 1].start() if i + 1 < len(matches) else len(line)
        key = match.group(1)
        if key not in fields:
            fields[key] = line[match.end():end].strip()
    return fields


def _scontrol_time(text: str | None) -> float | None:
    if not text:
        return None
    if text.isdigit():
        return float(text) if int(text) > 0 else None
    import datetime as _dt

    try:
        when = _dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return None
    return when.replace(tzinfo=_dt.UTC).timestamp()


def parse_scontrol_job(text: str, cluster: str) -> list[Job]:
    """``scontrol -o show job [ID]`` (run with TZ=UTC): one job per line."""
    jobs = []
    for line in text.splitlines():
        if not line.startswith("JobId="):
            continue
        f = parse_scontrol_fields(line)
        job_id = f.get("JobId", "")
        if not job_id.isdigit():
            continue
        array_id = f.get("ArrayJobId")
        task = f.get("ArrayTaskId")
        ident = f"{array_id}_{task}" if array_id and array_id.isdigit() and task else job_id
        state, _ = _state(f.get("JobState", ""))
        code_text = f.get("ExitCode", "")
        code: int | None = None
        signal: int | None = None
        if ":" in code_text:
            a, b = code_text.split(":", 1)
            code = int(a) if a.isdigit() else None
            signal = int(b) if b.isdigit() and int(b) else None
        uid = f.get("UserId", "")
        reason = f.get("Reason")
        jobs.append(Job(
            cluster=cluster, id=ident, job_id=int(job_id), name=clean(f.get("JobName", "")),
            user=clean(uid.split("(", 1)[0], 64), state=state,
            reason=clean(reason, 80) if reason and reason != "None" else None,
            partition=clean(f.get("Partition", ""), 80) or None,
            nodes=(clean(f.get("NodeList", ""), 200) or None)
            if f.get("NodeList") not in (None, "(null)") else None,
            gpus=gpus_of(f.get("TRES", ""), f.get("TresPerNode", ""), f.get("TresPerJob", "")),
            submit_time=_scontrol_time(f.get("SubmitTime")),
            start_time=_scontrol_time(f.get("StartTime")) if state != "PENDING" else None,
            end_time=_scontrol_time(f.get("EndTime")),
            time_limit_s=parse_duration_text(f.get("TimeLimit", "")),
            stdout=_path(f.get("StdOut")),
            stderr=_path(f.get("StdErr")),
            exit_code=code if state != "PENDING" else None,
            signal=signal,
            held=reason in ("JobHeldUser", "JobHeldAdmin"),
            array_job_id=int(array_id) if array_id and array_id.isdigit() else None,
        ))
    return jobs


# --------------------------------------------------------------------------- sinfo


def _gpu_total(text: object) -> int:
    return gpus_of(text) or 0


def parse_sinfo_json(text: str) -> list[PartitionGpus]:
    """GPUs per partition from ``sinfo --json``: a ``nodes`` list (22.05, 23.02) or an
    ``sinfo`` list of partition/node groups (23.11+)."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError):
        raise SlurmParseError("sinfo printed something that is not JSON") from None
    if not isinstance(data, dict):
        raise SlurmParseError("sinfo's JSON is not an object")
    totals: dict[str, list[int]] = {}
    if isinstance(data.get("nodes"), list):
        for node in data["nodes"]:
            if not isinstance(node, dict):
                continue
            total = _gpu_total(node.get("gres"))
            used = _gpu_total(node.get("gres_used"))
            parts = node.get("partitions")
            for part in parts if isinstance(parts, list) else []:
                acc = totals.setdefault(clean(part, 80), [0, 0])
                acc[0] += total
                acc[1] += min(used, total)
    elif isinstance(data.get("sinfo"), list):
        for group in data["sinfo"]:
            if not isinstance(group, dict):
                continue
            part = group.get("partition")
            name = part.get("name") if isinstance(part, dict) else None
            gres = group.get("gres")
            if not isinstance(name, str) or not isinstance(gres, dict):
                continue
            nodes = group.get("nodes")
            count = _number(nodes.get("total")) if isinstance(nodes, dict) else None
            per_node = _gpu_total(gres.get("total"))
            acc = totals.setdefault(clean(name, 80), [0, 0])
            acc[0] += per_node * int(count or 1)
            acc[1] += _gpu_total(gres.get("used"))
    else:
        raise SlurmParseError("sinfo's JSON has neither nodes nor sinfo")
    return [PartitionGpus(name, max(0, t - u), u, t) for name, (t, u) in sorted(totals.items())]


def mine(jobs: Iterable[Job], user: str | None, partitions: Iterable[str] = ()) -> list[Job]:
    """Filter on our side (22.05's ``squeue --json`` ignores ``-u``/``-p``)."""
    wanted = set(partitions)
    out = []
    for job in jobs:
        if user is not None and job.user != user:
            continue
        if wanted and not (set((job.partition or "").split(",")) & wanted):
            continue
        out.append(job)
    return out
