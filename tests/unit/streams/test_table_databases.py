"""A table's RocksDB databases, opened as Faust opens them, write without a write-ahead log
(the changelog is the log), and a database that lost its unflushed writes still holds a
consistent earlier state. Faust's `RocksDBOptions.open` is driven on a real database."""

from __future__ import annotations

from pathlib import Path

from faust.stores.rocksdb import RocksDBOptions
from rocksdict import Options, Rdict

from braidflow.streams.table_databases import patch_table_databases


def _log_bytes(path: Path) -> int:
    return sum(log.stat().st_size for log in path.glob("*.log"))


def test_a_table_database_writes_its_rows_without_a_write_ahead_log(tmp_path: Path) -> None:
    patch_table_databases()
    path = tmp_path / "executions-0.db"
    db = RocksDBOptions(write_buffer_size=1 << 20).open(path)
    for n in range(200):
        db.put(f"execution-{n}".encode(), b"state" * 40)
    assert db.get(b"execution-7") == b"state" * 40
    assert _log_bytes(path) == 0


def test_the_same_writes_with_a_log_fill_it(tmp_path: Path) -> None:
    # The measure above can see a log: RocksDB writes one for these rows by default.
    db = Rdict(str(tmp_path), Options(raw_mode=True))
    for n in range(200):
        db.put(f"execution-{n}".encode(), b"state" * 40)
    assert _log_bytes(tmp_path) > 200 * 200


def test_writes_flushed_before_a_crash_are_read_back(tmp_path: Path) -> None:
    patch_table_databases()
    path = tmp_path / "executions-0.db"
    db = RocksDBOptions(write_buffer_size=1 << 20).open(path)
    db.put(b"execution-1", b"flushed")
    db.flush()
    db.put(b"execution-2", b"in the write buffer only")
    # What a killed worker leaves: the files as they are, the write buffer gone.
    reopened = RocksDBOptions().open(_copy(path, tmp_path / "after-kill.db"))
    assert reopened.get(b"execution-1") == b"flushed"
    assert reopened.get(b"execution-2") is None
    db.close()
    reopened.close()


def _copy(source: Path, target: Path) -> Path:
    target.mkdir()
    for file in source.iterdir():
        (target / file.name).write_bytes(file.read_bytes())
    return target
