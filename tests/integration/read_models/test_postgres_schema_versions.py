"""An execution index in PostgreSQL made by an older version is brought to this one, as a
SQLite file is by its `user_version`: one from before the resumptions reads the topic again
(the event bus then shows the waits events resumed before), and the input becomes `jsonb`,
searched through a GIN index. PostgreSQL keeps no `user_version`: the schema stores its
version, and one made before it did is known by its tables."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from aiokafka import TopicPartition

from braidflow.connectors.execution_index import ExecutionIndex
from braidflow.connectors.execution_search import ExecutionSearch, InputMatch
from braidflow.connectors.read_model_db import PostgresLocation, read_model_location
from braidflow.engine.messages import LifecycleEvent

POSITIONS = {TopicPartition("bf.lifecycle", 0): 3}
PAID = {"specversion": "1.0", "id": "pay-1", "type": "order.paid", "source": "/shop"}


def started(execution_id: str) -> LifecycleEvent:
    return LifecycleEvent(
        f"{execution_id}/started", "workflow.started", execution_id, "orders", 1, 1_000,
        data={"input": {"customer": {"name": "ada"}}, "event": None},
    )  # fmt: skip


def resumed(execution_id: str) -> LifecycleEvent:
    return LifecycleEvent(
        f"{execution_id}/wait/completed", "node.completed", execution_id, "orders", 1, 2_000,
        node_id="wait", attempt=1, data=PAID,
    )  # fmt: skip


@pytest.fixture
def location(read_model_url: str, tmp_path: Path) -> PostgresLocation:
    found = read_model_location(read_model_url, tmp_path, f"t{uuid.uuid4().hex[:10]}", "m")
    assert isinstance(found, PostgresLocation)
    return found


@pytest.fixture
def older(location: PostgresLocation) -> Iterator[psycopg.Connection[object]]:
    """An index with one execution and positions, then taken back to how version 5 made
    it: the input as text, no GIN index, no version stored."""
    index = ExecutionIndex(location)
    index.apply_many([started("e1")], POSITIONS)
    index.close()
    with psycopg.connect(location.url, autocommit=True) as conn:
        conn.execute(f'SET search_path TO "{location.schema}"')
        conn.execute("DROP INDEX IF EXISTS executions_by_input")
        conn.execute("ALTER TABLE executions ALTER COLUMN input TYPE text")
        conn.execute("DROP TABLE IF EXISTS read_model_facts")
        yield conn


def ada(index: ExecutionIndex) -> list[str]:
    search = ExecutionSearch(inputs=(InputMatch(("customer", "name"), "ada"),))
    return [e["execution_id"] for e in index.list("orders", search=search)]


def input_type(conn: psycopg.Connection[object]) -> object:
    query = (
        "SELECT data_type FROM information_schema.columns WHERE table_schema ="
        " current_schema() AND table_name = 'executions' AND column_name = 'input'"
    )
    row = conn.execute(query).fetchone()
    assert row is not None
    return row[0]


def test_a_schema_from_before_resumptions_reads_the_topic_again_keeping_its_rows(
    older: psycopg.Connection[object], location: PostgresLocation
) -> None:
    older.execute("DROP TABLE resumptions")  # as version 4 made it
    index = ExecutionIndex(location)
    try:
        assert index.positions() == {}
        assert ada(index) == ["e1"]
        index.apply(resumed("w1"))
        assert [r["execution_id"] for r in index.recent_events()[1]] == ["w1"]
        assert input_type(older) == "jsonb"
    finally:
        index.close()
    rereading = ExecutionIndex(location)
    rereading.apply_many([], POSITIONS)
    rereading.close()
    restarted = ExecutionIndex(location)
    try:
        assert restarted.positions() == POSITIONS  # read again once, not at every start
    finally:
        restarted.close()


def test_a_schema_of_version_5_keeps_its_positions_and_gains_the_jsonb_input(
    older: psycopg.Connection[object], location: PostgresLocation
) -> None:
    index = ExecutionIndex(location)
    try:
        assert index.positions() == POSITIONS
        assert input_type(older) == "jsonb"
        assert ada(index) == ["e1"]
        # A table this small is read whole unless sequential scans are priced out.
        index.db.execute("SET enable_seqscan = off")
        plan = index.db.execute(
            "EXPLAIN SELECT execution_id FROM executions WHERE input @> ?::jsonb",
            ('{"customer": {"name": "ada"}}',),
        )
        assert "executions_by_input" in " ".join(row[0] for row in plan)
    finally:
        index.close()
