"""Shared fixtures: an isolated home, real sshd servers, the stand-in GPU drivers."""

from __future__ import annotations

import asyncio
import fcntl
import gc
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sshd import SshServer
from standins.nvml import build_fake_nvml
from standins.smi import install_fake_smi

from nomadlab.core.config import Config, HostConfig, SshSettings, load_config_text
from nomadlab.core.model import HostSample, HostState, HostStatus

DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No test reads or writes the real user's files, keys, agent or keyring."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.fail.Keyring")
    for name in ("SSH_AUTH_SOCK", "NOMADLAB_CONFIG", "TMUX", "SSH_CONNECTION"):
        monkeypatch.delenv(name, raising=False)
    return home


@pytest.fixture(scope="session")
def fake_nvml_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The stand-in libnvidia-ml.so.1, compiled once per test run: under pytest-xdist the
    first worker to need it compiles it (under a lock) and the others load that build."""
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # this run's, shared by its workers
    built = root / "nvml-shared"
    with (root / "nvml-shared.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not built.is_dir():
            staging = root / f"nvml-staging-{os.getpid()}"
            build_fake_nvml(staging)
            staging.rename(built)
    return built


@pytest.fixture(scope="session")
def fake_smi_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("smi-bin")
    install_fake_smi(directory)
    return directory


def nvml_env(lib_dir: Path, conf: Path) -> dict[str, str]:
    return {"LD_LIBRARY_PATH": str(lib_dir), "NOMADLAB_FAKE_NVML": str(conf)}


@pytest.fixture
def make_sshd(tmp_path: Path) -> Iterator[Callable[..., SshServer]]:
    servers: list[SshServer] = []
    counter = iter(range(1000))

    def make(env: dict[str, str] | None = None, **kwargs: object) -> SshServer:
        server = SshServer(tmp_path / f"sshd{next(counter)}", env, **kwargs)  # type: ignore[arg-type]
        servers.append(server)
        return server.start()

    yield make
    for server in servers:
        server.stop()


@pytest.fixture
def nvml_conf(tmp_path: Path) -> Path:
    """A writable copy of the 8 x H100 stand-in data (tests may change it)."""
    conf = tmp_path / "nvml.conf"
    conf.write_text((DATA / "nvml" / "h100x8.conf").read_text())
    return conf


@pytest.fixture
def gpu_server(make_sshd: Callable[..., SshServer], fake_nvml_dir: Path,
               nvml_conf: Path) -> SshServer:
    """A host with 8 (stand-in) H100s behind a real sshd."""
    return make_sshd(nvml_env(fake_nvml_dir, nvml_conf))


def fast_ssh() -> SshSettings:
    """Short timeouts so fault tests finish in seconds (the defaults are for Wi-Fi)."""
    return SshSettings(connect_timeout=3, login_timeout=5, keepalive_interval=1,
                       keepalive_count_max=1, backoff_initial=0.2, backoff_max=1.0)


def host_for(server: SshServer, name: str = "gpu1", **overrides: object) -> HostConfig:
    host = HostConfig(name=name, hostname="127.0.0.1", port=server.port, user=server.user,
                      identity_file=str(server.client_key),
                      known_hosts=str(server.base / "known_hosts"))
    for key, value in overrides.items():
        setattr(host, key, value)
    return host


def config_for(*hosts: HostConfig, tmp: Path, interval: float = 0.5,
               show_local: bool = False) -> Config:
    config = load_config_text(f'data_dir = "{tmp / "data"}"\nshow_local = false\n')
    config.hosts = list(hosts)
    config.show_local = show_local
    config.ssh = fast_ssh()
    config.fleet.interval = interval
    return config


class Recorder:
    """A fleet listener that keeps every status and sample it is told of."""

    def __init__(self) -> None:
        self.statuses: list[HostStatus] = []
        self.samples: list[HostSample] = []

    def fleet_status(self, status: HostStatus) -> None:
        self.statuses.append(status)

    def fleet_sample(self, sample: HostSample) -> None:
        self.samples.append(sample)

    def states(self, host: str) -> list[HostState]:
        """The host's state changes, in order (repeats of one state folded)."""
        out: list[HostState] = []
        for s in self.statuses:
            if s.name == host and (not out or out[-1] is not s.state):
                out.append(s.state)
        return out

    def samples_of(self, host: str) -> list[HostSample]:
        return [s for s in self.samples if s.host == host]


