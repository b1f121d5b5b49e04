"""XID codes: what the driver's error means and what to do, in our own words.

Summarised from NVIDIA's published XID catalogue. ``severity`` is how the health
column treats a GPU that logged the code: ``fail`` (the GPU needs a reset, a reboot or
a repair) or ``warn`` (usually the application, or worth watching).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True, frozen=True)
class XidInfo:
    """What an XID error code means, what to do about it, and how bad it is."""
    code: int
    meaning: str  # short, lower case: "fell off the bus"
    action: str  # one sentence: what to do
    severity: str  # "fail" | "warn"


_TABLE: tuple[XidInfo, ...] = (
    XidInfo(8, "GPU stopped responding", "Often the application; if it repeats, reset the GPU.",
            "warn"),
    XidInfo(13, "graphics engine exception",
            "Usually the application (bad memory access or illegal instruction): check the "
            "program first.", "warn"),
    XidInfo(31, "GPU memory page fault",
            "Usually the application read or wrote an illegal address: check the program.",
            "warn"),
    XidInfo(32, "corrupted command stream",
            "Often the PCIe link or the driver: check the link and dmesg.", "warn"),
    XidInfo(43, "GPU stopped a faulting program",
            "Usually the application: the GPU stays usable for other work.", "warn"),
    XidInfo(45, "driver cleaned up after a stopped process",
            "A process ended (killed or crashed); nothing to do unless it was unexpected.",
            "warn"),
    XidInfo(48, "double-bit ECC error",
            "Uncorrectable memory error: reset the GPU; replace it if it comes back.", "fail"),
    XidInfo(61, "internal micro-controller warning",
            "Reset the GPU if work stalls; report it if it repeats.", "warn"),
    XidInfo(62, "internal micro-controller halted", "Reset the GPU.", "fail"),
    XidInfo(63, "ECC page retirement or row remap recorded",
            "Reset the GPU when convenient so the remap takes effect.", "warn"),
    XidInfo(64, "ECC page retirement or row remap failed",
            "The memory cannot be repaired: take the GPU out of service and replace it.",
            "fail"),
    XidInfo(69, "graphics engine class error", "Often the application; reset if it repeats.",
            "warn"),
    XidInfo(74, "NVLink error",
            "Check the NVLink bridge or switch tray, then reset the GPUs on that link.",
            "fail"),
    XidInfo(79, "fell off the bus",
            "The host lost the GPU: check power, seating, PCIe and cooling; reboot the host.",
            "fail"),
    XidInfo(92, "high single-bit ECC error rate",
            "Watch the corrected error count; replace the GPU if it keeps rising.", "warn"),
    XidInfo(94, "contained ECC error",
            "The program that hit it was stopped, others go on: reset the GPU when you can.",
            "warn"),
    XidInfo(95, "uncontained ECC error",
            "All work on the GPU is affected: reset the GPU now.", "fail"),
    XidInfo(109, "context switch timeout", "The application or the GPU: reset if it repeats.",
            "warn"),
    XidInfo(119, "GSP timeout",
            "The GPU's system processor stopped answering: reset the GPU or reboot; update "
            "the driver if it repeats.", "fail"),
    XidInfo(120, "GSP error", "Reset the GPU or reboot the host.", "fail"),
    XidInfo(154, "recovery action needed",
            "The driver asks for a GPU reset or a reboot: see nvidia-smi -q, GPU Recovery "
            "Action.", "fail"),
)

XIDS: dict[int, XidInfo] = {x.code: x for x in _TABLE}


def xid_info(code: int) -> XidInfo:
    """The table's entry, or a generic one for a code it does not know."""
    known = XIDS.get(code)
    if known is not None:
        return known
    return XidInfo(code, "driver error", "Look the code up in NVIDIA's XID catalogue.", "warn")
