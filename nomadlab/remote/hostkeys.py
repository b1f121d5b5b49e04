"""Host keys: known_hosts read (several files, hashed names), an untrusted key
described for the user, and trusted only when the user says so."""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
from collections.abc import Sequence
from pathlib import Path

import asyncssh

from nomadlab.core.model import HostKeyInfo
from nomadlab.remote.ssh_errors import AuthFailed


def _known_hosts_pattern(host: str, port: int) -> str:
    return host if port == 22 else f"[{host}]:{port}"


def _as_paths(known_hosts: Path | Sequence[Path]) -> list[Path]:
    return [known_hosts] if isinstance(known_hosts, Path) else list(known_hosts)


def read_known_hosts(known_hosts: Path | Sequence[Path]) -> asyncssh.SSHKnownHosts:
    """All the given known_hosts files as one (missing files are empty)."""
    known = asyncssh.import_known_hosts("")
    for path in _as_paths(known_hosts):
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise AuthFailed(f"cannot read known_hosts {path}: {exc.strerror or exc}") from exc
        try:
            known.load(text)
        except ValueError as exc:
            raise AuthFailed(f"cannot read known_hosts {path}: {exc}") from exc
    return known


def _hashed_pattern(pattern: str) -> str:
    """OpenSSH's hashed known_hosts name (HashKnownHosts): ``|1|salt|HMAC-SHA1``."""
    salt = os.urandom(20)
    digest = hmac.new(salt, pattern.encode("utf-8"), hashlib.sha1).digest()
    return f"|1|{base64.b64encode(salt).decode()}|{base64.b64encode(digest).decode()}"


def host_key_info(known_hosts: Path | Sequence[Path], host: str, addr: str, port: int,
                  key: asyncssh.SSHKey, *, hashed: bool = False) -> HostKeyInfo:
    """Describe a key known_hosts did not trust: unknown, or a changed key.

    ``known_hosts``: the files checked, the first being the one trusting writes to
    (ssh's first UserKnownHostsFile). For a changed key ``info.known_hosts`` names
    the file that holds the old key, the one to clean up.
    """
    files = _as_paths(known_hosts)
    algorithm = key.get_algorithm()
    changed_in: Path | None = None
    for path in files:
        try:
            trusted = read_known_hosts(path).match(host, addr, port if port != 22 else None)[0]
        except AuthFailed:
            continue
        if any(k.get_algorithm() == algorithm and k != key for k in trusted):
            changed_in = path
            break
    public = key.export_public_key("openssh").decode("ascii").split()
    pattern = _known_hosts_pattern(host, port)
    line = f"{_hashed_pattern(pattern) if hashed else pattern} {public[0]} {public[1]}"
    return HostKeyInfo(
        host=host,
        port=port,
        key_type=algorithm,
        fingerprint=key.get_fingerprint("sha256"),
        known_hosts=str(changed_in or files[0]),
        line=line,
        changed=changed_in is not None,
    )


def trust_host_key(info: HostKeyInfo) -> None:
    """Append an unknown key to known_hosts. A changed key is refused here too."""
    if info.changed:
        raise ValueError(
            f"the host key of {info.host} changed; remove the old key from "
            f"{info.known_hosts} yourself (ssh-keygen -R) if you are sure"
        )
    path = Path(info.known_hosts)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    prefix = ""
    if path.exists() and path.stat().st_size > 0:
        with path.open("rb") as f:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                prefix = "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="ascii") as f:
        f.write(prefix + info.line + "\n")


class HostKeyClient:
    """Remembers the host key that known_hosts did not trust (and refuses it).

    An ``asyncssh.SSHClient``: :func:`host_key_client` makes one, the class on first
    use, as the TUI imports asyncssh after its first frame (core/lazyimport.py)."""

    def __init__(self) -> None:
        self.untrusted: tuple[str, str, int, asyncssh.SSHKey] | None = None

    def validate_host_public_key(self, host: str, addr: str, port: int,
                                 key: asyncssh.SSHKey) -> bool:
        self.untrusted = (host, addr, port, key)
        return False


@functools.cache
def _host_key_client_class() -> type[HostKeyClient]:
    return type("HostKeyClient", (HostKeyClient, asyncssh.SSHClient), {})


def host_key_client() -> HostKeyClient:
    return _host_key_client_class()()
