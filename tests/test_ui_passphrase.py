"""The passphrase dialog and the keyring (issue 9, item 8), over a real sshd with an
encrypted key, driven by keys in the TUI.

Where there is no keyring backend (``PYTHON_KEYRING_BACKEND=keyring.backends.fail.Keyring``,
set for every test by conftest, as on a headless jump box) "Remember" is off and
cannot be ticked, and the dialog says why and what works instead, once, up front.
Where a backend exists (an in-memory one stands in for the OS keychain), remembering
is on and the next start needs no passphrase.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import keyring
import pytest
from conftest import config_for, host_for, wait_for
from keyring.backend import KeyringBackend
from keyring.backends import fail
from sshd import SshServer, keygen
from textual.widgets import Checkbox, Static

from nomadlab.cli.tui import build_app
from nomadlab.core.model import HostState
from nomadlab.remote.ssh_keys import KeyStore
from nomadlab.ui.fleet.dialogs import Passphrase

pytestmark = pytest.mark.sshd
SECRET = "correct-horse-7f3a9c"


class MemoryKeyring(KeyringBackend):
    """A keyring backend that keeps passwords in memory (stands in for the OS keychain)."""

    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.saved: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.saved.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.saved[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.saved.pop((service, username), None)


@pytest.fixture
def no_keyring() -> Iterator[None]:
    assert os.environ["PYTHON_KEYRING_BACKEND"] == "keyring.backends.fail.Keyring"
    keyring.set_keyring(fail.Keyring())  # what that variable selects, whatever ran before
    yield


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(fail.Keyring())


def locked_host(make_sshd: Callable[..., SshServer], tmp_path: Path):  # type: ignore[no-untyped-def]
    key = keygen(tmp_path / "id_locked", passphrase=SECRET)
    server = make_sshd(client_key=key)
    server.write_known_hosts(server.base / "known_hosts")
    return key, config_for(host_for(server), tmp=tmp_path)


async def ask(app, pilot) -> Passphrase:  # type: ignore[no-untyped-def]
    fleet = app.services.fleet
    await wait_for(lambda: fleet.statuses["gpu1"].state is HostState.PASSPHRASE,
                   timeout=15, what="the passphrase state")
    await pilot.press("p")
    await pilot.pause()
    dialog = app.screen
    assert isinstance(dialog, Passphrase)
    return dialog


async def test_without_a_keyring_backend_it_says_so_and_offers_the_agent(
        make_sshd: Callable[..., SshServer], tmp_path: Path, no_keyring: None) -> None:
    key, config = locked_host(make_sshd, tmp_path)
    app = build_app(config, initial_mode="fleet")
    async with app.run_test(size=(120, 40)) as pilot:
        dialog = await ask(app, pilot)
        remember = dialog.query_one("#remember", Checkbox)
        assert remember.value is False and remember.disabled
        note = str(dialog.query_one("#no-keyring", Static).render())
        assert "cannot be remembered: there is no keyring backend on this machine" in note
        assert f"ssh-add {key}" in note and "ssh-agent" in note
        await pilot.press(*SECRET, "enter")
        await pilot.pause()
        fleet = app.services.fleet
        await wait_for(lambda: fleet.statuses["gpu1"].state is HostState.LIVE, timeout=15,
                       what="live once unlocked")
        messages = [str(n.message) for n in app._notifications]
        assert not any("keyring" in m for m in messages), messages  # said once, up front
        assert any("Key unlocked" in m for m in messages)


async def test_with_a_keyring_backend_remembering_is_on_and_works(
        make_sshd: Callable[..., SshServer], tmp_path: Path,
        memory_keyring: MemoryKeyring) -> None:
    key, config = locked_host(make_sshd, tmp_path)
    app = build_app(config, initial_mode="fleet")
    async with app.run_test(size=(120, 40)) as pilot:
        dialog = await ask(app, pilot)
        remember = dialog.query_one("#remember", Checkbox)
        assert remember.value is True and not remember.disabled
        assert not dialog.query("#no-keyring")
        await pilot.press(*SECRET, "enter")
        fleet = app.services.fleet
        await wait_for(lambda: fleet.statuses["gpu1"].state is HostState.LIVE, timeout=15,
                       what="live once unlocked")
    assert list(memory_keyring.saved.values()) == [SECRET]
    assert KeyStore().load(str(key)) is not None  # the next start asks nothing
