"""The tables' `get` reads a row with one store lookup, not two, and in an event straight from
the partition's database (`streams/one_read_table.py`, `streams/quick_changelog.py`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from braidflow.config import Settings
from braidflow.streams.app import create_app
from braidflow.streams.event_scope import acting_for


class CountedStore(dict[bytes, bytes]):
    """A table's store that counts the lookups made of it."""

    def __init__(self) -> None:
        super().__init__()
        self.lookups = 0

    def __getitem__(self, key: bytes) -> bytes:
        self.lookups += 1
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self.lookups += 1
        return super().__contains__(key)


def test_a_row_is_read_with_one_lookup_and_a_missing_one_reads_as_none(tmp_path: Path) -> None:
    executions = create_app(Settings(data_dir=tmp_path)).executions
    store = CountedStore()
    store[b"e1"] = b"row"
    executions._data = store

    assert executions.get(b"e1") == b"row"
    assert store.lookups == 1
    assert executions.get(b"e2") is None
    assert executions.get(b"e2", b"x") == b"x"
    assert store.lookups == 3


class Message:
    topic = "transitions"
    partition = 2


class Event:
    message = Message()


def rocksdb_table(tmp_path: Path) -> Any:
    """The executions table on Faust's own RocksDB store, its source topic checked already."""
    executions = create_app(Settings(data_dir=tmp_path, partitions=4)).executions
    executions._verified_source_topics_for_partitions.add(Message.topic)
    return executions


def test_in_an_event_a_row_is_read_from_its_partition_s_database_as_faust_s_store_reads_it(
    tmp_path: Path,
) -> None:
    executions = rocksdb_table(tmp_path)
    store = executions.data
    with acting_for(Event()):  # type: ignore[arg-type]
        executions[b"e1"] = b"row"
        assert store._db_for_partition(Message.partition)[b"e1"] == b"row"
        assert store[b"e1"] == b"row"  # Faust's own read, through its serializers
        assert executions.get(b"e1") == b"row"
        assert executions.get(b"e2", b"x") == b"x"
        del executions[b"e1"]
        assert executions.get(b"e1") is None
        assert b"e1" not in store
    for other in (0, 1, 3):
        assert store._db_for_partition(other).get(b"e1") is None


def test_in_an_event_a_row_is_read_and_written_without_faust_s_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    executions = rocksdb_table(tmp_path)

    def refused(*args: Any) -> Any:
        raise AssertionError("went through Faust's store")

    for name in ("_get", "_set", "_del", "_encode_key", "_encode_value", "_decode_value"):
        monkeypatch.setattr(executions.data, name, refused)
    with acting_for(Event()):  # type: ignore[arg-type]
        executions[b"e1"] = b"row"
        assert executions.get(b"e1") == b"row"
        del executions[b"e1"]
        assert executions.get(b"e1") is None


def test_outside_an_event_a_row_is_read_through_faust_s_store(tmp_path: Path) -> None:
    executions = rocksdb_table(tmp_path)
    with acting_for(Event()):  # type: ignore[arg-type]
        executions[b"e1"] = b"row"
    # As the API reads it: Faust's store finds the partition that holds the key.
    assert executions.get(b"e1") == b"row"
    assert executions.get(b"e2") is None
