"""``notify-send`` on this machine, where it exists and a display does."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import Mapping

from nomadlab.notify.channels import plain

NOTIFY_SEND_URGENCY = {"info": "low", "warning": "normal", "error": "critical"}


def notify_send_available(environ: Mapping[str, str] | None = None) -> bool:
    env = os.environ if environ is None else environ
    has_display = bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))
    return has_display and shutil.which("notify-send", path=env.get("PATH")) is not None


async def notify_send(title: str, body: str, severity: str = "info", *,
                      timeout: float = 5.0, environ: Mapping[str, str] | None = None) -> bool:
    """Run notify-send (no shell; arguments as a list, after ``--``). True when it worked."""
    env = os.environ if environ is None else environ
    exe = shutil.which("notify-send", path=env.get("PATH"))
    if exe is None:
        return False
    import html  # here: html.entities is 1 ms of the TUI's start, for one escape

    args = [exe, "--app-name=nomadlab",
            f"--urgency={NOTIFY_SEND_URGENCY.get(severity, 'normal')}", "--",
            plain(title, 100), html.escape(plain(body, 500), quote=False)]
    try:
        proc = await asyncio.create_subprocess_exec(
            *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL, env=dict(env))
    except OSError:
        return False
    try:
        await asyncio.wait_for(proc.wait(), timeout)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
        return False
    return proc.returncode == 0


