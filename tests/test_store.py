"""The SQLite store on real files: migrations, two connections, bad files, GPU minutes."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from nomadlab.core.aggregate import MinuteAggregator, gpu_hours
from nomadlab.core.model import GpuProcess, GpuSample, HostSample
from nomadlab.core.store import MIGRATIONS, Store, StoreError


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "nomadlab.db"


def tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


# --------------------------------------------------------------------------- schema


def test_migrations_apply_once_and_record_each_component(db_path: Path) -> None:
    store = Store(db_path)
    expected = {component: len(steps) for component, steps in MIGRATIONS.items()}
    assert store.schema_versions() == expected
    assert {"schema_version", "kv", "gpu_minutes"} <= tables(db_path)
    store.set_state("kept", [1, 2], now=1.0)
    store.close()
    # Opening again applies nothing (a second CREATE TABLE would fail) and keeps data.
    again = Store(db_path)
    assert again.schema_versions() == expected
    assert again.get_state("kept") == [1, 2]
    again.close()
    assert db_path.stat().st_mode & 0o777 == 0o600
    assert db_path.parent.stat().st_mode & 0o777 == 0o700


def test_a_component_added_later_migrates_alone(db_path: Path) -> None:
    """A database from before every other component: only their steps run."""
    db_path.parent.mkdir(parents=True)
    with sqlite3.connect(db_path) as db:
        db.executescript(
            "CREATE TABLE schema_version (component TEXT PRIMARY KEY, version INTEGER NOT NULL);"
            "INSERT INTO schema_version VALUES ('core', 1);"
            "CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated REAL NOT NULL);"
            "INSERT INTO kv VALUES ('layout', '\"grid\"', 5.0);"
        )
    db.close()
    store = Store(db_path)
    later = {c: len(steps) for c, steps in MIGRATIONS.items() if c != "core"}
    assert store.schema_versions() == {"core": 1, **later}
    assert store.get_state("layout") == "grid"
    assert "gpu_minutes" in tables(db_path)
    store.close()


def test_a_failed_migration_leaves_nothing_half_done(db_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    Store(db_path).close()
    monkeypatch.setitem(MIGRATIONS, "zzz-broken", [
        "CREATE TABLE half (x INTEGER); -- the first statement works\n"
        "INSERT INTO no_such_table VALUES (1);",
    ])
    with pytest.raises(StoreError, match="no_such_table"):
        Store(db_path)
    assert "half" not in tables(db_path)
    monkeypatch.delitem(MIGRATIONS, "zzz-broken")
    assert "zzz-broken" not in Store(db_path).schema_versions()


def test_a_database_from_a_newer_nomadlab_is_refused(db_path: Path) -> None:
    Store(db_path).close()
    with sqlite3.connect(db_path) as db:
        db.execute("UPDATE schema_version SET version = 99 WHERE component = 'fleet'")
    db.close()
    with pytest.raises(StoreError) as info:
        Store(db_path)
    message = str(info.value)
    assert str(db_path) in message
    assert "newer nomadlab" in message and "fleet schema 99" in message
    assert f"knows {len(MIGRATIONS['fleet'])}" in message


def test_a_file_that_is_not_sqlite(db_path: Path) -> None:
    db_path.parent.mkdir(parents=True)
    junk = b"this is my shopping list, not a database\n" * 200
    db_path.write_bytes(junk)
    with pytest.raises(StoreError) as info:
        Store(db_path)
    assert str(db_path) in str(info.value)
    assert "not a database" in str(info.value)
    assert db_path.read_bytes() == junk  # untouched


def test_a_data_dir_that_cannot_exist(tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(StoreError, match="cannot create"):
        Store(a_file / "data" / "nomadlab.db")
    with pytest.raises(StoreError):
        Store(tmp_path)  # a directory, not a database file


# --------------------------------------------------------------------------- state


def test_state_round_trip(db_path: Path) -> None:
    store = Store(db_path)
    assert store.get_state("missing") is None
    assert store.get_state("missing", {"d": 1}) == {"d": 1}
    value = {"layout": "grid", "sizes": {"fleet": 2}, "panes": ["fleet", "logs"], "ok": True,
             "ratio": 0.5, "none": None, "text": "ünïcödé [bold]x[/]"}
    store.set_state("workspace", value, now=100.0)
    assert store.get_state("workspace") == value
    store.set_state("workspace", [], now=101.0)  # overwrite
    assert store.get_state("workspace") == []
    row = store.query("SELECT updated FROM kv WHERE key = ?", ("workspace",))[0]
    assert row["updated"] == 101.0
    # A value some other tool wrote that is not JSON: the default, not a crash.
    with store.transaction() as db:
        db.execute("INSERT INTO kv VALUES ('broken', '{nope', 1.0)")
    assert store.get_state("broken", "fallback") == "fallback"
    store.close()


def test_a_second_store_sees_the_first_ones_writes(db_path: Path) -> None:
    first = Store(db_path)
    second = Store(db_path)
    seen_by_second = second.data_version()
    own = first.data_version()
    first.set_state("theme", "dark", now=1.0)
    assert second.data_version() != seen_by_second  # someone else wrote
    assert second.get_state("theme") == "dark"
    assert first.data_version() == own  # its own commits do not count
    seen_by_first = first.data_version()
    second.set_state("theme", "light", now=2.0)
    assert first.data_version() != seen_by_first
    assert first.get_state("theme") == "light"
    first.close()
    second.close()


def test_a_writer_waits_for_another_writer(db_path: Path) -> None:
    """BEGIN IMMEDIATE + busy timeout: the second writer waits, nothing is lost."""
    first = Store(db_path)
    second = Store(db_path, timeout=10)
    done = threading.Event()
    errors: list[BaseException] = []

    def write() -> None:
        try:
            second.set_state("counter", 2, now=2.0)
        except BaseException as exc:
            errors.append(exc)
        done.set()

    with first.transaction() as db:
        db.execute("INSERT INTO kv VALUES ('counter', '1', 1.0)")
        thread = threading.Thread(target=write)
        thread.start()
        assert not done.wait(0.3)  # blocked behind the open write transaction
    assert done.wait(10)
    thread.join(10)
    assert errors == []
    assert first.get_state("counter") == 2
    first.close()
    second.close()


def test_a_failed_transaction_rolls_back(db_path: Path) -> None:
    store = Store(db_path)
    with pytest.raises(RuntimeError), store.transaction() as db:
        db.execute("INSERT INTO kv VALUES ('x', '1', 1.0)")
        raise RuntimeError("boom")
    assert store.get_state("x") is None
    assert not store.db.in_transaction
    store.close()


# --------------------------------------------------------------------------- GPU minutes


def gpu(index: int, util: float | None, *, busy: bool = False, memory: float = 1000.0,
        power: float | None = 100.0) -> GpuSample:
    procs = [GpuProcess(4242, "ana", "python train.py", 900.0)] if busy else []
    return GpuSample(index=index, name="NVIDIA H100 80GB HBM3", uuid=f"GPU-{index}",
                     utilization=util, memory_used_mib=memory, memory_total_mib=81559.0,
                     temperature_c=50.0, power_w=power, power_limit_w=700.0, processes=procs)


def host(name: str, t: float, *gpus: GpuSample) -> HostSample:
    return HostSample(host=name, time=t - 0.5, cpu_percent=1.0, memory_used_mib=1.0,
                      memory_total_mib=2.0, load1=0.1, gpus=list(gpus), received=t)


def test_minutes_are_written_when_they_close(db_path: Path) -> None:
    store = Store(db_path)
    agg = MinuteAggregator(store)
    # Minute 100 (t = 6000..6059): GPU 0 runs a job at 80 %, GPU 1 sits at 1 %.
    agg.add(host("a", 6000, gpu(0, 80, busy=True, memory=2000), gpu(1, 1)), hourly_cost=6.0)
    agg.add(host("a", 6030, gpu(0, 60, busy=True, memory=4000), gpu(1, 3)), hourly_cost=6.0)
    assert store.query("SELECT * FROM gpu_minutes") == []  # minute 100 is still open
    # Minute 101: GPU 0 busy without a process we could see (utilization only).
    agg.add(host("a", 6060, gpu(0, 40, power=None), gpu(1, 0)), hourly_cost=6.0)
    rows = store.query("SELECT * FROM gpu_minutes ORDER BY gpu_uuid")
    assert [(r["gpu_uuid"], r["minute"]) for r in rows] == [("GPU-0", 100), ("GPU-1", 100)]
    g0 = dict(rows[0])
    assert g0 == {"host": "a", "gpu_uuid": "GPU-0", "gpu_index": 0,
                  "gpu_name": "NVIDIA H100 80GB HBM3", "minute": 100, "samples": 2,
                  "util_avg": 70.0, "memory_avg_mib": 3000.0, "memory_total_mib": 81559.0,
                  "power_avg_w": 100.0, "busy": 1, "hourly_cost": 6.0, "gpus_on_host": 2}
    assert rows[1]["util_avg"] == 2.0 and rows[1]["busy"] == 0
    agg.add(host("a", 6090, gpu(0, 60, power=None), gpu(1, 2)), hourly_cost=6.0)
    # Host b: no cost known, one idle GPU, in minute 101 too.
    agg.add(host("b", 6070, gpu(0, 0)))
    agg.add(host("a", 6125, gpu(0, 99), gpu(1, 99)), hourly_cost=6.0)  # closes a's 101
    # ... and b's 101 too: minute 101 is over for everyone, even a host gone quiet.
    rows = store.query("SELECT * FROM gpu_minutes WHERE minute = 101 ORDER BY host, gpu_uuid")
    assert [(r["host"], r["gpu_uuid"]) for r in rows] == [("a", "GPU-0"), ("a", "GPU-1"),
                                                          ("b", "GPU-0")]
    assert rows[0]["util_avg"] == 50.0 and rows[0]["power_avg_w"] is None
    assert rows[0]["busy"] == 0 and rows[0]["samples"] == 2
    # At exit the open minutes are written too.
    assert agg.flush() == 2
    assert len(store.query("SELECT * FROM gpu_minutes")) == 7
    assert agg.flush() == 0
    store.close()


def test_gpu_hours_used_idle_and_idle_cost(db_path: Path) -> None:
    """Worked by hand: host a costs 6.00/h for 2 GPUs, so one GPU-minute costs 0.05.

    Minutes 100 and 101: GPU 0 is used (a process in 100, 50 % in 101), GPU 1 idles
    (2 % and 1 %, under the 5 % line): 2 used and 2 idle GPU-minutes, idle cost
    2 x 0.05 = 0.10 of a total 0.20. Host b (no cost) idles 1 minute. Minute 102 is
    outside [100, 102).
    """
    store = Store(db_path)
    agg = MinuteAggregator(store)
    samples = [
        host("a", 6000, gpu(0, 30, busy=True), gpu(1, 2)),
        host("a", 6060, gpu(0, 50), gpu(1, 1)),
        host("a", 6120, gpu(0, 100, busy=True), gpu(1, 100, busy=True)),
    ]
    for sample in samples:
        agg.add(sample, hourly_cost=6.0)
    agg.add(host("b", 6010, gpu(0, 0)))
    agg.flush()
    report = gpu_hours(store, 100, 102, idle_utilization=5.0)
    assert [r["host"] for r in report] == ["a", "b"]
    a, b = report
    assert a["used_hours"] == pytest.approx(2 / 60)
    assert a["idle_hours"] == pytest.approx(2 / 60)
    assert a["idle_cost"] == pytest.approx(0.10)
    assert a["cost"] == pytest.approx(0.20)
    assert b == {"host": "b", "used_hours": 0.0, "idle_hours": pytest.approx(1 / 60),
                 "idle_cost": 0.0, "cost": 0.0}
    # A stricter idle line: GPU 1's 2 % now counts as used in minute 100.
    strict = gpu_hours(store, 100, 102, idle_utilization=1.5)[0]
    assert strict["used_hours"] == pytest.approx(3 / 60)
    assert strict["idle_cost"] == pytest.approx(0.05)
    assert gpu_hours(store, 0, 100) == []
    store.close()


def test_an_aggregator_without_a_store_only_counts() -> None:
    agg = MinuteAggregator(None)
    agg.add(host("a", 6000, gpu(0, 1)))
    agg.add(host("a", 6060, gpu(0, 1)))
    assert agg.flush() == 0


def test_the_same_minute_written_twice_is_combined(db_path: Path) -> None:
    """A restart within a minute writes that minute again: averages weigh by samples."""
    store = Store(db_path)
    first = MinuteAggregator(store)
    for t, util in ((6000, 90), (6010, 90), (6020, 90)):
        first.add(host("a", t, gpu(0, util)), hourly_cost=6.0)
    first.flush()
    second = MinuteAggregator(store)
    second.add(host("a", 6050, gpu(0, 10)), hourly_cost=6.0)
    second.flush()
    (row,) = store.query("SELECT * FROM gpu_minutes")
    assert row["samples"] == 4
    assert row["util_avg"] == (3 * 90 + 10) / 4
    store.close()
