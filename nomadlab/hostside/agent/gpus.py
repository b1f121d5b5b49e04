"""Which GPU source a host has: NVML first, then nvidia-smi, then none (with why)."""

import sys
from typing import Any, List, Optional, Union

from .host import which
from .nvml import NvmlGpus
from .smi import SmiGpus
from .wire import GpuDict

# --------------------------------------------------------------------------- GPU sources


class NoGpu(object):
    kind = "none"

    def __init__(self, reason: str) -> None:
        self.reason: Optional[str] = reason
        self.driver: Optional[str] = None

    def inventory(self) -> List[GpuDict]:
        return []

    def sample(self) -> List[GpuDict]:
        return []

    def close(self) -> None:
        pass


GpuBackend = Union[NoGpu, NvmlGpus, SmiGpus]


def load_nvml_from_source(source: str) -> Any:
    """Build a pynvml module from shipped source text (no install on the host)."""
    import types

    module = types.ModuleType("pynvml")
    module.__file__ = "<nomadlab:pynvml>"
    sys.modules["pynvml"] = module
    try:
        exec(compile(source, "pynvml.py", "exec"), module.__dict__)
    except BaseException:
        del sys.modules["pynvml"]  # a later ``import pynvml`` must not get half a module
        raise
    return module


def open_gpus(interval: float, pynvml_source: Optional[str] = None,
              nvml: Any = None, health: bool = True) -> GpuBackend:
    """NVML first, then nvidia-smi, then nothing; the reason is kept for the hello."""
    reasons: List[str] = []
    if nvml is None and pynvml_source:
        try:
            nvml = load_nvml_from_source(pynvml_source)
        except Exception as exc:
            reasons.append("NVML binding: %s" % exc)
    if nvml is None:
        try:
            import pynvml  # a binding installed on this host

            nvml = pynvml
        except Exception:
            nvml = None
    if nvml is not None:
        try:
            return NvmlGpus(nvml, health=health)
        except Exception as exc:
            reasons.append("NVML: %s" % exc)
    smi = which("nvidia-smi")
    if smi is not None:
        try:
            return SmiGpus(interval, smi, health=health)
        except Exception as exc:
            reasons.append("nvidia-smi: %s" % exc)
    else:
        reasons.append("nvidia-smi not found")
    return NoGpu("no NVIDIA driver (" + "; ".join(reasons) + ")")


# --------------------------------------------------------------------------- process details
