"""A memory report splits a worker's resident memory: RocksDB's, the Python heap's top sites."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import pytest

from braidflow.runtime.memory_report import ENV_DIR, from_env, report, rocksdb_view
from braidflow.runtime.worker import QuietWorker

SMAPS_ROLLUP = """\
55d0c0000000-7ffd00000000 ---p 00000000 00:00 0                          [rollup]
Rss:              204800 kB
Shared_Clean:      20480 kB
Private_Dirty:    184320 kB
Anonymous:        184320 kB
Swap:                  0 kB
"""


class Database:
    def __init__(self, **properties: int) -> None:
        self._properties = properties

    def property_int_value(self, name: str) -> int | None:
        return self._properties.get(name)


def test_rocksdb_memory_is_summed_over_each_tables_partitions() -> None:
    mib = 2**20
    view = rocksdb_view(
        {
            "executions": [
                Database(**{"rocksdb.cur-size-all-mem-tables": 3 * mib}),
                Database(**{"rocksdb.cur-size-all-mem-tables": mib}),
            ],
            "timers": [Database(**{"rocksdb.block-cache-usage": 5 * mib})],
        }
    )
    assert view["executions"]["memtables"] == 4 * mib
    assert view["executions"]["block cache"] == 0
    assert view["timers"]["block cache"] == 5 * mib


def test_a_report_names_resident_memory_rocksdb_and_the_top_python_sites() -> None:
    tracemalloc.start()
    try:
        held = [bytearray(1024) for _ in range(1000)]
        text = report(SMAPS_ROLLUP, tracemalloc.take_snapshot(), {"timers": {"memtables": 2**20}})
    finally:
        tracemalloc.stop()
    assert len(held) == 1000
    assert "Rss                   200.0 MiB" in text
    assert "Anonymous             180.0 MiB" in text
    assert "rocksdb timers               memtables 1.0 MiB" in text
    assert "test_memory_report.py:" in text.split("top 30 Python allocation sites:")[1]


def test_a_report_is_written_when_asked_for(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENV_DIR, str(tmp_path / "reports"))
    write = from_env(lambda: {"timers": [Database()]})
    assert write is not None
    try:
        written = write()
    finally:
        tracemalloc.stop()
    assert written.parent == tmp_path / "reports"
    assert "rocksdb timers" in written.read_text()


def test_no_report_unless_asked_for(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_DIR, raising=False)
    assert from_env(dict) is None


def test_sigusr2_writes_the_report_in_place_of_fausts_debugger() -> None:
    worker = QuietWorker.__new__(QuietWorker)
    written: list[bool] = []
    worker.memory_report = lambda: written.append(True)
    worker._on_sigusr2()
    assert written == [True]
