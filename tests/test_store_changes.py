"""The store's change broadcast, on real SQLite files: what a listener hears after a
commit of this process, and what `check_changes` finds from another process."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from nomadlab.core.store import ALL, Store


@pytest.fixture
def stores(tmp_path: Path):  # type: ignore[no-untyped-def]
    path = tmp_path / "data" / "nomadlab.db"
    first, second = Store(path), Store(path)
    yield first, second
    first.close()
    second.close()


def test_a_commit_tells_its_features_after_the_commit(stores) -> None:  # type: ignore[no-untyped-def]
    store, _ = stores
    heard: list[frozenset[str]] = []
    unsubscribe = store.subscribe(heard.append)
    with store.transaction("fleet") as db:
        db.execute("INSERT INTO kv VALUES ('a', '1', 1.0)")
        with store.transaction("board"):  # joins the outer one
            db.execute("INSERT INTO kv VALUES ('b', '1', 1.0)")
        assert heard == []  # nothing before the commit
    assert heard == [frozenset({"fleet", "board"})]
    store.set_state("theme", "dark", now=1.0)  # the writer did not say: everyone
    assert heard[-1] == frozenset({ALL})
    with pytest.raises(RuntimeError), store.transaction("board") as db:
        db.execute("INSERT INTO kv VALUES ('c', '1', 1.0)")
        raise RuntimeError("rolled back")
    assert len(heard) == 2  # a rollback changed nothing
    assert not store.check_changes()  # all of it was told already
    unsubscribe()
    store.set_state("theme", "light", now=2.0)
    assert len(heard) == 2


def test_check_changes_finds_another_process_and_writes_past_transaction(stores) -> None:  # type: ignore[no-untyped-def]
    first, second = stores
    heard: list[frozenset[str]] = []
    first.subscribe(heard.append)
    assert not first.check_changes()
    second.set_state("theme", "dark", now=1.0)  # another connection, as another process
    assert heard == []
    assert first.check_changes() and heard == [frozenset({ALL})]
    assert not first.check_changes()
    first.db.execute("INSERT INTO kv VALUES ('raw', '1', 1.0)")  # autocommit, no transaction()
    assert first.check_changes() and len(heard) == 2


def test_a_failing_listener_does_not_undo_the_write(stores) -> None:  # type: ignore[no-untyped-def]
    store, _ = stores
    heard: list[frozenset[str]] = []

    def broken(features: frozenset[str]) -> None:
        raise sqlite3.OperationalError("not ours")

    store.subscribe(broken)
    store.subscribe(heard.append)
    store.set_state("theme", "dark", now=1.0)
    assert store.get_state("theme") == "dark" and heard == [frozenset({ALL})]
