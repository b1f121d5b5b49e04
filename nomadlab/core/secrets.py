"""Secrets (webhook URLs, bot tokens): from the environment or the OS keyring, never a file.

Lookup order for a secret named ``NAME``:

1. the environment variable ``NOMADLAB_SECRET_<NAME>`` (upper-cased, every character
   other than A-Z and 0-9 made ``_``: ``slack-url`` -> ``NOMADLAB_SECRET_SLACK_URL``);
   the way to go on a headless box, in CI, in a container;
2. the keyring (the OS keychain through the ``keyring`` package), service
   ``nomadlab``, user name ``secret:<NAME>``.

A box without a keyring backend raises on every keyring call: reading treats that as
"not set"; writing raises :class:`SecretError` naming the environment variable to use
instead. Nothing here logs or prints a value; error messages name secrets, never show
them.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Literal

KEYRING_SERVICE = "nomadlab"
ENV_PREFIX = "NOMADLAB_SECRET_"

SecretSource = Literal["env", "keyring"]


class SecretError(Exception):
    """A secret cannot be stored or removed (typically: no keyring backend here)."""


def env_var_name(name: str) -> str:
    return ENV_PREFIX + re.sub(r"[^A-Za-z0-9]", "_", name).upper()


def keyring_user(name: str) -> str:
    return f"secret:{name}"


def how_to_set(name: str) -> str:
    """One sentence a user can act on, for messages about a missing secret."""
    return (f"store it with `nomadlab secret set {name}` or set the environment variable "
            f"{env_var_name(name)}")


def check_name(name: str) -> None:
    if not name or len(name) > 200 or any(ord(c) < 32 or 0x7F <= ord(c) < 0xA0 for c in name):
        raise SecretError("a secret name is 1 to 200 printable characters")


def _from_env(name: str, environ: Mapping[str, str] | None) -> str | None:
    env = os.environ if environ is None else environ
    value = env.get(env_var_name(name))
    return value if value else None


def _from_keyring(name: str) -> str | None:
    try:
        import keyring

        value = keyring.get_password(KEYRING_SERVICE, keyring_user(name))
    except Exception:  # no backend (headless), locked or broken keychain, D-Bus trouble
        return None
    return value if value else None


def find_secret(name: str, environ: Mapping[str, str] | None = None
                ) -> tuple[str, SecretSource] | None:
    """The value and where it came from, or None when it is set nowhere readable."""
    value = _from_env(name, environ)
    if value is not None:
        return value, "env"
    value = _from_keyring(name)
    if value is not None:
        return value, "keyring"
    return None


def get_secret(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    found = find_secret(name, environ)
    return found[0] if found is not None else None


def secret_source(name: str, environ: Mapping[str, str] | None = None) -> SecretSource | None:
    found = find_secret(name, environ)
    return found[1] if found is not None else None


def _no_keyring(name: str, exc: BaseException, doing: str) -> SecretError:
    return SecretError(
        f"cannot {doing} secret {name!r}: no usable keyring on this machine "
        f"({type(exc).__name__}). Set the environment variable {env_var_name(name)} instead."
    )


def set_secret(name: str, value: str) -> None:
    """Store in the keyring; SecretError (naming the env variable) when there is none."""
    check_name(name)
    if not value:
        raise SecretError(f"empty value: nothing stored for {name!r}")
    try:
        import keyring

        keyring.set_password(KEYRING_SERVICE, keyring_user(name), value)
    except Exception as exc:
        raise _no_keyring(name, exc, "store") from None


def delete_secret(name: str) -> bool:
    """Remove from the keyring; False when it was not there. The environment is not ours
    to change: a variable that is set stays set."""
    check_name(name)
    try:
        import keyring
        from keyring.errors import PasswordDeleteError
    except Exception as exc:
        raise _no_keyring(name, exc, "delete") from None
    try:
        keyring.delete_password(KEYRING_SERVICE, keyring_user(name))
    except PasswordDeleteError:
        return False
    except Exception as exc:
        raise _no_keyring(name, exc, "delete") from None
    return True


def keyring_problem() -> str | None:
    """None when a keyring backend answers; else why not (an exception class name)."""
    try:
        import keyring

        keyring.get_password(KEYRING_SERVICE, keyring_user("probe"))
    except Exception as exc:
        return type(exc).__name__
    return None
