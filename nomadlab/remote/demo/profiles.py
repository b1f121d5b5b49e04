"""The demo's hosts as described: GPU models, jobs and health events per host."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class GpuModel:
    name: str
    memory_mib: int
    power_limit_w: float
    idle_power_w: float
    idle_temp_c: float
    busy_temp_c: float


@dataclass(frozen=True, slots=True)
class JobTemplate:
    """One job on a host. Times are seconds relative to the simulation's epoch."""

    kind: str  # "train" | "eval" | "notebook" | "serve"
    user: str
    command: str
    gpus: tuple[int, ...]
    start: float  # negative: it was already running when the demo started
    end: float | None = None  # None: runs on
    memory_fraction: float = 0.85  # plateau, of the GPU's memory
    util: float = 95.5  # steady utilization of a training step
    power: float = 1.0  # how hard it pushes towards the power limit
    memory_bandwidth: float = 0.45  # NVML "memory" utilization per unit of GPU util
    cpu_cores_per_gpu: float = 6.0  # data loader workers and friends
    ram_gib_per_gpu: float = 24.0


@dataclass(frozen=True, slots=True)
class HostProfile:
    key: str  # the host name (suffixed when a fleet has more hosts than profiles)
    gpu: GpuModel
    driver: str
    hourly_cost: float
    cpus: int
    ram_gib: float
    python: str
    jobs: tuple[JobTemplate, ...]
    # (gpu, pid offset, user, command, MiB): display servers and the like
    graphics: tuple[tuple[int, int, str, str, float], ...] = ()
    hot_gpus: tuple[int, ...] = ()  # worse cooling: these run about 8 degrees warmer
    health: HostHealth | None = None  # what is wrong with its GPUs (the health column)


@dataclass(frozen=True, slots=True)
class HostHealth:
    """Health events of a demo host, so the fleet's health column has something to say."""

    thermal_slowdown: tuple[int, ...] = ()  # GPUs in HW thermal slowdown while busy
    pcie_degraded: tuple[int, ...] = ()  # GPUs whose link trained at Gen3 x8
    # (gpu, XID code, seconds after the demo's epoch: negative = before it started)
    xids: tuple[tuple[int, int, float], ...] = ()
    ecc_uncorrected: tuple[tuple[int, int], ...] = ()  # (gpu, volatile uncorrectable errors)
    remap_pending: tuple[int, ...] = ()


H100 = GpuModel("NVIDIA H100 80GB HBM3", 81559, 700.0, 71.0, 31.0, 68.0)
H200 = GpuModel("NVIDIA H200", 143771, 700.0, 76.0, 33.0, 66.0)
L40S = GpuModel("NVIDIA L40S", 46068, 350.0, 34.0, 30.0, 74.0)
RTX4090 = GpuModel("NVIDIA GeForce RTX 4090", 24564, 450.0, 21.0, 36.0, 76.0)

_MIN = 60.0
_HOUR = 3600.0

PROFILES: tuple[HostProfile, ...] = (
    HostProfile(
        key="lambda-h100", gpu=H100, driver="550.127.05", hourly_cost=23.92, cpus=208,
        ram_gib=1843.0, python="3.10.12",
        jobs=(
            JobTemplate("train", "maya", "python train.py --config configs/llama-7b.yaml",
                        gpus=(0, 1, 2, 3, 4, 5), start=-(3 * _HOUR + 12 * _MIN),
                        memory_fraction=0.91, util=96.0, power=1.02,
                        cpu_cores_per_gpu=10.0, ram_gib_per_gpu=48.0),
        ),
        # GPU 7 logged a double-bit ECC error (XID 48) and waits for a reset.
        health=HostHealth(xids=((7, 48, -18 * _MIN),), ecc_uncorrected=((7, 1),),
                          remap_pending=(7,)),
    ),
    HostProfile(
        key="runpod-h200", gpu=H200, driver="570.124.06", hourly_cost=31.92, cpus=192,
        ram_gib=2015.0, python="3.11.10",
        jobs=(
            JobTemplate("train", "root",
                        "python train.py --config configs/mixtral-8x7b.yaml "
                        "--resume runs/mixtral/last.ckpt",
                        gpus=(0, 1, 2, 3), start=-55 * _MIN, memory_fraction=0.86,
                        util=94.5, power=0.97, cpu_cores_per_gpu=8.0, ram_gib_per_gpu=64.0),
            JobTemplate("eval", "root",
                        "python eval.py --ckpt runs/mixtral/step-12000 --tasks mmlu,gsm8k",
                        gpus=(4,), start=-12 * _MIN, memory_fraction=0.62, util=80.0,
                        power=0.85, memory_bandwidth=0.55, ram_gib_per_gpu=40.0),
            JobTemplate("notebook", "root",
                        "python -m ipykernel_launcher -f "
                        "/root/.local/share/jupyter/runtime/kernel-7f3a.json",
                        gpus=(5,), start=-2 * _HOUR, memory_fraction=0.13, util=60.0,
                        power=0.7, memory_bandwidth=0.3, cpu_cores_per_gpu=1.0,
                        ram_gib_per_gpu=12.0),
        ),
        health=HostHealth(pcie_degraded=(4,)),  # a riser that trained at Gen3 x8
    ),
    HostProfile(
        # The job here finished a while ago: every GPU idle, an idle alert should fire.
        key="gcp-l40s", gpu=L40S, driver="550.90.07", hourly_cost=15.84, cpus=192,
        ram_gib=1510.0, python="3.10.12",
        jobs=(
            JobTemplate("train", "priya", "python train.py --config configs/vit-b16.yaml",
                        gpus=(0, 1, 2, 3, 4, 5, 6, 7), start=-(7 * _HOUR + 20 * _MIN),
                        end=-42 * _MIN, memory_fraction=0.8, util=93.0),
        ),
    ),
    HostProfile(
        key="home-4090", gpu=RTX4090, driver="560.35.03", hourly_cost=1.10, cpus=64,
        ram_gib=256.0, python="3.12.3",
        jobs=(
            JobTemplate("train", "alex",
                        "python train.py --config configs/sdxl-lora.yaml --batch-size 4",
                        gpus=(0, 1), start=-2 * _HOUR, memory_fraction=0.93, util=97.0,
                        power=1.0, cpu_cores_per_gpu=4.0, ram_gib_per_gpu=16.0),
            JobTemplate("serve", "alex",
                        "python -m vllm.entrypoints.openai.api_server "
                        "--model meta-llama/Meta-Llama-3-8B-Instruct "
                        "--gpu-memory-utilization 0.9",
                        gpus=(2,), start=-26 * _HOUR, memory_fraction=0.9, util=55.0,
                        power=0.9, memory_bandwidth=0.7, cpu_cores_per_gpu=2.0,
                        ram_gib_per_gpu=10.0),
            # Starts a little after the demo does: its memory ramp is on screen.
            JobTemplate("train", "sam", "python train.py --config configs/gpt2-small.yaml",
                        gpus=(3, 4), start=90.0, memory_fraction=0.74, util=92.0,
                        power=0.95, cpu_cores_per_gpu=4.0, ram_gib_per_gpu=8.0),
        ),
        graphics=((0, -5000, "root", "/usr/lib/xorg/Xorg vt1 -displayfd 3", 218.0),),
        hot_gpus=(1,),
        # The hot one: its clocks are held back by HW thermal slowdown under load.
        health=HostHealth(thermal_slowdown=(1,)),
    ),
)
