"""A full disk, a read-only filesystem and a damaged database (issue 9, item 26).

Real conditions: a tiny tmpfs filled to the last block, the same tmpfs remounted
read-only, a database file with garbage written over its pages. Each ends a command
with one clear line and exit status 2, never a traceback; a damaged database says
where the file is and how to keep a copy and recover it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from clirun import run_main

from nomadlab.core.store import Store, StoreError, describe_error


def nomadlab(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``main`` in this process (tests/clirun.py)."""
    return run_main("--config", str(config), *args)


def one_clear_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("nomadlab: ")
    return lines[0]


def write_config(tmp: Path, data_dir: Path) -> Path:
    config = tmp / "config.toml"
    config.write_text(f'data_dir = "{data_dir}"\nshow_local = false\n')
    return config


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs of our own (the tests run as root, as in CI)."""
    mount = tmp_path / "mnt"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True, check=False)


def fill(folder: Path) -> None:
    """Write zeros until the filesystem says no more (bounded by its size)."""
    with contextlib.suppress(OSError), (folder / "filler").open("wb") as f:
        for _ in range(4096):  # 4096 x 4 KiB = 16 MiB, more than the 1 MiB tmpfs
            f.write(b"\0" * 4096)
            f.flush()
            os.fsync(f.fileno())


def test_full_disk_is_one_line(small_fs: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path, small_fs / "data")
    assert nomadlab(config, "board", "add", "first").returncode == 0
    fill(small_fs)
    line = one_clear_line(nomadlab(config, "board", "add", "second"))
    assert "disk is full" in line and str(small_fs / "data" / "nomadlab.db") in line


def test_full_disk_under_an_open_store(small_fs: Path) -> None:
    """The TUI and `watch` keep the database open: a write then fails with SQLITE_FULL."""
    path = small_fs / "data" / "nomadlab.db"
    store = Store(path)
    try:
        fill(small_fs)
        with pytest.raises(sqlite3.Error) as caught:
            for i in range(10_000):  # bounded; the disk fills long before
                store.set_state(f"key{i}", "x" * 4000, float(i))
        assert "disk is full" in describe_error(caught.value, path)
    finally:
        store.close()


def test_read_only_filesystem_is_one_line(small_fs: Path, tmp_path: Path) -> None:
    config = write_config(tmp_path, small_fs / "data")
    assert nomadlab(config, "board", "add", "first").returncode == 0
    subprocess.run(["mount", "-o", "remount,ro", str(small_fs)], check=True)
    line = one_clear_line(nomadlab(config, "board", "add", "second"))
    assert "read-only" in line
    # Reading either works or says the same.
    listed = nomadlab(config, "board", "list")
    if listed.returncode == 0:
        assert "first" in listed.stdout
    else:
        assert "read-only" in one_clear_line(listed)


def damage(path: Path, table: str) -> None:
    """Garbage over the pages of one table (the schema page stays readable)."""
    db = sqlite3.connect(path)
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    root = db.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
    db.close()
    with path.open("r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\xde\xad" * (page_size // 2))


@pytest.mark.parametrize("command", [["board", "list"], ["board", "add", "more"]])
def test_damaged_database_says_where_and_how_to_recover(tmp_path: Path,
                                                        command: list[str]) -> None:
    data = tmp_path / "data"
    config = write_config(tmp_path, data)
    assert nomadlab(config, "board", "add", "first").returncode == 0
    path = data / "nomadlab.db"
    damage(path, "board_cards")
    line = one_clear_line(nomadlab(config, *command))
    assert "damaged" in line and str(path) in line
    assert f"cp {path} {path}.damaged" in line
    assert f"sqlite3 {path}.damaged .recover" in line


def test_damaged_schema_fails_at_open_with_the_same_advice(tmp_path: Path) -> None:
    path = tmp_path / "data" / "nomadlab.db"
    Store(path).close()
    with path.open("r+b") as f:
        f.seek(100)
        f.write(b"\xde\xad" * 1000)
    with pytest.raises(StoreError) as caught:
        Store(path)
    assert ".recover" in str(caught.value) and str(path) in str(caught.value)


async def test_tui_exits_with_one_line_on_a_damaged_database(
        tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """The papers screen reads a damaged table: the TUI ends with status 2 and the same
    one line as the CLI, not a traceback."""
    from nomadlab.cli.tui import build_app
    from nomadlab.core.config import load_config_text

    config = load_config_text(f'data_dir = "{tmp_path / "data"}"\nshow_local = false\n')
    Store(config.database).close()
    damage(config.database, "papers")
    app = build_app(config, start_fleet=False, initial_mode="papers")
    # Runs until the app ends itself (bounded: a TUI left running fails the test).
    await asyncio.wait_for(app.run_async(headless=True, size=(120, 40)), 60)
    assert app.return_code == 2
    out, err = capfd.readouterr()
    printed = " ".join((out + err).split())
    assert "nomadlab: the database " in printed and ".recover" in printed
    assert "Traceback" not in printed
