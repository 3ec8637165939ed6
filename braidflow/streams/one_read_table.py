"""A Faust table whose `get` reads its store once, from the database of the event's partition.

Faust's `Table.get` is `Mapping.get`: `table[key]`, which asks the store whether it holds
the key and then reads it, two RocksDB lookups for one row; the orchestrator reads each
execution's row once a step (docs/performance-history.md, "The orchestrator's own CPU per step").

Even one read went through four layers of Faust's store: the serializer registry twice (for
raw bytes, which it hands back as they are), the current event looked up again, and the
store's key index (an `LRUCache` of key to partition, 1,000 keys) written on every hit. A
row of a table written while iterating a stream lives in the database of the event's
partition, which is where Faust's store reads it too; so while an event is being handled,
a raw table's row is read from that database directly (`event_database`). The key index
only serves reads and deletes made outside an event (the API's), which search each
partition's database for a key not in it: they are rare, and with 1,000 keys the index
missed most executions of a loaded worker anyway. Nor is Faust's monitor told of a row read
there (its sensors' `on_table_get`, a count per table): nothing reads that count, Faust's web
views being off (`streams/app.py`).
"""

from __future__ import annotations

from typing import Any

import faust
from faust.stores.rocksdb import Store as RocksDBStore
from faust.streams import current_event


class OneReadTable(faust.Table):
    """`faust.Table`, but `get` reads the row once (a missing key reads as `default`)."""

    _store_checked: Any = None
    _store_direct = False

    def get(self, key: Any, default: Any = None) -> Any:
        database = self.event_database(key)
        if database is not None:
            value = database.get(key)
        else:
            self.on_key_get(key)
            try:
                return self.data[key]
            except KeyError:
                value = None
        if value is None:
            if self.default is not None:
                # As `__missing__` gives it, for a table made with a default.
                return self.default()
            return default
        return value

    def event_database(self, key: Any) -> Any:
        """The database of the partition of the event being handled, where Faust's store
        reads and writes the row of `key`; None when the row must go through the store (no
        event, a key not bytes, a store or table Faust would serialize or route otherwise)."""
        if type(key) is not bytes or not self._store_is_direct():
            return None
        event = current_event()
        if event is None:
            return None
        return self.data._db_for_partition(event.message.partition)

    def _store_is_direct(self) -> bool:
        store = self.data
        if store is not self._store_checked:
            self._store_checked = store
            self._store_direct = (
                isinstance(store, RocksDBStore)
                and not self.use_partitioner
                and not self.is_global
                and self.window is None
                and self.key_serializer == "raw"
                and self.value_serializer == "raw"
            )
        return self._store_direct
