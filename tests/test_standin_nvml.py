"""The stand-in NVML library (tests/standins/fake_nvml.c) driven through the real pynvml.

Each check runs in a subprocess: the dynamic loader reads LD_LIBRARY_PATH only at
process start, and pynvml loads ``libnvidia-ml.so.1`` through it.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
import textwrap
from typing import Any

import pytest

HERE = pathlib.Path(__file__).resolve().parent
STANDIN_PY = HERE / "standins" / "nvml.py"
H100X8 = HERE / "data" / "nvml" / "h100x8.conf"
MIB = 1024 * 1024


try:  # tests/ on sys.path (no tests/__init__.py) ...
    from standins import nvml as standin
except ImportError:  # ... or the repository root (tests/ is a package)
    from tests.standins import nvml as standin

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="gcc is needed")

PRELUDE = f"""
import ctypes, importlib.util, json, sys
import pynvml
_spec = importlib.util.spec_from_file_location("standin", {str(STANDIN_PY)!r})
standin = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(standin)
out = {{}}
def err(fn, *args):
    try:
        fn(*args)
    except pynvml.NVMLError as e:
        return type(e).__name__
    return None
"""


@pytest.fixture
def lib_dir(fake_nvml_dir: pathlib.Path) -> pathlib.Path:
    """The run's build of fake_nvml.c (conftest: compiled once, by standin.build_fake_nvml)."""
    return fake_nvml_dir


