"""An index that counts what its projection gives it to store, to tell a resume from a
re-read (`class CountingIndex(Counting, ExecutionIndex)`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from aiokafka import TopicPartition


class Counting:
    """Mixed in before a read model's index class: `applied` counts the records or events
    its `apply_many` stored."""

    applied = 0

    def apply_many(
        self, items: Iterable[Any], positions: Mapping[TopicPartition, int] | None = None
    ) -> None:
        items = list(items)
        super().apply_many(items, positions)
        self.applied += len(items)