async def wait_for(predicate: Callable[[], object], timeout: float = 15.0,
                   what: str = "condition") -> None:
    """Poll an in-process condition, bounded (not a sleep standing in for a timer)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


os.environ.setdefault("TEXTUAL_ANIMATIONS", "none")
# A test process runs dozens of Textual apps one after another, and a full (generation
# 2) collection walks all the objects they leave behind (Strips and their caches): at
# Python's default of one young collection per 700 allocations, full collections were
# a quarter of a UI test worker's CPU. One per 10,000 makes full collections about 20
# times rarer (test_board_ui + test_papers_ui + test_focus_ui in one process: 59 -> 44
# CPU-s, peak memory 196 -> 262 MB; 5,000 and 20,000 both did worse). This process only:
# the nomadlab processes the tests start keep Python's defaults.
gc.set_threshold(10_000, *gc.get_threshold()[1:])
# Snapshots and clocks in the UI show local time: make it the same everywhere.
os.environ["TZ"] = "UTC"
import time as _time  # noqa: E402

_time.tzset()


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook, which reads xdist_group
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist, every Slurm test runs on one worker: one cluster at a time on
    this machine (each test module starts its own, module-scoped)."""
    for item in items:
        if item.get_closest_marker("slurm") is not None:
            item.add_marker(pytest.mark.xdist_group("slurm"))
    spread_order(items)


# The longest tests (a minute, then 10-17 s each in a full run on 2 cores; most of it
# waiting on scrapes, sshd, a second process): started first, longest first, so the
# other workers fill the run around them instead of the run ending with one of them
# running alone. A prefix of the node id; a name that no longer matches costs nothing.
LONG_FIRST = (
    "tests/test_readme_commands.py::test_every_readme_command_runs_on_a_busy_machine",
    "tests/test_prometheus_source.py::test_dcgm_counters_become_the_gpu_model",
    "tests/test_openlog.py::test_demo_hosts_complete_paths_over_sftp",
    "tests/test_prometheus_source.py::test_a_target_removed_goes_stale",
    "tests/test_ui_logs.py::test_split_view_and_open_host_path",
    "tests/test_prometheus_fleet.py::test_status_json_mixes_ssh_and_prometheus_hosts",
    "tests/test_board_concurrency.py::test_the_tui_edits_while_another_process_moves_the_card",
    "tests/test_prometheus_exporter.py::test_exporter_round_trip_through_prometheus",
    "tests/test_openlog.py::test_hostile_remote_names_are_shown_visibly",
)


def spread_order(items: list[pytest.Item]) -> None:
    """The order tests are handed to xdist workers in: the long ones first, then every
    module's tests spread evenly over the run (a test's key is its place in its module,
    0 to 1) rather than module after module. Modules of one kind wait on the same things:
    run one after another, the ten Prometheus ones kept all workers waiting on scrape
    intervals while a core stood idle, and the UI modules then all competed for CPU.
    A module with a module-scoped fixture stays in one piece (its fixture is built once
    per worker that runs it). The order is the same on every worker (xdist requires it)."""
    modules: dict[str, list[pytest.Item]] = {}
    for item in items:
        modules.setdefault(item.nodeid.split("::")[0], []).append(item)
    keys: dict[str, tuple[int, float]] = {}
    for members in modules.values():
        whole = any(
            getattr(definition, "scope", "function") in ("module", "class", "package")
            for member in members
            for definition in _fixture_defs(member))
        for place, item in enumerate(members):
            first = next((rank for rank, prefix in enumerate(LONG_FIRST)
                          if item.nodeid.startswith(prefix)), len(LONG_FIRST))
            keys[item.nodeid] = (first, 0.5 if whole else place / len(members))
    items.sort(key=lambda item: keys[item.nodeid])


def _fixture_defs(item: pytest.Item) -> list[object]:
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return []
    return [d for defs in info.name2fixturedefs.values() for d in defs]
