"""Finding executions in the index by status, time, input field and triggering event.

The same tests run against PostgreSQL (tests/integration/read_models/
test_read_models_on_postgres.py): both stores answer alike."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition

from braidflow.connectors.execution_index import ExecutionIndex
from braidflow.connectors.execution_search import ExecutionSearch, InputMatch
from braidflow.engine.messages import LifecycleEvent

NOW = 1_700_000_000_000


@pytest.fixture
def index(tmp_path: Path) -> Iterator[ExecutionIndex]:
    index = ExecutionIndex(tmp_path / "executions.sqlite")
    yield index
    index.close()


def started(
    execution_id: str, at: int, input_: Any, event: dict[str, str] | None = None
) -> LifecycleEvent:
    return LifecycleEvent(
        id=f"{execution_id}/started",
        type="workflow.started",
        execution_id=execution_id,
        workflow_id="orders",
        workflow_version=1,
        at=at,
        data={"input": input_, "event": event},
    )


def failed(execution_id: str, at: int) -> LifecycleEvent:
    return LifecycleEvent(
        f"{execution_id}/failed", "workflow.failed", execution_id, "orders", 1, at
    )


def placed(n: int) -> dict[str, str]:
    return {"id": f"evt-{n}", "type": "order.placed", "source": "/shop"}


@pytest.fixture
def orders(index: ExecutionIndex) -> ExecutionIndex:
    index.apply_many(
        [
            started("o1", NOW, {"customer": {"name": "ada"}, "amount": 5, "rush": True}),
            started("o2", NOW + 10, {"customer": {"name": "bob"}, "amount": 5}, placed(2)),
            failed("o2", NOW + 15),
            started("o3", NOW + 20, {"customer": {"name": "ada"}, "amount": "5"}, placed(3)),
            started("o4", NOW + 30, {"customer": {"name": "Zoë"}, "note": 'say "hi"'}),
            started("o5", NOW + 40, ["not", "an", "object"]),
            started(
                "o6", NOW + 50, None, {"id": "evt-6", "type": "order.cancelled", "source": "/"}
            ),
        ]
    )
    return index


def found(index: ExecutionIndex, **search: Any) -> list[str]:
    return [e["execution_id"] for e in index.list("orders", search=ExecutionSearch(**search))]


def field(path: str, value: Any) -> tuple[InputMatch]:
    return (InputMatch(tuple(path.split(".")), value),)


def test_no_search_lists_every_execution(orders: ExecutionIndex) -> None:
    assert found(orders) == ["o6", "o5", "o4", "o3", "o2", "o1"]


def test_executions_are_found_by_status(orders: ExecutionIndex) -> None:
    assert found(orders, status="failed") == ["o2"]


def test_executions_are_found_by_when_they_started_both_ends_included(
    orders: ExecutionIndex,
) -> None:
    assert found(orders, from_ms=NOW + 10, to_ms=NOW + 30) == ["o4", "o3", "o2"]
    assert found(orders, from_ms=NOW + 45) == ["o6"]
    assert found(orders, to_ms=NOW) == ["o1"]


def test_executions_are_found_by_a_nested_input_field(orders: ExecutionIndex) -> None:
    assert found(orders, inputs=field("customer.name", "ada")) == ["o3", "o1"]
    assert found(orders, inputs=field("customer.name", "Zoë")) == ["o4"]
    assert found(orders, inputs=field("note", 'say "hi"')) == ["o4"]


def test_an_input_field_matches_its_json_type(orders: ExecutionIndex) -> None:
    assert found(orders, inputs=field("amount", 5)) == ["o2", "o1"]
    assert found(orders, inputs=field("amount", "5")) == ["o3"]
    assert found(orders, inputs=field("rush", True)) == ["o1"]
    assert found(orders, inputs=field("missing", None)) == []


def test_input_fields_and_other_conditions_all_hold(orders: ExecutionIndex) -> None:
    both = (*field("customer.name", "bob"), *field("amount", 5))
    assert found(orders, inputs=both) == ["o2"]
    assert found(orders, inputs=both, status="running") == []


def test_executions_are_found_by_their_triggering_event(orders: ExecutionIndex) -> None:
    assert found(orders, event_type="order.placed") == ["o3", "o2"]
    assert found(orders, event_id="evt-6") == ["o6"]
    assert found(orders, event_type="order.placed", event_id="evt-6") == []


def test_the_input_of_a_start_of_the_older_shape_is_searched_too(index: ExecutionIndex) -> None:
    index.apply(
        LifecycleEvent("old/started", "workflow.started", "old", "orders", 1, NOW, data={"n": 1})
    )
    assert found(index, inputs=field("n", 1)) == ["old"]


def test_an_index_from_before_inputs_gains_the_column_and_reads_the_topic_again(
    tmp_path: Path,
) -> None:
    path = tmp_path / "executions.sqlite"
    index = ExecutionIndex(path)
    index.apply_many([started("o1", NOW, {"n": 1})], {TopicPartition("bf.lifecycle", 0): 3})
    index.close()
    with sqlite3.connect(path) as db:
        # As version 3 left it: no input column.
        db.execute("ALTER TABLE executions DROP COLUMN input")
        db.execute("PRAGMA user_version = 3")
    db.close()
    index = ExecutionIndex(path)
    try:
        assert index.positions() == {}
        assert found(index) == ["o1"]
        index.apply(started("o1", NOW, {"n": 1}))
        assert found(index, inputs=field("n", 1)) == ["o1"]
    finally:
        index.close()
