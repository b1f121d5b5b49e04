"""The workspace's fleet pane with a big fleet: what one update of the pane costs.

N hosts x 8 GPUs (default 1,000) from a Prometheus source's model (no network: the
series are made here), published into a real ``Fleet``; the real app on the
workspace (headless, 160x48). Then rounds of: every host gets a new sample (as one
refresh of the source publishes them), the pane updates, a frame is painted.

Figures: the pane's update (``refresh_rows``) p50/max in ms, rows it holds, and a
keypress in the pane (cursor down) to its handling.

Run: ``python benchmarks/fleet_pane_scale.py [--hosts 1000] [--rounds 10]``
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class S:
    labels: dict[str, str]
    value: float | None


def series(hosts: int, rng: random.Random) -> list[S]:
    out = []
    for h in range(hosts):
        host = f"gpu-{h:04d}"
        for g in range(8):
            labels = {"Hostname": host, "instance": f"{host}:9400", "gpu": str(g),
                      "UUID": f"GPU-{host}-{g}", "modelName": "NVIDIA H100 80GB HBM3"}
            used = rng.uniform(0, 80000)
            for name, value in (("DCGM_FI_DEV_GPU_UTIL", rng.choice([0.0, 35.0, 97.0])),
                                ("DCGM_FI_DEV_FB_USED", used),
                                ("DCGM_FI_DEV_FB_FREE", 81559 - used),
                                ("DCGM_FI_DEV_GPU_TEMP", rng.uniform(30, 85)),
                                ("DCGM_FI_DEV_POWER_USAGE", rng.uniform(60, 690))):
                out.append(S({**labels, "__name__": name}, value))
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    from nomadlab.cli.tui import build_app
    from nomadlab.core.clock import ManualClock
    from nomadlab.core.config import SourceConfig, load_config_text
    from nomadlab.core.promfleet import PromFleet
    from nomadlab.core.store import Store
    from nomadlab.remote.fleet import Fleet
    from nomadlab.ui.fleet.pane import FleetPane

    work = Path(tempfile.mkdtemp(prefix="nomadlab-pane-bench-"))
    config = load_config_text(f'show_local = false\ndata_dir = "{work}"\n')
    config.sources = [SourceConfig(name="lab", kind="prometheus", url="http://127.0.0.1:9")]
    clock = ManualClock(time.time())
    store = Store(config.database)
    fleet = Fleet(config, store=store, clock=clock)
    model = PromFleet("lab")
    rng = random.Random(0)

    def publish() -> None:
        clock.advance(5.0)
        result = model.update(clock.time(), series(args.hosts, rng))
        for status in result.statuses.values():
            fleet.publish_status(status)
        for sample in result.samples.values():
            fleet.publish_sample(sample)

    publish()
    app = build_app(config, clock=clock, start_fleet=False, store=store, fleet=fleet)
    costs: list[float] = []
    keys: list[float] = []
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        pane = app.screen.query_one(FleetPane)
        original = pane.refresh_rows

        def timed() -> None:
            t0 = time.perf_counter()
            original()
            costs.append(time.perf_counter() - t0)

        pane.refresh_rows = timed  # type: ignore[method-assign]
        pane.focus()
        await pilot.pause()
        for _ in range(args.rounds):
            publish()
            await pilot.pause(0.2)  # the pane's coalescing timer, then a frame
            t0 = time.perf_counter()
            await pilot.press("down")
            keys.append(time.perf_counter() - t0)
        rows = pane.row_count
    return {"hosts": args.hosts, "rows": rows,
            "refresh_ms": (1000 * statistics.median(costs), 1000 * max(costs), len(costs)),
            "key_ms": (1000 * statistics.median(keys), 1000 * max(keys))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    f = asyncio.run(run(args))
    p50, worst, n = f["refresh_ms"]
    print(f"{f['hosts']} hosts x 8 GPUs; the pane holds {f['rows']} rows")
    print(f"  pane update (refresh_rows) p50 {p50:.1f} ms, max {worst:.1f} ms (n={n})")
    print(f"  key (down) in the pane, pressed to handled: p50 {f['key_ms'][0]:.1f} ms, "
          f"max {f['key_ms'][1]:.1f} ms")


if __name__ == "__main__":
    main()
