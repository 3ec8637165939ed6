"""Fixtures of the recovery tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from suite_broker import SuiteBroker
from workers import WorkerProcess


@pytest.fixture
def pair(broker: SuiteBroker, prefix: str, tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    """Two workers of one deployment (same prefix), each with its own state and API port."""
    workers = [
        WorkerProcess(broker, prefix, tmp_path / name / "data", tmp_path / f"{name}.log")
        for name in ("first", "second")
    ]
    try:
        for worker in workers:
            worker.start()
        # Both ready means one group generation holds both (the second is ready only once it
        # has partitions); asking the first again covers its recovery in that generation.
        for worker in (*workers, *workers):
            worker.wait_ready()
        yield workers
    finally:
        for worker in workers:
            worker.stop()
