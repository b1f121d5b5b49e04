"""Secrets: the environment first, then the keyring; ``nomadlab secret`` as a user runs it.

The test home's keyring is keyring's failing backend (what a headless box has); a
file-backed backend, loaded through keyring's own PYTHON_KEYRING_BACKEND mechanism,
stands in for an OS keychain where a test needs one that works.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from nomadlab.core.secrets import (
    SecretError,
    delete_secret,
    env_var_name,
    find_secret,
    get_secret,
    keyring_problem,
    set_secret,
)

VALUE = "https://hooks.example.invalid/services/T000/B000/s3cr3t-v4lue"

FILE_KEYRING = '''
import json, os
from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError


class FileKeyring(KeyringBackend):
    priority = 1

    def _path(self):
        return os.environ["TEST_KEYRING_FILE"]

    def _load(self):
        try:
            with open(self._path()) as f:
                return json.load(f)
        except FileNotFoundError:
            return {}

    def _save(self, data):
        with open(self._path(), "w") as f:
            json.dump(data, f)

    def get_password(self, service, username):
        return self._load().get(service + "/" + username)

    def set_password(self, service, username, password):
        data = self._load()
        data[service + "/" + username] = password
        self._save(data)

    def delete_password(self, service, username):
        data = self._load()
        if data.pop(service + "/" + username, None) is None:
            raise PasswordDeleteError("not found")
        self._save(data)
'''


def test_env_var_name() -> None:
    assert env_var_name("slack-url") == "NOMADLAB_SECRET_SLACK_URL"
    assert env_var_name("tg.bot token/2") == "NOMADLAB_SECRET_TG_BOT_TOKEN_2"
    assert env_var_name("ntfy") == "NOMADLAB_SECRET_NTFY"


def test_environment_first_and_no_keyring_is_not_an_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert keyring_problem() == "NoKeyringError"  # the test home's failing backend
    assert get_secret("slack-url") is None  # the keyring raised; caught
    monkeypatch.setenv("NOMADLAB_SECRET_SLACK_URL", VALUE)
    assert find_secret("slack-url") == (VALUE, "env")
    assert get_secret("slack-url", environ={}) is None
    assert get_secret("slack-url", environ={"NOMADLAB_SECRET_SLACK_URL": ""}) is None


def test_set_and_delete_without_keyring_name_the_variable() -> None:
    with pytest.raises(SecretError, match="NOMADLAB_SECRET_SLACK_URL") as caught:
        set_secret("slack-url", VALUE)
    assert VALUE not in str(caught.value)
    with pytest.raises(SecretError, match="NOMADLAB_SECRET_SLACK_URL"):
        delete_secret("slack-url")
    with pytest.raises(SecretError):
        set_secret("bad\nname", VALUE)


def nomadlab(*args: str, stdin: str = "", env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "nomadlab", *args], input=stdin,
                          env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=60, check=False)


def test_cli_without_keyring_exits_2_and_names_the_variable() -> None:
    for action in ("set", "delete"):
        done = nomadlab("secret", action, "slack-url", stdin=VALUE + "\n")
        assert done.returncode == 2, done
        assert "NOMADLAB_SECRET_SLACK_URL" in done.stderr
        assert "no usable keyring" in done.stderr
        assert VALUE not in done.stdout + done.stderr
    done = nomadlab("secret", "check", "slack-url")
    assert done.returncode == 1
    assert "not set" in done.stdout and "NOMADLAB_SECRET_SLACK_URL" in done.stdout


def test_cli_check_with_the_environment_variable(isolated_home: Path) -> None:
    done = nomadlab("secret", "check", "slack-url", env={"NOMADLAB_SECRET_SLACK_URL": VALUE})
    assert done.returncode == 0, done
    assert done.stdout == "slack-url: set in the environment (NOMADLAB_SECRET_SLACK_URL)\n"
    assert VALUE not in done.stdout + done.stderr
    for path in isolated_home.rglob("*"):
        if path.is_file():
            assert VALUE.encode() not in path.read_bytes(), path


def test_cli_check_every_secret_the_config_names(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_text(
        '[[notify.webhooks]]\nname = "phone"\nkind = "ntfy"\nsecret = "ntfy-topic"\n'
        '[[notify.webhooks]]\nname = "team"\nkind = "slack"\nsecret = "slack-url"\n'
        '[[notify.webhooks]]\nname = "team2"\nkind = "slack"\nsecret = "slack-url"\n')
    done = nomadlab("secret", "check", "--config", str(config),
                    env={"NOMADLAB_SECRET_NTFY_TOPIC": "https://ntfy.sh/x"})
    assert done.returncode == 1
    lines = done.stdout.splitlines()
    assert lines[0] == "ntfy-topic: set in the environment (NOMADLAB_SECRET_NTFY_TOPIC)"
    assert lines[1].startswith("slack-url: not set") and len(lines) == 2
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    assert nomadlab("secret", "check", "--config", str(empty)).returncode == 0


def test_cli_with_a_working_keyring(tmp_path: Path, isolated_home: Path) -> None:
    backend_dir = tmp_path / "backend"
    backend_dir.mkdir()
    (backend_dir / "file_keyring.py").write_text(FILE_KEYRING)
    store = tmp_path / "keyring.json"  # outside the home: it is the "OS keychain"
    env = {"PYTHON_KEYRING_BACKEND": "file_keyring.FileKeyring",
           "PYTHONPATH": os.pathsep.join([str(backend_dir), os.environ.get("PYTHONPATH", "")]),
           "TEST_KEYRING_FILE": str(store)}

    done = nomadlab("secret", "set", "slack-url", stdin=VALUE + "\n", env=env)
    assert done.returncode == 0, done
    assert "Stored 'slack-url' in the keyring" in done.stdout
    assert VALUE not in done.stdout + done.stderr
    assert VALUE in store.read_text()

    done = nomadlab("secret", "check", "slack-url", env=env)
    assert (done.returncode, done.stdout) == (0, "slack-url: set in the keyring (service "
                                                 "'nomadlab')\n")
    # the environment wins over the keyring, and set says so
    done = nomadlab("secret", "set", "slack-url", stdin="other\n",
                    env={**env, "NOMADLAB_SECRET_SLACK_URL": VALUE})
    assert done.returncode == 0 and "takes precedence" in done.stdout

    done = nomadlab("secret", "delete", "slack-url", env=env)
    assert done.returncode == 0 and "Deleted" in done.stdout
    done = nomadlab("secret", "delete", "slack-url", env=env)
    assert done.returncode == 1 and "was not in the keyring" in done.stdout
    done = nomadlab("secret", "check", "slack-url", env=env)
    assert done.returncode == 1
    assert "not set; store it with `nomadlab secret set slack-url`" in done.stdout

    assert nomadlab("secret", "set", "slack-url", stdin="\n", env=env).returncode == 2
    for path in isolated_home.rglob("*"):
        if path.is_file():
            assert VALUE.encode() not in path.read_bytes(), path
