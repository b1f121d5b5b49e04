"""Checks for a new host's name and hostname (``nomadlab hosts add``): stricter than
what an existing config may hold."""

from __future__ import annotations

import re

from nomadlab.core.config.schema import (
    RESERVED_HOST_NAMES,
)

_NEW_HOST_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,63}$")


def new_host_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a new host (``hosts add``), or None.

    Stricter than what an existing config may hold: a name is typed in ``HOST:PATH``
    (so no ``:``) and in shell commands nomadlab prints (so no spaces or shell
    characters).
    """
    if name in RESERVED_HOST_NAMES:
        return f"{name!r} is reserved for this machine; choose another name"
    if not _NEW_HOST_NAME.match(name):
        return (f"invalid host name {name!r}: use 1 to 64 letters, digits, '.', '_', '+' "
                "or '-', starting with a letter or digit (no spaces, ':' or shell characters)")
    return None


def new_hostname_problem(hostname: str) -> str | None:
    """Why ``hostname`` (an address or ssh alias) cannot be added, or None."""
    if not hostname or any(c.isspace() or not c.isprintable() for c in hostname):
        return f"invalid hostname {hostname!r}: no spaces or control characters"
    if hostname.startswith("-"):
        return f"invalid hostname {hostname!r}: it cannot start with '-'"
    if "@" in hostname:
        user, _, rest = hostname.rpartition("@")
        return f"hostname {hostname!r} includes a user: use {rest!r} with --user {user!r}"
    if hostname.count(":") == 1:
        head, _, port = hostname.partition(":")
        hint = f": use {head!r} with --port {port}" if port.isdigit() else ""
        return f"hostname {hostname!r} includes ':'{hint}"
    if any(c in hostname for c in "/\\'\"`$;&|<>(){}*?!#"):
        return f"invalid hostname {hostname!r}: no shell characters"
    return None
