"""How a connection attempt failed, sorted by what happens next: :class:`Unreachable`
retries with backoff; :class:`HostKeyProblem`, :class:`AuthFailed` and
:class:`PassphraseNeeded` wait for the user (see :mod:`nomadlab.remote.supervisor`)."""

from __future__ import annotations

import os
import socket

from nomadlab.core.model import HostKeyInfo


class ConnectFailure(Exception):
    """Base class: a connection attempt failed in a known way."""

    retry = True


class Unreachable(ConnectFailure):
    """Network trouble: refused, timed out, reset. Retried with backoff."""


class AuthFailed(ConnectFailure):
    """The server refused every key. Waits for the user."""

    retry = False


class PassphraseNeeded(ConnectFailure):
    retry = False

    def __init__(self, key_path: str, message: str) -> None:
        super().__init__(message)
        self.key_path = key_path


class HostKeyProblem(ConnectFailure):
    """Unknown or changed host key. Never accepted automatically."""

    retry = False

    def __init__(self, info: HostKeyInfo, message: str) -> None:
        super().__init__(message)
        self.info = info


def os_reason(exc: OSError) -> str:
    """'connection refused', not asyncio's "Connect call failed ('10.0.0.7', 22)"."""
    if isinstance(exc, socket.gaierror):
        text = f"cannot resolve host name ({exc.strerror or exc})"
    elif exc.errno is not None and exc.errno > 0:
        text = os.strerror(exc.errno)
    else:
        text = exc.strerror or str(exc) or type(exc).__name__
    return text[:1].lower() + text[1:]
