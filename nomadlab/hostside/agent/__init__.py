"""The nomadlab sampling agent, run ON a GPU host: hello, then one sample per interval.

Rules for every module of this package (checked by tests: vermin, and the imports):
- standard library only, Python >= 3.8 (no f-string '=' specifiers, no walrus, no
  ``list[int]`` or ``X | None`` annotations: function annotations are evaluated at
  definition time on 3.8, so they use ``typing.List`` / ``Optional``);
- modules import one another relatively (``from .wire import ...``): the package is
  shipped to the host over SSH on stdin and its modules are served by a tiny bootstrap
  under another package name, together with the source of the client's installed
  nvidia-ml-py binding (pynvml), so nothing has to be installed on the host;
- it writes one JSON object per line to stdout: first a ``hello``, then one ``sample``
  per interval;
- it ends itself when stdin reaches EOF, when a write fails, or when no heartbeat line
  arrived for a while: sshd does not kill a command when its channel closes.

The same classes are imported in-process by the client (local machine, demo server,
tests), so there is exactly one implementation of "turn NVML into a sample".

Modules: :mod:`.wire` (message types, version, encoder), :mod:`.smi` (nvidia-smi),
:mod:`.nvml` and :mod:`.nvml_health` (NVML), :mod:`.gpus` (which source a host has),
:mod:`.host` (/proc: CPU, RAM, process names), :mod:`.procs` (process details and the
stdin commands), :mod:`.run` (the main loop), ``__main__`` (what the bootstrap execs).
This package re-exports the names the client uses.
"""

from .gpus import GpuBackend, NoGpu, load_nvml_from_source, open_gpus
from .host import HostStats, ProcessNames, which
from .nvml import NvmlGpus
from .nvml_health import XID_EVENT, NvmlHealth
from .procs import (
    MAX_CHAIN,
    SIGNALS,
    DockerNames,
    ProcessDetails,
    add_process_details,
    command_line,
    container_of,
    handle_command,
    read_stat,
    start_time,
)
from .run import Agent, hello_message, main, sample_message
from .smi import (
    SMI_APP_FIELDS,
    SMI_COMPUTE_MODES,
    SMI_GPU_FIELDS,
    SMI_HEALTH_FIELDS,
    SmiGpus,
    parse_smi_app_line,
    parse_smi_gpu_line,
    parse_smi_health_line,
)
from .wire import (
    AGENT_VERSION,
    CLOCK_REASON_BITS,
    MAX_COMMAND,
    NO_PYTHON_MARKER,
    AppRow,
    GpuDict,
    Message,
    encode,
)

__all__ = [
    "AGENT_VERSION",
    "CLOCK_REASON_BITS",
    "MAX_CHAIN",
    "MAX_COMMAND",
    "NO_PYTHON_MARKER",
    "SIGNALS",
    "SMI_APP_FIELDS",
    "SMI_COMPUTE_MODES",
    "SMI_GPU_FIELDS",
    "SMI_HEALTH_FIELDS",
    "XID_EVENT",
    "Agent",
    "AppRow",
    "DockerNames",
    "GpuBackend",
    "GpuDict",
    "HostStats",
    "Message",
    "NoGpu",
    "NvmlGpus",
    "NvmlHealth",
    "ProcessDetails",
    "ProcessNames",
    "SmiGpus",
    "add_process_details",
    "command_line",
    "container_of",
    "encode",
    "handle_command",
    "hello_message",
    "load_nvml_from_source",
    "main",
    "open_gpus",
    "parse_smi_app_line",
    "parse_smi_gpu_line",
    "parse_smi_health_line",
    "read_stat",
    "sample_message",
    "start_time",
    "which",
]
