"""The tables' `get` reads a row with one store lookup, not two (`streams/one_read_table.py`)."""

from __future__ import annotations

from pathlib import Path

from braidflow.config import Settings
from braidflow.streams.app import create_app


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
