"""Client keys: private keys decrypted once (:class:`KeyStore`, passphrases kept only
in the OS keyring), and the keys, certificates and agent entries one attempt offers."""

from __future__ import annotations

import base64
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncssh

KEYRING_SERVICE = "nomadlab"


class KeyStore:
    """Private keys, decrypted once and kept as key objects (never the passphrase).

    A passphrase the user asked to remember is stored with ``keyring`` (the OS
    keychain), never in a file of ours; on a box without a keyring backend that step
    fails with a clear message and the key is still unlocked for this session.
    """

    def __init__(self, use_keyring: bool = True) -> None:
        self.use_keyring = use_keyring
        self._keys: dict[str, asyncssh.SSHKey] = {}
        self._locked: set[str] = set()
        self._keyring_checked = False
        self._keyring_problem: str | None = None

    def keyring_problem(self) -> str | None:
        """Why a passphrase cannot be remembered on this machine; None when it can.

        Asked of ``keyring`` once per process: no backend at all (``fail.Keyring``, the
        usual case on a headless jump box), one that keeps nothing (``null``), or one
        with no priority here all say no. Nothing is read or written to find out."""
        if not self._keyring_checked:
            self._keyring_checked = True
            self._keyring_problem = _keyring_backend_problem(self.use_keyring)
        return self._keyring_problem

    @staticmethod
    def _keyring_name(path: str) -> str:
        return f"ssh-key:{path}"

    def _from_keyring(self, path: str) -> str | None:
        if not self.use_keyring:
            return None
        try:
            import keyring

            return keyring.get_password(KEYRING_SERVICE, self._keyring_name(path))
        except Exception:  # no backend on a headless box, locked keychain, ...
            return None

    def load(self, path: str) -> asyncssh.SSHKey | None:
        """The key at ``path``; None (and remembered as locked) when it needs a passphrase."""
        if path in self._keys:
            return self._keys[path]
        try:
            key = asyncssh.read_private_key(path)
        except asyncssh.KeyImportError as exc:
            if "assphrase" not in str(exc):
                raise
            secret = self._from_keyring(path)
            if secret is not None:
                unlocked: asyncssh.SSHKey | None
                try:
                    unlocked = asyncssh.read_private_key(path, secret)
                except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError):
                    unlocked = None
                if unlocked is not None:
                    self._keys[path] = unlocked
                    self._locked.discard(path)
                    return unlocked
            self._locked.add(path)
            return None
        self._keys[path] = key
        return key

    def unlock(self, path: str, passphrase: str, remember: bool = False) -> str | None:
        """Decrypt ``path``. Raises ValueError on a wrong passphrase.

        Returns a warning when remembering was asked for but the keyring refused.
        """
        try:
            key = asyncssh.read_private_key(path, passphrase)
        except (asyncssh.KeyImportError, asyncssh.KeyEncryptionError) as exc:
            raise ValueError(f"could not decrypt {path}: wrong passphrase?") from exc
        except OSError as exc:
            raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from exc
        self._keys[path] = key
        self._locked.discard(path)
        if remember:
            try:
                import keyring

                keyring.set_password(KEYRING_SERVICE, self._keyring_name(path), passphrase)
            except Exception as exc:
                return f"passphrase not remembered: no usable keyring ({type(exc).__name__})"
        return None

    def locked(self) -> set[str]:
        return set(self._locked)


def _keyring_backend_problem(use_keyring: bool) -> str | None:
    if not use_keyring:
        return "the keyring is turned off for nomadlab"
    try:
        import keyring

        backend = keyring.get_keyring()
        priority = float(getattr(backend, "priority", 1))
    except Exception as exc:  # a broken backend or its dependencies
        return f"the keyring does not work here ({type(exc).__name__})"
    module = type(backend).__module__
    if module.endswith((".fail", ".null")) or priority <= 0:
        return "there is no keyring backend on this machine"
    return None


def agent_hint(key_path: str) -> str:
    """What works without a keyring: the key in an ssh-agent, unlocked once per login."""
    import shlex

    add = f"ssh-add {shlex.quote(key_path)}"
    if os.environ.get("SSH_AUTH_SOCK"):
        return (f"Instead, add the key to the ssh-agent running here: {add} "
                "(nomadlab uses the agent's keys; then no passphrase is asked).")
    return (f"Instead, use an ssh-agent: eval \"$(ssh-agent)\" && {add} in the shell that "
            "starts nomadlab (it uses the agent's keys; then no passphrase is asked), "
            "or forward your laptop's agent (ssh -A).")


@dataclass(slots=True)
class OfferedKeys:
    """What one connection attempt offers: keys in order, and what it could not use."""

    offered: list[asyncssh.SSHKeyPair | asyncssh.SSHKey] = field(default_factory=list)
    locked: list[str] = field(default_factory=list)  # private keys needing a passphrase
    notes: list[str] = field(default_factory=list)  # said when the server refuses
    agent: asyncssh.SSHAgentClient | None = None  # open while connecting


def has_cert(pair: asyncssh.SSHKeyPair) -> bool:
    return pair.algorithm.endswith(b"-cert-v01@openssh.com")


def key_id(pair: asyncssh.SSHKeyPair) -> bytes:
    """The plain public key of an agent entry (a certificate's key for a certificate)."""
    if not has_cert(pair):
        return pair.public_data
    try:
        blob = pair.algorithm + b" " + base64.b64encode(pair.public_data)
        return asyncssh.import_certificate(blob).key.public_data
    except (asyncssh.KeyImportError, ValueError):
        return pair.public_data


def with_certificates(key: asyncssh.SSHKey, path: str, certificate_files: Sequence[str]
                       ) -> list[asyncssh.SSHKeyPair | asyncssh.SSHKey]:
    """The key, after its certificates (``key-cert.pub`` and matching CertificateFiles),
    as OpenSSH offers them."""
    out: list[asyncssh.SSHKeyPair | asyncssh.SSHKey] = []
    for cert_path in dict.fromkeys([path + "-cert.pub", *certificate_files]):
        if not os.path.isfile(cert_path):
            continue
        try:
            cert = asyncssh.read_certificate(cert_path)
            if cert.key.public_data != key.public_data:
                continue
            out.extend(asyncssh.load_keypairs([(key, cert)])[:1])
        except (OSError, asyncssh.KeyImportError, ValueError):
            continue
    out.append(key)
    return out


def read_public(path: str) -> asyncssh.SSHKey | None:
    try:
        return asyncssh.read_public_key(path)
    except (OSError, asyncssh.KeyImportError, ValueError):
        return None


def identity_pair(path: str) -> tuple[asyncssh.SSHKey | None, str | None]:
    """(public key, private key file) for an IdentityFile, as OpenSSH reads it.

    ``key`` -> its ``key.pub`` when there is one; ``key.pub`` (or any file holding
    a public key) -> that key, with ``key`` as the private file when it exists.
    """
    if not os.path.exists(path):
        return None, None
    if not is_private_key_file(path):
        public = read_public(path)
        if public is not None:  # the IdentityFile is a public key
            private = path[:-4] if path.endswith(".pub") else None
            return public, private if private and os.path.isfile(private) else None
    return read_public(path + ".pub"), path


def is_private_key_file(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError:
        return True  # let loading it report the problem
    return b"PRIVATE KEY" in head or b"PuTTY-User-Key-File" in head
