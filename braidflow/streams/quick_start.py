"""Two waits of faust-streaming 0.15 at a worker's start that braidflow's worker never needs.

- The table manager sleeps a second before it registers the tables' changelogs, so that
  tables an app defines after its start still make the first subscription; the consumer
  subscribes only once they are registered. braidflow defines every table before the worker
  starts (`create_app`, `Stats.attach`), so the second only delays the group join.
- A RocksDB store runs a full garbage collection whenever its table is rebalanced, even
  when it gives up no partition: seven tables, seven collections of the whole heap on the
  event loop, at every assignment (a tenth of a second each, several on a loaded machine).
  It collects only when it closed a partition's database, which is what the collection is
  for (the database is closed when its handle is freed).
"""

from __future__ import annotations

from typing import Any

from faust.stores.rocksdb import Store
from faust.tables.manager import TableManager


def patch_start_waits() -> None:
    """Take both waits out, for every app in this process (idempotent)."""
    if getattr(TableManager, "_braidflow_no_start_sleep", False):
        return

    async def on_start(self: Any) -> None:
        # Faust's own, without its `await self.sleep(1.0)` first.
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()

    TableManager.on_start = on_start
    TableManager._braidflow_no_start_sleep = True

    revoke_partitions = Store.revoke_partitions

    def revoke_open_partitions(self: Any, table: Any, tps: Any) -> None:
        topics = table.changelog_topic.topics
        if any(tp.topic in topics and tp.partition in self._dbs for tp in tps):
            revoke_partitions(self, table, tps)

    Store.revoke_partitions = revoke_open_partitions
