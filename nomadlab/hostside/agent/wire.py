"""The agent's wire format: its message types, version, and the line encoder."""

import json
from typing import Any, Dict, Optional, Tuple

# The wire format is JSON: one dict per message, one dict per GPU in it.
Message = Dict[str, Any]
GpuDict = Dict[str, Any]
# (timestamp, gpu uuid, pid, process name, used MiB) from one nvidia-smi app line.
AppRow = Tuple[str, str, int, str, Optional[float]]

AGENT_VERSION = 1
NO_PYTHON_MARKER = "NOMADLAB-NO-PYTHON"


# nvmlClocksEventReasons bits (nvml.h); "GPU idle" and the application clock settings
# are not problems and are left out of the wire's decoded list by the client.
CLOCK_REASON_BITS = (0x1, 0x2, 0x4, 0x8, 0x10, 0x20, 0x40, 0x80, 0x100)

MAX_COMMAND = 240  # characters of a process command line sent to the client


def encode(message: Message) -> bytes:
    return (json.dumps(message, separators=(",", ":")) + "\n").encode("ascii")

