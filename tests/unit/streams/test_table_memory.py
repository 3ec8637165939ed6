"""RocksDB memory is sized per table and shared out among its partitions."""

from __future__ import annotations

from pathlib import Path

from braidflow.config import Settings
from braidflow.streams.app import create_app

MIB = 1024 * 1024


def options(tmp_path: Path, partitions: int) -> dict[str, int]:
    parts = create_app(Settings(partitions=partitions, data_dir=tmp_path / str(partitions)))
    return {t.name: t.options for t in (parts.executions, parts.timers, parts.waits)}


def test_more_partitions_get_smaller_databases_not_more_memory(tmp_path: Path) -> None:
    for table_options in options(tmp_path, 4).values():
        assert table_options["block_cache_size"] == 2 * MIB
        assert table_options["write_buffer_size"] == 2 * MIB
    for table_options in options(tmp_path, 32).values():
        assert table_options["block_cache_size"] * 32 == 8 * MIB
        assert table_options["write_buffer_size"] * 32 == 8 * MIB


def test_each_database_keeps_at_least_a_quarter_mebibyte(tmp_path: Path) -> None:
    # A mebibyte each: 32 partitions' databases held 155 MiB for 100,000 parked executions.
    for table_options in options(tmp_path, 1000).values():
        assert table_options["block_cache_size"] == MIB // 4
        assert table_options["write_buffer_size"] == MIB // 4


def test_a_table_s_database_opened_again_keeps_its_block_cache(tmp_path: Path) -> None:
    parts = create_app(Settings(partitions=32, data_dir=tmp_path))
    store = parts.executions.data
    first = store.rocksdb_options.open(tmp_path / "again.db")
    first[b"row"] = b"kept"
    assert first.property_int_value("rocksdb.block-cache-capacity") == MIB // 4
    first.close()
    # rocksdict alone reads the options back from the database's files, with an 8 MiB cache.
    again = store.rocksdb_options.open(tmp_path / "again.db")
    assert again.property_int_value("rocksdb.block-cache-capacity") == MIB // 4
    assert again.property_int_value("rocksdb.cur-size-all-mem-tables") is not None
    assert again[b"row"] == b"kept"
    again.close()