def run_nvml(
    lib_dir: pathlib.Path,
    code: str,
    data: pathlib.Path | None,
    *,
    fake_time: float | None = None,
) -> dict[str, Any]:
    """Run ``code`` (which fills the dict ``out``) against the stand-in; return ``out``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOMADLAB_FAKE_NVML")}
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        p for p in (str(lib_dir), os.environ.get("LD_LIBRARY_PATH", "")) if p
    )
    if data is not None:
        env["NOMADLAB_FAKE_NVML"] = str(data)
    if fake_time is not None:
        env["NOMADLAB_FAKE_NVML_TIME"] = repr(fake_time)
    script = PRELUDE + textwrap.dedent(code) + "\nprint(json.dumps(out))\n"
    proc = subprocess.run(
        [sys.executable, "-c", script],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_build_produces_library(lib_dir: pathlib.Path) -> None:
    assert (lib_dir / "libnvidia-ml.so.1").is_file()


def test_h100x8_conf_through_pynvml(lib_dir: pathlib.Path) -> None:
    out = run_nvml(
        lib_dir,
        """
        pynvml.nvmlInit()
        out["driver"] = pynvml.nvmlSystemGetDriverVersion()
        out["nvml"] = pynvml.nvmlSystemGetNVMLVersion()
        out["cuda"] = pynvml.nvmlSystemGetCudaDriverVersion()
        out["cuda_v2"] = pynvml.nvmlSystemGetCudaDriverVersion_v2()
        out["count"] = pynvml.nvmlDeviceGetCount()
        gpus = []
        for i in range(out["count"]):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h)
            mem2 = pynvml.nvmlDeviceGetMemoryInfo(h, version=pynvml.nvmlMemory_v2)
            util = pynvml.nvmlDeviceGetUtilizationRates(h)
            procs = pynvml.nvmlDeviceGetComputeRunningProcesses(h)
            gpus.append({
                "index": pynvml.nvmlDeviceGetIndex(h),
                "name": pynvml.nvmlDeviceGetName(h),
                "uuid": pynvml.nvmlDeviceGetUUID(h),
                "mem": [mem.total, mem.free, mem.used],
                "mem2": [mem2.total, mem2.reserved, mem2.free, mem2.used],
                "util": [util.gpu, util.memory],
                "temp": pynvml.nvmlDeviceGetTemperature(h, pynvml.NVML_TEMPERATURE_GPU),
                "power": pynvml.nvmlDeviceGetPowerUsage(h),
                "limit": pynvml.nvmlDeviceGetEnforcedPowerLimit(h),
                "mgmt_limit": pynvml.nvmlDeviceGetPowerManagementLimit(h),
                "procs": [[p.pid, p.usedGpuMemory] for p in procs],
                "procs_v2": [
                    [p.pid, p.usedGpuMemory]
                    for p in pynvml.nvmlDeviceGetComputeRunningProcesses_v2(h)
                ],
                "graphics": len(pynvml.nvmlDeviceGetGraphicsRunningProcesses(h)),
                "mps": len(pynvml.nvmlDeviceGetMPSComputeRunningProcesses(h)),
                "bus_id": pynvml.nvmlDeviceGetPciInfo(h).busId,
                "fan": pynvml.nvmlDeviceGetFanSpeed(h),
                "pstate": pynvml.nvmlDeviceGetPerformanceState(h),
            })
        out["gpus"] = gpus
        h0 = pynvml.nvmlDeviceGetHandleByIndex(0)
        h3 = pynvml.nvmlDeviceGetHandleByUUID("GPU-00000000-0000-0000-0000-000000000003")
        out["by_uuid"] = pynvml.nvmlDeviceGetIndex(h3)
        out["by_uuid_missing"] = err(pynvml.nvmlDeviceGetHandleByUUID, "GPU-nope")
        out["by_bus"] = pynvml.nvmlDeviceGetIndex(
            pynvml.nvmlDeviceGetHandleByPciBusId("00000000:00:0B.0"))
        pci = pynvml.nvmlDeviceGetPciInfo_v3(h0)
        out["pci"] = [pci.busIdLegacy, pci.domain, pci.bus, pci.device, pci.pciDeviceId]
        out["temp_v"] = pynvml.nvmlDeviceGetTemperatureV(h0, pynvml.NVML_TEMPERATURE_GPU)
        out["persistence"] = pynvml.nvmlDeviceGetPersistenceMode(h0)
        out["display"] = [pynvml.nvmlDeviceGetDisplayActive(h0),
                          pynvml.nvmlDeviceGetDisplayMode(h0)]
        out["compute_mode"] = pynvml.nvmlDeviceGetComputeMode(h0)
        out["mig"] = err(pynvml.nvmlDeviceGetMigMode, h0)
        out["ecc"] = err(pynvml.nvmlDeviceGetTotalEccErrors, h0, 0, 0)
        out["cc"] = list(pynvml.nvmlDeviceGetCudaComputeCapability(h0))
        out["arch"] = pynvml.nvmlDeviceGetArchitecture(h0)
        out["brand"] = pynvml.nvmlDeviceGetBrand(h0)
        out["minor"] = pynvml.nvmlDeviceGetMinorNumber(h3)
        out["clocks"] = [pynvml.nvmlDeviceGetClockInfo(h0, pynvml.NVML_CLOCK_SM),
                         pynvml.nvmlDeviceGetMaxClockInfo(h0, pynvml.NVML_CLOCK_SM),
                         pynvml.nvmlDeviceGetClockInfo(h0, pynvml.NVML_CLOCK_MEM),
                         pynvml.nvmlDeviceGetMaxClockInfo(h0, pynvml.NVML_CLOCK_MEM)]
        out["enc"] = pynvml.nvmlDeviceGetEncoderUtilization(h0)
        out["dec"] = pynvml.nvmlDeviceGetDecoderUtilization(h0)
        bar1 = pynvml.nvmlDeviceGetBAR1MemoryInfo(h0)
        out["bar1"] = [bar1.bar1Total, bar1.bar1Free + bar1.bar1Used]
        out["pcie"] = [
            pynvml.nvmlDeviceGetPcieThroughput(h0, pynvml.NVML_PCIE_UTIL_TX_BYTES),
            pynvml.nvmlDeviceGetCurrPcieLinkGeneration(h0),
            pynvml.nvmlDeviceGetCurrPcieLinkWidth(h0),
            pynvml.nvmlDeviceGetMaxPcieLinkGeneration(h0),
            pynvml.nvmlDeviceGetMaxPcieLinkWidth(h0),
        ]
        out["thresholds"] = [
            pynvml.nvmlDeviceGetTemperatureThreshold(
                h0, pynvml.NVML_TEMPERATURE_THRESHOLD_SHUTDOWN),
            pynvml.nvmlDeviceGetTemperatureThreshold(
                h0, pynvml.NVML_TEMPERATURE_THRESHOLD_SLOWDOWN),
        ]
        out["proc_name"] = pynvml.nvmlSystemGetProcessName(11345)
        out["not_exported"] = err(pynvml.nvmlDeviceGetSerial, h0)
        out["bad_sensor"] = err(pynvml.nvmlDeviceGetTemperature, h0, 7)
        pynvml.nvmlShutdown()
        """,
        H100X8,
    )
    assert out["driver"] == "590.48.01"
    assert out["nvml"] == "13.590.48.01"
    assert out["cuda"] == out["cuda_v2"] == 13010
    assert out["count"] == 8
    gpus = out["gpus"]
    for i, gpu in enumerate(gpus):
        assert gpu["index"] == i
        assert gpu["name"] == "NVIDIA H100 80GB HBM3"
        assert gpu["uuid"] == f"GPU-00000000-0000-0000-0000-{i:012d}"
        assert gpu["limit"] == gpu["mgmt_limit"] == 700000
        assert gpu["graphics"] == gpu["mps"] == 0
        assert gpu["bus_id"] == f"00000000:00:{9 + i:02X}.0"
        assert gpu["fan"] == 0
        assert gpu["pstate"] == 0
        assert gpu["procs_v2"] == gpu["procs"]
    g0 = gpus[0]
    total = 81559 * MIB
    used = 19798 * MIB
    assert g0["mem"] == [total, total - used, used]
    assert g0["mem2"] == [total, 0, total - used, used]
    assert g0["util"] == [100, 10]
    assert g0["temp"] == 63
    assert g0["power"] == 631000
    assert g0["procs"] == [[11345, 15690 * MIB], [11327, 2566 * MIB], [11328, 1542 * MIB]]
    assert sum(mem for _, mem in g0["procs"]) == used
    assert gpus[1]["procs"] == [[11346, 19798 * MIB]]
    for idle in gpus[4:]:
        assert idle["mem"] == [total, total, 0]
        assert idle["util"] == [0, 0]
        assert idle["temp"] == 41
        assert idle["power"] == 69000
        assert idle["procs"] == []
    assert out["by_uuid"] == 3
    assert out["by_uuid_missing"] == "NVMLError_NotFound"
    assert out["by_bus"] == 2
    assert out["pci"] == ["0000:00:09.0", 0, 0, 9, 0x233010DE]
    assert out["temp_v"] == 63
    assert out["persistence"] == 1
    assert out["display"] == [0, 0]
    assert out["compute_mode"] == 0
    assert out["mig"] is None  # MIG supported, off (an H100 without MIG)
    assert out["ecc"] is None  # ECC on, no errors
    assert out["cc"] == [9, 0]
    assert out["arch"] == 9
    assert out["brand"] == 14
    assert out["minor"] == 3
    sm, max_sm, mem_clock, max_mem = out["clocks"]
    assert 0 < sm <= max_sm and 0 < mem_clock <= max_mem
    assert out["enc"] == out["dec"] == [0, 1000000]
    assert out["bar1"][0] == out["bar1"][1] > 0
    assert out["pcie"] == [0, 5, 16, 5, 16]
    assert out["thresholds"] == [92, 89]
    assert out["proc_name"] == "./gpu_burn"
    assert out["not_exported"] == "NVMLError_FunctionNotFound"
    assert out["bad_sensor"] == "NVMLError_InvalidArgument"


def test_null_pointers_bad_handles_and_uninitialized(lib_dir: pathlib.Path) -> None:
    out = run_nvml(
        lib_dir,
        """
        pynvml.nvmlInit()
        lib = pynvml.nvmlLib
        c_uint = ctypes.c_uint
        h = pynvml.nvmlDeviceGetHandleByIndex(0)
        buf = ctypes.create_string_buffer(96)
        bogus = ctypes.cast(ctypes.c_void_p(ctypes.addressof(buf)), pynvml.c_nvmlDevice_t)
        out["null_count"] = lib.nvmlDeviceGetCount_v2(None)
        out["null_handle_out"] = lib.nvmlDeviceGetHandleByIndex_v2(c_uint(0), None)
        out["index_out_of_range"] = err(pynvml.nvmlDeviceGetHandleByIndex, 8)
        out["null_device"] = lib.nvmlDeviceGetName(None, buf, c_uint(96))
        out["bogus_device"] = lib.nvmlDeviceGetName(bogus, buf, c_uint(96))
        out["null_buf"] = lib.nvmlDeviceGetName(h, None, c_uint(96))
        out["short_buf"] = lib.nvmlDeviceGetName(h, buf, c_uint(4))
        out["null_util"] = lib.nvmlDeviceGetUtilizationRates(h, None)
        out["null_mem"] = lib.nvmlDeviceGetMemoryInfo(h, None)
        out["null_temp"] = lib.nvmlDeviceGetTemperature(h, c_uint(0), None)
        out["null_driver"] = lib.nvmlSystemGetDriverVersion(None, c_uint(80))
        out["null_mig"] = lib.nvmlDeviceGetMigMode(h, None, None)
        bad = pynvml.c_nvmlMemory_v2_t()
        bad.version = 1
        out["mem_v2_version"] = lib.nvmlDeviceGetMemoryInfo_v2(h, ctypes.byref(bad))

        # two-call protocol on GPU 0 (3 processes)
        count = c_uint(0)
        out["first"] = [lib.nvmlDeviceGetComputeRunningProcesses_v3(
            h, ctypes.byref(count), None), count.value]
        small = (pynvml.c_nvmlProcessInfo_v3_t * 1)()
        count = c_uint(1)
        out["small"] = [lib.nvmlDeviceGetComputeRunningProcesses_v3(
            h, ctypes.byref(count), small), count.value]
        exact = (pynvml.c_nvmlProcessInfo_v3_t * 3)()
        count = c_uint(3)
        out["exact"] = [lib.nvmlDeviceGetComputeRunningProcesses_v3(
            h, ctypes.byref(count), exact), count.value,
            [exact[i].pid for i in range(3)], exact[0].gpuInstanceId]
        out["null_count_ptr"] = lib.nvmlDeviceGetComputeRunningProcesses_v3(h, None, None)

        # legacy (unsuffixed) symbol uses the 16-byte v1 struct
        class V1(ctypes.Structure):
            _fields_ = [("pid", ctypes.c_uint), ("usedGpuMemory", ctypes.c_ulonglong)]
        v1 = (V1 * 3)()
        count = c_uint(3)
        rc = lib.nvmlDeviceGetComputeRunningProcesses(h, ctypes.byref(count), v1)
        out["v1"] = [rc, [[v1[i].pid, v1[i].usedGpuMemory] for i in range(3)]]

        # idle GPU: SUCCESS with count 0
        h5 = pynvml.nvmlDeviceGetHandleByIndex(5)
        count = c_uint(0)
        out["idle_first"] = [lib.nvmlDeviceGetComputeRunningProcesses_v3(
            h5, ctypes.byref(count), None), count.value]

        pynvml.nvmlShutdown()
        out["after_shutdown"] = [
            lib.nvmlDeviceGetCount_v2(ctypes.byref(c_uint())),
            lib.nvmlDeviceGetName(h, buf, c_uint(96)),
            err(pynvml.nvmlDeviceGetCount),
            err(pynvml.nvmlShutdown),
        ]
        # init is reference counted
        pynvml.nvmlInit()
        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
        out["after_one_of_two"] = pynvml.nvmlDeviceGetCount()
        out["error_string"] = pynvml.nvmlErrorString(9)
        """,
        H100X8,
    )
    invalid, insufficient, uninitialized = 2, 7, 1
    for key in (
        "null_count",
        "null_handle_out",
        "null_device",
        "bogus_device",
        "null_buf",
        "null_util",
        "null_mem",
        "null_temp",
        "null_driver",
        "null_mig",
        "null_count_ptr",
    ):
        assert out[key] == invalid, key
    assert out["index_out_of_range"] == "NVMLError_InvalidArgument"
    assert out["short_buf"] == insufficient
    assert out["mem_v2_version"] == 25  # NVML_ERROR_ARGUMENT_VERSION_MISMATCH
    assert out["first"] == [insufficient, 3]
    assert out["small"] == [insufficient, 3]
    assert out["exact"] == [0, 3, [11345, 11327, 11328], 0xFFFFFFFF]
    assert out["v1"] == [0, [[11345, 15690 * MIB], [11327, 2566 * MIB], [11328, 1542 * MIB]]]
    assert out["idle_first"] == [0, 0]
    assert out["after_shutdown"] == [
        uninitialized,
        uninitialized,
        "NVMLError_Uninitialized",
        "NVMLError_Uninitialized",
    ]
    assert out["after_one_of_two"] == 8
    assert out["error_string"] == "Driver Not Loaded"


@pytest.mark.parametrize(
    ("code", "error"),
    [
        (999, "NVMLError_Unknown"),
        (9, "NVMLError_DriverNotLoaded"),
        (18, "NVMLError_LibRmVersionMismatch"),
    ],
)
def test_fail_init(lib_dir: pathlib.Path, tmp_path: pathlib.Path, code: int, error: str) -> None:
    data = tmp_path / "gpus.conf"
    standin.write_gpu_file(data, [{"util": 5}], fail_init=code)
    out = run_nvml(lib_dir, 'out["init"] = err(pynvml.nvmlInit)', data)
    assert out["init"] == error


def test_missing_data_file_means_driver_not_loaded(
    lib_dir: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    code = """
    out["init"] = err(pynvml.nvmlInit)
    out["count"] = err(pynvml.nvmlDeviceGetCount)
    """
    assert run_nvml(lib_dir, code, None) == {
        "init": "NVMLError_DriverNotLoaded",
        "count": "NVMLError_Uninitialized",
    }
    missing = run_nvml(lib_dir, code, tmp_path / "does-not-exist.conf")
    assert missing["init"] == "NVMLError_DriverNotLoaded"


def test_no_gpus_and_defaults(lib_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    empty = tmp_path / "empty.conf"
    standin.write_gpu_file(empty, [])
    out = run_nvml(lib_dir, 'pynvml.nvmlInit(); out["n"] = pynvml.nvmlDeviceGetCount()', empty)
    assert out == {"n": 0}
    defaults = tmp_path / "defaults.conf"
    standin.write_gpu_file(defaults, [{}, {"name": "NVIDIA A100-SXM4-80GB", "fan": "na"}])
    out = run_nvml(
        lib_dir,
        """
        pynvml.nvmlInit()
        h1 = pynvml.nvmlDeviceGetHandleByIndex(1)
        out["uuid1"] = pynvml.nvmlDeviceGetUUID(h1)
        out["name1"] = pynvml.nvmlDeviceGetName(h1)
        out["fan1"] = err(pynvml.nvmlDeviceGetFanSpeed, h1)
        out["name0"] = pynvml.nvmlDeviceGetName(pynvml.nvmlDeviceGetHandleByIndex(0))
        """,
        defaults,
    )
    assert out == {
        "uuid1": "GPU-00000000-0000-0000-0000-000000000001",
        "name1": "NVIDIA A100-SXM4-80GB",
        "fan1": "NVMLError_NotSupported",
        "name0": "NVIDIA H100 80GB HBM3",
    }


def test_per_gpu_fail_code(lib_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    data = tmp_path / "lost.conf"
    standin.write_gpu_file(data, [{"util": 50}, {"util": 60, "fail": 15}])
    out = run_nvml(
        lib_dir,
        """
        pynvml.nvmlInit()
        out["count"] = pynvml.nvmlDeviceGetCount()
        out["ok"] = pynvml.nvmlDeviceGetUtilizationRates(
            pynvml.nvmlDeviceGetHandleByIndex(0)).gpu
        out["lost"] = err(pynvml.nvmlDeviceGetUtilizationRates,
                          pynvml.nvmlDeviceGetHandleByIndex(1))
        """,
        data,
    )
    assert out == {"count": 2, "ok": 50, "lost": "NVMLError_GpuIsLost"}


WAVE_GPUS = [
    {"util": 100, "memutil": 40, "temp": 70, "power_mw": 600000},
    {"util": 0, "memutil": 0, "temp": 41, "power_mw": 69000},
]

READ_LIVE = """
pynvml.nvmlInit()
rows = []
for i in range(pynvml.nvmlDeviceGetCount()):
    h = pynvml.nvmlDeviceGetHandleByIndex(i)
    u = pynvml.nvmlDeviceGetUtilizationRates(h)
    rows.append({
        "util": u.gpu,
        "memutil": u.memory,
        "temp": pynvml.nvmlDeviceGetTemperature(h, 0),
        "power_mw": pynvml.nvmlDeviceGetPowerUsage(h),
    })
