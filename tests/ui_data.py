"""A fixed fleet for UI tests and snapshots: same data, same clock, every run.

Values follow the real captures in tests/data/nvidia-smi (H100 80GB HBM3 under
gpu-burn: 100 %, 19798 MiB of 81559, 63 C, 631 W of 700 W; H200 143771 MiB; L40S
46068 MiB, 350 W). Statuses cover every state the fleet screen must show.
"""

from __future__ import annotations

import math
from pathlib import Path

from nomadlab.core.clock import ManualClock
from nomadlab.core.config import Config, HostConfig, load_config_text
from nomadlab.core.model import (
    AgentInfo,
    GpuProcess,
    GpuSample,
    GpuSource,
    HostKeyInfo,
    HostSample,
    HostState,
    HostStatus,
)
from nomadlab.core.store import Store
from nomadlab.remote.fleet import Fleet

START = 1_795_000_000.0  # 2026-11-18 (UTC); tests set TZ=UTC

HOSTILE = "[bold]x[/] \x1b]0;pwned\x07 [@click=app.quit]q[/]"


def _gpus(model: str, total: float, limit: float, t: float, busy: list[int],
          hot: int | None = None) -> list[GpuSample]:
    gpus = []
    for i in range(8):
        if i in busy:
            util = 92 + 7 * math.sin(t / 30 + i)
            used = total * 0.72
            temp = 66 + 4 * math.sin(t / 60 + i)
            power = limit * 0.88
            command = f"python train.py --config llama-7b.yaml --rank {i}"
            procs = [GpuProcess(4100 + i, "alice", command, used - 600)]
        else:
            util, used, temp, power, procs = 0.0, 4.0, 34.0, limit * 0.1, []
        if hot == i:
            temp = 91.0
        gpus.append(GpuSample(i, model, f"GPU-{i:08d}-0000-0000-0000-000000000000", round(util),
                              round(used), total, round(temp), round(power), limit, procs))
    return gpus


def config(tmp: Path) -> Config:
    cfg = load_config_text(f'data_dir = "{tmp / "data"}"\nshow_local = false\n')
    cfg.hosts = [
        HostConfig("lambda-h100", "203.0.113.7", user="ubuntu", hourly_cost=23.92),
        HostConfig("runpod-h200", "203.0.113.8", hourly_cost=31.92),
        HostConfig("gcp-l40s", "203.0.113.9", hourly_cost=7.3),
        HostConfig("home-4090", "192.0.2.10"),
        HostConfig("new-box", "192.0.2.11"),
    ]
    return cfg


def feed(fleet: Fleet, clock: ManualClock) -> None:
    """Five minutes of samples, then the current statuses."""
    now = clock.time()
    for step in range(0, 300, 2):
        t = now - 300 + step
        h100 = _gpus("NVIDIA H100 80GB HBM3", 81559, 700, t, [0, 1, 2, 3, 4, 5])
        fleet.publish_sample(HostSample("lambda-h100", t, 34.0, 120_000, 491_520, 12.3, h100,
                                        received=t))
        fleet.publish_sample(HostSample("runpod-h200", t, 61.0, 400_000, 1_966_080, 30.1,
                                        _gpus("NVIDIA H200", 143771, 700, t, list(range(8)), hot=5),
                                        received=t))
        if step < 200:  # went quiet 100 s ago
            fleet.publish_sample(HostSample("gcp-l40s", t, 5.0, 20_000, 184_320, 0.4,
                                            _gpus("NVIDIA L40S", 46068, 350, t, []), received=t))
    sample = HostSample("home-4090", now, 3.0, 9_000, 64_000, 0.2,
                        _gpus("NVIDIA GeForce RTX 4090", 24564, 450, now, [0]), received=now)
    sample.gpus = sample.gpus[:1]
    sample.gpus[0].processes = [GpuProcess(666, "bob", HOSTILE, 1000)]
    fleet.publish_sample(sample)
    info = AgentInfo("gpu-node", 1, "3.10.12", GpuSource.NVML, "590.48.01", 8)
    fleet.publish_status(HostStatus("lambda-h100", HostState.LIVE, now - 3600, info=info,
                                    last_sample=now - 2))
    fleet.publish_status(HostStatus("runpod-h200", HostState.LIVE, now - 7200, info=info,
                                    last_sample=now - 2))
    fleet.publish_status(HostStatus("gcp-l40s", HostState.RECONNECTING, now - 40,
                                    error="connection lost: server not responding to keepalive",
                                    retry_at=now + 12, last_sample=now - 100))
    fleet.publish_status(HostStatus("home-4090", HostState.LIVE, now - 60, info=info,
                                    last_sample=now))
    key = HostKeyInfo("192.0.2.11", 22, "ssh-ed25519",
                      "SHA256:17CLhIIWPBe2c1tQheVe6xcpLePj1PmcpwZBKJ2fC6E",
                      str(Path("~/.ssh/known_hosts")), "192.0.2.11 ssh-ed25519 AAAA", False)
    fleet.publish_status(HostStatus("new-box", HostState.HOSTKEY_UNKNOWN, now - 5,
                                    error="unknown host key ssh-ed25519 SHA256:17CLhIIWPBe2c",
                                    hostkey=key))


def build(tmp: Path):  # type: ignore[no-untyped-def]
    """(app, fleet, clock): an app over the fixed fleet; nothing connects anywhere."""
    from nomadlab.cli.tui import build_app

    clock = ManualClock(START)
    cfg = config(tmp)
    store = Store(cfg.database)
    fleet = Fleet(cfg, store=store, clock=clock)
    feed(fleet, clock)
    app = build_app(cfg, clock=clock, start_fleet=False, store=store, fleet=fleet)
    return app, fleet, clock


async def open_fleet_screen(pilot) -> None:  # type: ignore[no-untyped-def]
    """Press 1 and wait (bounded) until the processes pane shows the selected host, as
    a user sees the fleet screen once it has settled (the pane fills a frame after the
    table's rows are laid out)."""
    from nomadlab.ui.fleet.processes import ProcessTable

    await pilot.press("1")
    for _ in range(100):
        tables = pilot.app.screen.query(ProcessTable)
        if tables and "·" in str(tables.first().border_title or ""):
            return
        await pilot.pause()
    raise AssertionError("the processes pane never showed the selected host")
