"""The ``gpu_health`` alert kind: what in a GPU's health is worth telling someone.

Pure and clock-free: the engine (``nomadlab.core.alerts``) passes ``now`` from its
injected clock. Said once per problem episode, per GPU: a new XID event (each one),
uncorrectable ECC errors (again whenever the count rises), a row remap pending or
failed, page retirement pending; a HW slowdown (thermal, power brake, other) or a PCIe
link below its maximum under load once it has lasted the rule's ``duration`` (``for``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nomadlab.core.durations import compact
from nomadlab.core.health import (
    FAIL,
    HW_REASONS,
    THROTTLE_NAMES,
    WARN,
    pcie_downgraded,
)
from nomadlab.core.model import GpuSample, HostSample
from nomadlab.core.xid import xid_info


@dataclass(slots=True, frozen=True)
class Finding:
    """One thing to say about one GPU."""

    gpu: int
    problem: str  # "xid", "ecc", "remap_pending", "remap_failure", "hw_slowdown", "pcie", ...
    level: str  # FAIL or WARN
    text: str  # "XID 79: fell off the bus"
    advice: str = ""  # what to do, one sentence (may be empty)


@dataclass(slots=True)
class _GpuTrack:
    since: dict[str, float] = field(default_factory=dict)  # duration problems -> first seen
    fired: set[str] = field(default_factory=set)  # problems said in the episode that holds
    xids: set[tuple[int, float]] = field(default_factory=set)
    ecc: int = 0  # uncorrectable count last said


def _gpu_key(gpu: GpuSample) -> str:
    return gpu.uuid or f"#{gpu.index}"


class HealthWatch:
    """Per (rule, host, GPU) episodes of health problems."""

    def __init__(self) -> None:
        # (rule, host) -> GPU -> track: a sample touches only its own host's tracks
        # (a scan of every track per sample cost seconds a refresh at 8,000 GPUs)
        self._tracks: dict[tuple[str, str], dict[str, _GpuTrack]] = {}

    def forget_host(self, host: str) -> None:
        """The host is not live: durations start over when it is back."""
        for (_rule, name), tracks in self._tracks.items():
            if name == host:
                for track in tracks.values():
                    track.since.clear()

    def check(self, rule: str, duration: float, sample: HostSample, now: float) -> list[Finding]:
        out: list[Finding] = []
        present: set[str] = set()
        tracks = self._tracks.setdefault((rule, sample.host), {})
        for gpu in sample.gpus:
            if gpu.health is None:
                continue
            key = _gpu_key(gpu)
            present.add(key)
            track = tracks.get(key)
            if track is None:
                track = tracks[key] = _GpuTrack()
            out.extend(self._gpu(track, gpu, duration, now))
        for gone in [k for k in tracks if k not in present]:
            del tracks[gone]
        return out

    def _gpu(self, track: _GpuTrack, gpu: GpuSample, duration: float,
             now: float) -> list[Finding]:
        h = gpu.health
        assert h is not None
        out: list[Finding] = []
        for event in h.xid or []:
            mark = (event.code, event.time)
            if mark in track.xids:
                continue
            track.xids.add(mark)
            info = xid_info(event.code)
            out.append(Finding(gpu.index, "xid", FAIL if info.severity == FAIL else WARN,
                               f"XID {event.code}: {info.meaning}", info.action))
        unc = h.ecc_volatile_uncorrected or 0
        if unc > track.ecc:
            noun = "error" if unc == 1 else "errors"
            out.append(Finding(gpu.index, "ecc", FAIL, f"{unc} uncorrectable ECC {noun}",
                               "Reset the GPU; replace it if they come back."))
        track.ecc = unc
        now_holding: dict[str, Finding] = {}
        if h.remap_failure:
            now_holding["remap_failure"] = Finding(
                gpu.index, "remap_failure", FAIL, "row remap failed",
                "The memory cannot be repaired: replace the GPU.")
        if h.remap_pending:
            now_holding["remap_pending"] = Finding(
                gpu.index, "remap_pending", FAIL, "row remap pending: reset needed",
                "Reset the GPU (or reboot) when its jobs allow.")
        if h.retired_pending:
            now_holding["retired_pending"] = Finding(
                gpu.index, "retired_pending", FAIL, "page retirement pending: reset needed",
                "Reset the GPU (or reboot) when its jobs allow.")
        for problem, finding in now_holding.items():
            if problem not in track.fired:
                track.fired.add(problem)
                out.append(finding)
        slow = [THROTTLE_NAMES[bit] for bit in HW_REASONS if (h.throttle_mask or 0) & bit]
        timed: dict[str, Finding] = {}
        if slow:
            timed["hw_slowdown"] = Finding(
                gpu.index, "hw_slowdown", WARN, " and ".join(slow),
                "Check cooling, airflow and the power supply.")
        if pcie_downgraded(gpu):
            timed["pcie"] = Finding(
                gpu.index, "pcie", WARN,
                f"PCIe Gen{h.pcie_gen} x{h.pcie_width} of Gen{h.pcie_max_gen} "
                f"x{h.pcie_max_width} under load",
                "Reseat the card or check the slot and riser.")
        for problem, finding in timed.items():
            since = track.since.setdefault(problem, now)
            held = now - since
            if held >= duration and problem not in track.fired:
                track.fired.add(problem)
                out.append(Finding(finding.gpu, finding.problem, finding.level,
                                   f"{finding.text} for {compact(held)}", finding.advice))
        for problem in list(track.fired):
            if problem not in now_holding and problem not in timed:
                track.fired.discard(problem)
        for problem in list(track.since):
            if problem not in timed:
                del track.since[problem]
        return out
