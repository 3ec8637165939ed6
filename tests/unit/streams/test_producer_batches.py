"""Faust's producer holds a fan-out's state rows in one batch a partition, not 16 KiB of them."""

from __future__ import annotations

from pathlib import Path

from braidflow.config import Settings
from braidflow.streams.app import create_app

STATE_ROW = b"s" * 1_100
"""About a state row of the fan-out bench's executions (docs/performance-history.md,
"Fewer, fuller produce requests")."""


async def test_a_partition_batch_takes_a_hundred_state_rows(tmp_path: Path) -> None:
    parts = create_app(Settings(data_dir=tmp_path))
    producer = parts.app.producer._new_producer()  # type: ignore[attr-defined]
    batch = producer.create_batch()
    taken = [batch.append(key=b"e", value=STATE_ROW, timestamp=None) for _ in range(100)]
    await producer.stop()
    assert None not in taken


async def test_a_batch_never_outgrows_the_largest_record(tmp_path: Path) -> None:
    parts = create_app(Settings(data_dir=tmp_path, max_record_bytes=20_000))
    producer = parts.app.producer._new_producer()  # type: ignore[attr-defined]
    batch = producer.create_batch()
    taken = [batch.append(key=b"e", value=STATE_ROW, timestamp=None) for _ in range(100)]
    await producer.stop()
    assert 0 < taken.index(None) < 20
