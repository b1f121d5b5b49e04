"""An XID raised on a host mid-run (stand-in NVML behind a real sshd) becomes a stored
``GPU health`` alert through the fleet and the alert hub, as in the TUI."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import config_for, host_for, nvml_env, wait_for
from standins.nvml import write_gpu_file
from test_cli import trusted

from nomadlab.core.alert_store import AlertLog
from nomadlab.core.alerts import Alert
from nomadlab.core.clock import ManualClock
from nomadlab.core.store import Store
from nomadlab.notify.hub import AlertHub
from nomadlab.remote.fleet import Fleet

pytestmark = pytest.mark.sshd

GPU = {"name": "NVIDIA H100 80GB HBM3", "uuid": "GPU-0", "util": 100, "mem_total_mib": 81559}


async def test_xid_mid_run_is_an_alert(make_sshd, fake_nvml_dir: Path,  # type: ignore[no-untyped-def]
                                       tmp_path: Path) -> None:
    conf = tmp_path / "gpu.conf"
    write_gpu_file(conf, [GPU])
    server = trusted(make_sshd(nvml_env(fake_nvml_dir, conf)))
    config = config_for(host_for(server), tmp=tmp_path, interval=0.3)
    config.notify.toast = config.notify.bell = False
    config.notify.desktop = config.notify.notify_send = False
    store = Store(config.database)
    clock = ManualClock()
    hub = AlertHub(config, store, clock=clock)
    heard: list[Alert] = []
    hub.subscribe(heard.append)
    fleet = Fleet(config, store=store)
    fleet.listeners.append(hub)
    await fleet.start()
    try:
        await wait_for(lambda: "gpu1" in fleet.latest, what="a first sample")
        assert heard == []
        write_gpu_file(conf, [GPU], xids=[{"gpu": 0, "code": 79}])
        await wait_for(lambda: heard, what="the GPU health alert")
    finally:
        await fleet.stop()
    [alert] = heard
    assert alert.rule == "GPU health" and alert.severity == "error"
    assert alert.message.startswith("GPU 0 on gpu1: XID 79: fell off the bus.")
    assert [a.title for a in AlertLog(store).recent()] == ["GPU health: gpu1 GPU 0"]
