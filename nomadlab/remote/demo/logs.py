"""Training logs for ``nomadlab demo``: written into the demo's temp dir, tailed for real.

Each simulated host gets a ``train.log`` that grows like a real run's (steps, loss,
throughput, the odd warning). One run finished before the demo started, one fails
a couple of minutes in with a CUDA out-of-memory traceback, so the alerts have
something to say. The demo's SSH server runs the real tail agent as a local
process on these files (see DemoFleet), so the whole log path is the real one.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

from nomadlab.core.clock import Clock
from nomadlab.core.tasks import BackgroundTask

STEP_EVERY = 0.5  # seconds of demo time between step lines of a running job
FAIL_AFTER = 150.0  # the failing run dies this long into the demo


@dataclass(slots=True)
class RunLog:
    host: str
    path: Path
    kind: str  # "train" (runs on), "finished" (done before the demo), "fails" (dies soon)
    rng: random.Random
    step: int = 0
    epoch: int = 1
    ended: bool = False
    started: float = 0.0
    lines: list[str] = field(default_factory=list)

    def stamp(self, t: float) -> str:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))

    def step_line(self, t: float) -> str:
        self.step += 1
        if self.step % 2000 == 0:
            self.epoch += 1
        loss = 2.9 * math.exp(-self.step / 6000) + 0.9 + self.rng.uniform(-0.04, 0.04)
        tokens = self.rng.uniform(41_000, 47_000)
        return (f"[{self.stamp(t)}] epoch {self.epoch} | step {self.step:>6} | "
                f"loss {loss:.4f} | lr 3.0e-04 | {tokens / 1000:.1f}k tok/s")

    def history(self, t: float, steps: int) -> list[str]:
        out = [f"[{self.stamp(t - steps * STEP_EVERY - 5)}] \x1b[1mstarting run\x1b[0m "
               f"on {self.host}: world_size=8, bf16, grad_accum=4"]
        for i in range(steps):
            out.append(self.step_line(t - (steps - i) * STEP_EVERY))
        return out

    def next_lines(self, t: float) -> list[str]:
        if self.ended or self.kind == "finished":
            return []
        lines = [self.step_line(t)]
        if self.rng.random() < 0.03:
            lines.append(f"[{self.stamp(t)}] \x1b[33mWARNING\x1b[0m grad norm "
                         f"{self.rng.uniform(8, 30):.1f} clipped to 1.0")
        if self.step % 400 == 0:
            lines.append(f"[{self.stamp(t)}] eval | val_loss "
                         f"{2.2 * math.exp(-self.step / 7000) + 1.0:.4f} | saved checkpoint")
        if self.kind == "fails" and t - self.started > FAIL_AFTER:
            self.ended = True
            lines += [
                "Traceback (most recent call last):",
                '  File "/home/alex/sdxl-lora/train.py", line 412, in <module>',
                "    loss.backward()",
                "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.50 GiB. "
                "GPU 0 has a total capacity of 23.99 GiB of which 1.12 GiB is free.",
            ]
        return lines


class DemoLogs:
    """Writes one growing train.log per simulated host under ``base``."""

    def __init__(self, base: Path, hosts: list[str], clock: Clock, seed: int = 0) -> None:
        self.base = base
        self.clock = clock
        self.runs: list[RunLog] = []
        for index, host in enumerate(hosts):
            kind = "train"
            if host.startswith("gcp-l40s"):
                kind = "finished"
            elif host.startswith("home-4090"):
                kind = "fails"
            path = base / host / "train.log"
            self.runs.append(RunLog(host, path, kind, random.Random(f"{seed}:{index}")))
        self._task = BackgroundTask("demo logs")

    def paths(self) -> dict[str, Path]:
        return {run.host: run.path for run in self.runs}

    def prepare(self) -> None:
        now = self.clock.time()
        for run in self.runs:
            run.path.parent.mkdir(parents=True, exist_ok=True)
            run.started = now
            lines = run.history(now, 300)
            if run.kind == "finished":
                lines += [f"[{run.stamp(now - 2500)}] eval | val_loss 1.0412 | saved checkpoint",
                          f"[{run.stamp(now - 2500)}] Training complete: best val_loss=1.0412 "
                          "(epoch 3); checkpoints in runs/clip-ft/"]
            run.path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    async def run(self) -> None:
        while True:
            await asyncio.sleep(STEP_EVERY / 2)
            now = self.clock.time()
            for run in self.runs:
                lines = run.next_lines(now)
                if lines:
                    with run.path.open("a", encoding="utf-8") as f:
                        f.write("\n".join(lines) + "\n")

    def start(self) -> None:
        self.prepare()
        self._task.start(self.run)

    async def stop(self) -> None:
        await self._task.stop()
