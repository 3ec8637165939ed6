"""How a table's RocksDB databases are opened: with the table's options on every opening, and
writing without a write-ahead log. Both replace Faust's `RocksDBOptions.open` for rocksdict.

**The table's options, first opening or not.** rocksdict, opening a database that exists without
being told its column families, reads them from the database's OPTIONS file with
`Options.load_latest`, whose block cache is a new 8 MiB one: the options Faust passes
(`streams/app.rocksdb_options`, 256 KiB a partition at 32 partitions) held only for a database's
first opening. Every restarted worker had 32 times the block cache meant, per table, and filled
it: 57 MiB of the executions table's after firing 20,000 parked timers, where 8 MiB was meant.
Naming the default column family with the same options keeps them.

**No write-ahead log: the changelog is the log.** Every Faust table keeps its rows in Kafka (its
changelog topic) and in one local database per partition, which is a cache of the changelog: a
worker that takes a partition over, or starts on an empty disk, rebuilds it from the changelog
alone. RocksDB's log makes every put a `write` to a file as well: a 1 KiB row took 8.6 - 14 µs of
CPU with it and 2.7 - 5 without (the orchestrator writes a state row each step), for a
durability the changelog already gives. Without it, a worker killed loses the writes since its
database last flushed a write buffer (up to two write buffers a partition, `rocksdb_options`).
What it keeps is still consistent: buffers flush in the order of the writes, and the changelog
offset Faust notes in the same database (`set_persisted_offset`) is written after the rows it
covers, so recovery reads the changelog again from before the first lost write. A row that was
written locally but never reached the changelog is lost with it, which is what a worker taking
the partition over sees anyway: its transition (not committed yet) is applied again and sends
its records again, which every consumer, idempotent by id, takes as duplicates.

Pinned by tests/unit/streams/test_table_databases.py and test_table_memory.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import rocksdict
from faust.stores.rocksdb import RocksDBOptions

_faust_open = RocksDBOptions.open


def unlogged_writes() -> rocksdict.WriteOptions:
    """Write options of a database whose puts skip the write-ahead log."""
    options = rocksdict.WriteOptions()
    options.disable_wal = True
    return options


def _open_table_database(self: RocksDBOptions, path: Path, *, read_only: bool = False) -> Any:
    if not self.use_rocksdict:
        return _faust_open(self, path, read_only=read_only)
    options = self.as_options()
    access = (
        rocksdict.AccessType.read_write()
        if self.ttl is None
        else rocksdict.AccessType.with_ttl(self.ttl)
    )
    db = rocksdict.Rdict(
        str(path), options=options, column_families={"default": options}, access_type=access
    )
    db.set_read_options(rocksdict.ReadOptions())
    db.set_write_options(unlogged_writes())
    return db


def patch_table_databases() -> None:
    """Open Faust's rocksdict databases with their table's options, writing without a log."""
    RocksDBOptions.open = _open_table_database  # type: ignore[method-assign]
