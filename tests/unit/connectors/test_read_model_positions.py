"""The positions a read model's batch is claimed with, on a worker's own SQLite file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import TopicPartition

from braidflow.connectors.read_model_db import ReadModel

LIFECYCLE = [TopicPartition("p.lifecycle", partition) for partition in range(4)]


@pytest.fixture
def model(tmp_path: Path) -> Iterator[ReadModel]:
    model = ReadModel(tmp_path / "model.sqlite", "")
    yield model
    model.close()


def test_a_claim_yields_what_was_stored_and_zero_for_a_partition_never_stored(
    model: ReadModel,
) -> None:
    with model.storing({LIFECYCLE[1]: 7, TopicPartition("p.other", 1): 3}):
        pass
    with model.claimed(LIFECYCLE) as stored:
        assert stored == {LIFECYCLE[0]: 0, LIFECYCLE[1]: 7, LIFECYCLE[2]: 0, LIFECYCLE[3]: 0}


def test_a_claim_on_sqlite_reads_the_positions_once_per_topic(model: ReadModel) -> None:
    # Two statements per partition were most of what the executions read model spent on a
    # batch of lifecycle events; the worker's own file has no row another worker could hold.
    with model.storing({tp: 5 for tp in LIFECYCLE}):
        pass
    statements: list[str] = []
    assert model.db.sqlite is not None
    model.db.sqlite.set_trace_callback(statements.append)
    with model.claimed(LIFECYCLE) as stored:
        pass
    model.db.sqlite.set_trace_callback(None)
    assert stored == {tp: 5 for tp in LIFECYCLE}
    assert [s for s in statements if "positions" in s] == [
        "SELECT partition, next_offset FROM positions WHERE topic = 'p.lifecycle'"
    ]