out["rows"] = rows
"""


def test_wave_moves_with_time(lib_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    data = tmp_path / "wave.conf"
    standin.write_gpu_file(data, WAVE_GPUS, wave=True)
    # f = 0.75 + 0.25*sin(2*pi*t/13 + index): GPU 0 has f = 0.75 at t=0, f = 1 at t=3.25.
    seen = {}
    for t in (0.0, 3.25, 1234.5):
        rows = run_nvml(lib_dir, READ_LIVE, data, fake_time=t)["rows"]
        for index, (row, gpu) in enumerate(zip(rows, WAVE_GPUS, strict=True)):
            expected = standin.wave_values(gpu, index, t)
            for key, value in expected.items():
                assert abs(row[key] - value) <= 1, (t, index, key, row, expected)
        seen[t] = rows
    assert seen[0.0][0]["util"] == 75
    assert seen[3.25][0] == {"util": 100, "memutil": 40, "temp": 70, "power_mw": 600000}
    assert seen[0.0][0]["power_mw"] < seen[3.25][0]["power_mw"]
    assert seen[0.0][0]["temp"] < seen[3.25][0]["temp"]
    # idle GPUs do not move
    assert seen[0.0][1] == seen[3.25][1] == {"util": 0, "memutil": 0, "temp": 41, "power_mw": 69000}


def test_without_wave_time_does_not_matter(lib_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    data = tmp_path / "flat.conf"
    standin.write_gpu_file(data, WAVE_GPUS, wave=False)
    a = run_nvml(lib_dir, READ_LIVE, data, fake_time=0.0)["rows"]
    b = run_nvml(lib_dir, READ_LIVE, data, fake_time=3.25)["rows"]
    assert a == b
    assert a[0] == {"util": 100, "memutil": 40, "temp": 70, "power_mw": 600000}


def test_file_is_reread_when_it_changes(lib_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    data = tmp_path / "live.conf"
    standin.write_gpu_file(data, [{"util": 37}])
    out = run_nvml(
        lib_dir,
        f"""
        path = {str(data)!r}
        pynvml.nvmlInit()
        h = pynvml.nvmlDeviceGetHandleByIndex(0)
        util = lambda: pynvml.nvmlDeviceGetUtilizationRates(h).gpu
        out["first"] = util()
        # atomic rewrite (new inode): noticed without re-initialising
        standin.write_gpu_file(path, [{{"util": 88}}, {{"util": 1}}])
        out["replaced"] = util()
        out["count"] = pynvml.nvmlDeviceGetCount()
        # in-place rewrite of the same size, maybe within the same mtime tick:
        # re-initialising always re-reads
        text = open(path).read()
        with open(path, "r+") as fh:
            fh.write(text.replace("util=88", "util=11"))
        pynvml.nvmlShutdown()
        pynvml.nvmlInit()
        out["reinit"] = util()
        """,
        data,
    )
    assert out["first"] == 37
    assert out["replaced"] == 88
    assert out["count"] == 2
    assert out["reinit"] == 11


def test_stale_handle_after_gpu_removed(lib_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    data = tmp_path / "shrink.conf"
    standin.write_gpu_file(data, [{"util": 1}, {"util": 2}])
    out = run_nvml(
        lib_dir,
        f"""
        pynvml.nvmlInit()
        h1 = pynvml.nvmlDeviceGetHandleByIndex(1)
        out["before"] = pynvml.nvmlDeviceGetUtilizationRates(h1).gpu
        standin.write_gpu_file({str(data)!r}, [{{"util": 1}}])
        out["after"] = err(pynvml.nvmlDeviceGetUtilizationRates, h1)
        """,
        data,
    )
    assert out == {"before": 2, "after": "NVMLError_InvalidArgument"}


def test_concurrent_calls_while_file_changes(lib_dir: pathlib.Path, tmp_path: pathlib.Path) -> None:
    data = tmp_path / "threads.conf"
    standin.write_gpu_file(data, [{"util": 10}] * 4)
    out = run_nvml(
        lib_dir,
        f"""
        import threading
        pynvml.nvmlInit()
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(4)]
        bad = []
        def worker():
            for _ in range(300):
                for h in handles:
                    u = pynvml.nvmlDeviceGetUtilizationRates(h).gpu
                    if u not in (10, 20):
                        bad.append(u)
        threads = [threading.Thread(target=worker) for _ in range(6)]
        for t in threads:
            t.start()
        for n in range(50):
            standin.write_gpu_file({str(data)!r}, [{{"util": 20 if n % 2 else 10}}] * 4)
        for t in threads:
            t.join()
        out["bad"] = bad
        """,
        data,
    )
    assert out["bad"] == []
