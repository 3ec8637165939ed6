"""What each event started or resumed, as the execution index tells it (`recent_events`) and
the event bus groups it (`by_event`), driven with plain lifecycle events."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition

from braidflow.connectors.api.event_bus import by_event
from braidflow.connectors.execution_index import ExecutionIndex, concerns_index
from braidflow.connectors.projection import Record
from braidflow.engine.messages import LifecycleEvent
from braidflow.schemas.lifecycle_events import NODE_TYPE_HEADER, lifecycle_type

NOW = 1_700_000_000_000
PAID = {
    "specversion": "1.0",
    "id": "pay-1",
    "type": "order.paid",
    "source": "/shop",
    "data": {"order": 7},
}


@pytest.fixture
def index(tmp_path: Path) -> Iterator[ExecutionIndex]:
    index = ExecutionIndex(tmp_path / "executions.sqlite")
    yield index
    index.close()


def started(
    execution_id: str, workflow_id: str, event: Any = None, at: int = NOW
) -> LifecycleEvent:
    return LifecycleEvent(
        f"{execution_id}/started",
        "workflow.started",
        execution_id,
        workflow_id,
        1,
        at,
        data={"input": {}, "event": event},
    )


def node_completed(execution_id: str, data: Any, at: int = NOW + 10) -> LifecycleEvent:
    return LifecycleEvent(
        f"{execution_id}/wait/completed",
        "node.completed",
        execution_id,
        "waiter",
        1,
        at,
        node_id="wait",
        attempt=1,
        data=data,
    )


def test_a_wait_ended_by_an_event_is_listed_as_resumed_by_it(index: ExecutionIndex) -> None:
    index.apply_many([started("w1", "waiter"), node_completed("w1", PAID)])
    index.apply(started("s1", "starter", PAID, at=NOW + 5))
    started_runs, resumed = index.recent_events()
    assert resumed == [
        {
            "event": {"id": "pay-1", "type": "order.paid", "source": "/shop"},
            "execution_id": "w1",
            "workflow_id": "waiter",
            "workflow_version": 1,
            "status": "running",
            "at": "2023-11-14T22:13:20.010Z",
            "node_id": "wait",
        }
    ]
    assert [r["execution_id"] for r in started_runs] == ["s1"]
    [event] = by_event(started_runs, resumed)
    assert (event["id"], event["at"]) == ("pay-1", "2023-11-14T22:13:20.010Z")
    assert [r["execution_id"] for r in event["started"]] == ["s1"]
    assert [r["execution_id"] for r in event["resumed"]] == ["w1"]


def test_a_completion_that_holds_no_event_is_no_resumption(index: ExecutionIndex) -> None:
    """A wait's timeout, or a task whose output merely has an id and a type."""
    index.apply(node_completed("w1", {"timed_out": True}))
    index.apply(node_completed("w2", {"id": "x", "type": "y"}))
    index.apply(node_completed("w1", PAID))
    index.apply(node_completed("w1", PAID))
    assert [r["execution_id"] for r in index.recent_events()[1]] == ["w1"]


def test_recent_events_keep_to_the_tenant_and_the_workflows_asked(index: ExecutionIndex) -> None:
    index.apply(node_completed("w1", PAID))
    assert index.recent_events(tenant="other") == ([], [])
    assert index.recent_events(workflows=["starter"]) == ([], [])
    assert index.recent_events(workflows=[]) == ([], [])
    assert len(index.recent_events(workflows=["waiter"])[1]) == 1


def record(node_type: bytes) -> Record:
    headers = [
        ("ce_type", lifecycle_type("node.completed").encode()),
        (NODE_TYPE_HEADER, node_type),
    ]
    return Record("lifecycle", 0, 0, None, b"", headers)


def test_the_index_reads_the_ends_of_waits_for_events_and_skips_other_nodes() -> None:
    assert concerns_index(record(b"wait_event"))
    assert concerns_index(record(b"approval"))
    assert not concerns_index(record(b"task"))


def test_an_index_from_before_resumptions_reads_the_topic_again(tmp_path: Path) -> None:
    path = tmp_path / "executions.sqlite"
    index = ExecutionIndex(path)
    index.apply_many([started("s1", "starter", PAID)], {TopicPartition("bf.lifecycle", 0): 3})
    index.close()
    with sqlite3.connect(path) as db:
        # As version 4 left it: no resumptions.
        db.execute("DROP TABLE resumptions")
        db.execute("PRAGMA user_version = 4")
    db.close()
    index = ExecutionIndex(path)
    try:
        assert index.positions() == {}
        index.apply(node_completed("w1", PAID))
        assert [r["execution_id"] for r in index.recent_events()[1]] == ["w1"]
    finally:
        index.close()
