"""``nomadlab secret set | delete | check``: webhook URLs and bot tokens, kept out of files.

Values are read without echo (getpass on a terminal, else one line of stdin) and are
never printed. Where no keyring backend exists (a headless box), ``set`` and
``delete`` exit 2 and name the environment variable to use instead.
"""

from __future__ import annotations

import argparse
import getpass
import sys

from nomadlab.cli.common import UserError, add_config_option, config_from, user_errors
from nomadlab.core.secrets import (
    KEYRING_SERVICE,
    SecretError,
    check_name,
    delete_secret,
    env_var_name,
    how_to_set,
    keyring_problem,
    secret_source,
    set_secret,
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "secret", help="store webhook URLs and bot tokens in the OS keyring",
        description="Secrets named by [[notify.webhooks]] secret = NAME live in the OS "
                    "keyring (service 'nomadlab') or in the environment variable "
                    "NOMADLAB_SECRET_<NAME>, which wins. They are never written to a file "
                    "of nomadlab's and never printed.")
    add_config_option(p)
    ss = p.add_subparsers(title="actions", metavar="ACTION", required=True)

    a = ss.add_parser("set", help="store a secret (read without echo, or one line of stdin)")
    a.add_argument("name", help="the name a webhook's `secret` key uses")
    add_config_option(a)
    a.set_defaults(func=set_command)

    a = ss.add_parser("delete", help="remove a secret from the keyring")
    a.add_argument("name")
    add_config_option(a)
    a.set_defaults(func=delete_command)

    a = ss.add_parser("check", help="whether a secret is set, and where (never its value); "
                                     "without NAME, every secret the config's webhooks name")
    a.add_argument("name", nargs="?")
    add_config_option(a)
    a.set_defaults(func=check_command)


def _name(args: argparse.Namespace) -> str:
    name = str(args.name)
    with user_errors(SecretError):
        check_name(name)
    return name


def _env_note(name: str) -> None:
    if secret_source(name) == "env":
        print(f"Note: {env_var_name(name)} is set in this environment and takes precedence "
              "over the keyring.")


def set_command(args: argparse.Namespace) -> int:
    name = _name(args)
    try:
        if sys.stdin.isatty():
            value = getpass.getpass(f"Value for {name} (not shown): ")
        else:
            value = sys.stdin.readline()
    except EOFError:
        value = ""
    value = value.strip()
    if not value:
        raise UserError(f"no value given: nothing stored for {name!r}")
    with user_errors(SecretError):
        set_secret(name, value)
    print(f"Stored {name!r} in the keyring (service {KEYRING_SERVICE!r}).")
    _env_note(name)
    return 0


def delete_command(args: argparse.Namespace) -> int:
    name = _name(args)
    with user_errors(SecretError):
        removed = delete_secret(name)
    if removed:
        print(f"Deleted {name!r} from the keyring.")
    else:
        print(f"{name!r} was not in the keyring.")
    if secret_source(name) == "env":
        print(f"Note: {env_var_name(name)} is still set in this environment; unset it there.")
    return 0 if removed else 1


def check_command(args: argparse.Namespace) -> int:
    if args.name is not None:
        names = [_name(args)]
    else:
        config = config_from(args)
        names = list(dict.fromkeys(h.secret for h in config.notify.webhooks))
        if not names:
            print("No [[notify.webhooks]] in the config: no secrets to check.")
            return 0
    missing = 0
    problem: str | None = None
    for name in names:
        source = secret_source(name)
        if source == "env":
            print(f"{name}: set in the environment ({env_var_name(name)})")
        elif source == "keyring":
            print(f"{name}: set in the keyring (service {KEYRING_SERVICE!r})")
        else:
            missing += 1
            if problem is None:
                problem = keyring_problem() or ""
            if problem:
                print(f"{name}: not set; there is no usable keyring here ({problem}): set the "
                      f"environment variable {env_var_name(name)}")
            else:
                print(f"{name}: not set; {how_to_set(name)}")
    return 1 if missing else 0
