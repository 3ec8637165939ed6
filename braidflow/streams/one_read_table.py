"""A Faust table whose `get` reads its store once.

Faust's `Table.get` is `Mapping.get`: `table[key]`, which asks the store whether it holds
the key and then reads it, two RocksDB lookups for one row; the orchestrator reads each
execution's row once a step (docs/performance-history.md, "The orchestrator's own CPU per step").
"""

from __future__ import annotations

from typing import Any

import faust


class OneReadTable(faust.Table):
    """`faust.Table`, but `get` reads the row once (a missing key reads as `default`)."""

    def get(self, key: Any, default: Any = None) -> Any:
        self.on_key_get(key)
        try:
            return self.data[key]
        except KeyError:
            if self.default is not None:
                # As `__missing__` gives it, for a table made with a default.
                return self.default()
            return default
