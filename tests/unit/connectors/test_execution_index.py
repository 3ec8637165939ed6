"""The executions of a workflow as the index tells them, whatever order their events arrive in."""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import TopicPartition

from braidflow.connectors.execution_index import ExecutionIndex
from braidflow.engine.messages import LifecycleEvent, NodeError

NOW = 1_700_000_000_000
TICKET = {"id": "evt-1", "type": "ticket.resolved", "source": "/helpdesk", "subject": "T-9"}


@pytest.fixture
def index(tmp_path: Path) -> Iterator[ExecutionIndex]:
    index = ExecutionIndex(tmp_path / "executions.sqlite")
    yield index
    index.close()


def started(
    execution_id: str,
    at: int = NOW,
    workflow_id: str = "refund",
    data: Any = None,
    event: dict[str, Any] | None = None,
) -> LifecycleEvent:
    return LifecycleEvent(
        id=f"{execution_id}/started",
        type="workflow.started",
        execution_id=execution_id,
        workflow_id=workflow_id,
        workflow_version=2,
        at=at,
        data={"input": data, "event": event},
    )


def finished(
    execution_id: str, status: str = "completed", at: int = NOW + 1_000, workflow_id: str = "refund"
) -> LifecycleEvent:
    return LifecycleEvent(
        id=f"{execution_id}/{status}",
        type=f"workflow.{status}",
        execution_id=execution_id,
        workflow_id=workflow_id,
        workflow_version=2,
        at=at,
        error=NodeError("Boom", "it broke", "charge") if status == "failed" else None,
    )


def node_event(execution_id: str, type_: str = "node.completed") -> LifecycleEvent:
    return LifecycleEvent(
        id=f"{execution_id}/charge/{type_}",
        type=type_,
        execution_id=execution_id,
        workflow_id="refund",
        workflow_version=2,
        at=NOW + 500,
        node_id="charge",
        attempt=1,
        data={"ok": True},
    )


def test_a_started_execution_is_listed_as_running_with_its_trigger(
    index: ExecutionIndex,
) -> None:
    index.apply(started("e1", data={"amount": 5}, event=TICKET))
    assert index.list("refund") == [
        {
            "execution_id": "e1",
            "workflow_id": "refund",
            "workflow_version": 2,
            "status": "running",
            "started_at": "2023-11-14T22:13:20.000Z",
            "completed_at": None,
            "event": {"id": "evt-1", "type": "ticket.resolved", "source": "/helpdesk"},
            "error": None,
        }
    ]


def test_an_execution_started_without_an_event_has_none(index: ExecutionIndex) -> None:
    index.apply(started("e1", data={"amount": 5}))
    assert index.list("refund")[0]["event"] is None


def test_a_started_event_of_the_older_shape_carries_the_bare_input(
    index: ExecutionIndex,
) -> None:
    old = LifecycleEvent(
        id="e1/started",
        type="workflow.started",
        execution_id="e1",
        workflow_id="refund",
        workflow_version=1,
        at=NOW,
        data={"amount": 5, "event": {"id": "not-a-trigger"}},
    )
    index.apply(old)
    [execution] = index.list("refund")
    assert execution["status"] == "running"
    assert execution["event"] is None


@pytest.mark.parametrize("status", ["completed", "failed", "cancelled"])
def test_an_ended_execution_shows_how_and_when_it_ended(index: ExecutionIndex, status: str) -> None:
    index.apply_many([started("e1"), finished("e1", status)])
    [execution] = index.list("refund")
    assert execution["status"] == status
    assert execution["started_at"] == "2023-11-14T22:13:20.000Z"
    assert execution["completed_at"] == "2023-11-14T22:13:21.000Z"


def test_the_same_row_results_whatever_order_the_events_arrive_in(tmp_path: Path) -> None:
    events = [started("e1", event=TICKET), node_event("e1"), finished("e1", "failed")]
    results = []
    for n, order in enumerate(itertools.permutations(events)):
        index = ExecutionIndex(tmp_path / f"{n}.sqlite")
        index.apply_many(order)
        results.append(index.list("refund"))
        index.close()
    assert all(result == results[0] for result in results)
    assert results[0][0]["status"] == "failed"
    assert results[0][0]["started_at"] == "2023-11-14T22:13:20.000Z"
    assert results[0][0]["event"] == {
        "id": "evt-1",
        "type": "ticket.resolved",
        "source": "/helpdesk",
    }


def test_an_end_read_before_its_start_is_kept(index: ExecutionIndex) -> None:
    index.apply(finished("e1"))
    assert index.list("refund")[0]["status"] == "completed"
    index.apply(started("e1"))
    [execution] = index.list("refund")
    assert execution["status"] == "completed"
    assert execution["started_at"] == "2023-11-14T22:13:20.000Z"


def test_a_replayed_start_never_brings_an_ended_execution_back_to_running(
    index: ExecutionIndex,
) -> None:
    index.apply_many([started("e1"), finished("e1", "cancelled"), started("e1")])
    assert index.list("refund")[0]["status"] == "cancelled"


def test_applying_the_same_events_twice_changes_nothing(index: ExecutionIndex) -> None:
    events = [started("e1", event=TICKET), finished("e1"), started("e2", at=NOW + 5)]
    index.apply_many(events)
    first = index.list("refund")
    index.apply_many(events)
    assert index.list("refund") == first
    assert index.count("refund") == 2


def test_node_events_add_no_executions(index: ExecutionIndex) -> None:
    index.apply_many([node_event("e1", "node.started"), node_event("e1"), node_event("e2")])
    assert index.list("refund") == []
    assert index.count("refund") == 0


def test_executions_are_listed_newest_first_up_to_the_limit(index: ExecutionIndex) -> None:
    index.apply_many(started(f"e{n}", at=NOW + n * 1_000) for n in range(5))
    assert [e["execution_id"] for e in index.list("refund")] == ["e4", "e3", "e2", "e1", "e0"]
    assert [e["execution_id"] for e in index.list("refund", limit=2)] == ["e4", "e3"]


def test_the_status_filter_keeps_only_executions_in_that_status(index: ExecutionIndex) -> None:
    index.apply_many(
        [
            started("e1", at=NOW),
            started("e2", at=NOW + 1),
            started("e3", at=NOW + 2),
            finished("e1", "completed"),
            finished("e3", "failed"),
        ]
    )
    assert [e["execution_id"] for e in index.list("refund", status="running")] == ["e2"]
    assert [e["execution_id"] for e in index.list("refund", status="failed")] == ["e3"]
    assert index.list("refund", status="cancelled") == []


def test_each_workflow_lists_and_counts_only_its_own_executions(index: ExecutionIndex) -> None:
    index.apply_many(
        [started("e1"), started("e2", workflow_id="payout"), finished("e3", workflow_id="payout")]
    )
    assert [e["execution_id"] for e in index.list("refund")] == ["e1"]
    assert index.count("refund") == 1
    assert index.count("payout") == 2
    assert index.list("unknown") == []


def test_a_limit_below_one_is_refused(index: ExecutionIndex) -> None:
    with pytest.raises(ValueError, match="limit"):
        index.list("refund", limit=0)


def test_rows_and_positions_survive_reopening_the_file(tmp_path: Path) -> None:
    path = tmp_path / "executions.sqlite"
    index = ExecutionIndex(path)
    lifecycle = TopicPartition("bf.lifecycle", 0)
    index.apply_many([started("e1"), finished("e1")], {lifecycle: 7})
    index.close()
    reopened = ExecutionIndex(path)
    assert reopened.positions() == {lifecycle: 7}
    assert reopened.list("refund")[0]["status"] == "completed"
    reopened.close()


def test_a_reset_forgets_executions_and_positions(index: ExecutionIndex) -> None:
    index.apply_many([started("e1")], {TopicPartition("bf.lifecycle", 3): 12})
    index.reset()
    assert index.count("refund") == 0
    assert index.positions() == {}


def approval_started(
    execution_id: str,
    node_id: str = "sign-off",
    at: int = NOW + 100,
    workflow_id: str = "refund",
    department: str | None = "finance",
) -> LifecycleEvent:
    return LifecycleEvent(
        id=f"{execution_id}/{node_id}/1/node.started",
        type="node.started",
        execution_id=execution_id,
        workflow_id=workflow_id,
        workflow_version=2,
        at=at,
        node_id=node_id,
        attempt=1,
        data={
            "kind": "approval",
            "message": f"Refund {execution_id}?",
            "choices": ["approve", "reject"],
            "department": department,
            "timeout_at": "2023-11-15T22:13:20.000Z",
        },
    )


def node_ended(
    execution_id: str, type_: str = "node.completed", node_id: str = "sign-off"
) -> LifecycleEvent:
    return LifecycleEvent(
        id=f"{execution_id}/{node_id}/1/{type_}",
        type=type_,
        execution_id=execution_id,
        workflow_id="refund",
        workflow_version=2,
        at=NOW + 200,
        node_id=node_id,
        attempt=1,
        data={"choice": "approve"},
    )


def pending(index: ExecutionIndex, **filters: Any) -> list[tuple[str, str]]:
    return [(a["execution_id"], a["node_id"]) for a in index.pending_approvals(**filters)]


def test_an_approval_that_starts_waiting_is_pending_with_what_it_asks(
    index: ExecutionIndex,
) -> None:
    index.apply_many([started("e1"), approval_started("e1")])
    assert index.pending_approvals() == [
        {
            "execution_id": "e1",
            "node_id": "sign-off",
            "workflow_id": "refund",
            "workflow_version": 2,
            "message": "Refund e1?",
            "choices": ["approve", "reject"],
            "department": "finance",
            "timeout_at": "2023-11-15T22:13:20.000Z",
            "requested_at": "2023-11-14T22:13:20.100Z",
        }
    ]


@pytest.mark.parametrize(
    "type_", ["node.completed", "node.failed", "node.cancelled", "node.skipped"]
)
def test_the_end_of_its_node_ends_an_approval(index: ExecutionIndex, type_: str) -> None:
    index.apply_many([started("e1"), approval_started("e1"), approval_started("e2")])
    index.apply(node_ended("e1", type_))
    assert pending(index) == [("e2", "sign-off")]


@pytest.mark.parametrize("status", ["completed", "failed", "cancelled"])
def test_the_end_of_its_execution_ends_an_approval(index: ExecutionIndex, status: str) -> None:
    index.apply_many([started("e1"), approval_started("e1"), approval_started("e1", "second")])
    index.apply(finished("e1", status))
    assert pending(index) == []


def test_the_end_of_another_node_leaves_an_approval_pending(index: ExecutionIndex) -> None:
    index.apply_many([approval_started("e1"), node_ended("e1", node_id="charge")])
    assert pending(index) == [("e1", "sign-off")]


@pytest.mark.parametrize(
    "end", [node_ended("e1"), finished("e1", "cancelled")], ids=["node end", "execution end"]
)
def test_an_end_read_before_the_approval_started_wins(
    index: ExecutionIndex, end: LifecycleEvent
) -> None:
    index.apply(end)
    index.apply(approval_started("e1"))
    assert pending(index) == []
    index.apply(approval_started("e1"))
    assert pending(index) == []


@pytest.mark.parametrize(
    "end", [node_ended("e1"), finished("e1", "failed")], ids=["node end", "execution end"]
)
def test_approvals_end_the_same_whatever_order_the_events_arrive_in(
    tmp_path: Path, end: LifecycleEvent
) -> None:
    events = [started("e1"), approval_started("e1"), approval_started("e1", "other"), end]
    results = []
    for n, order in enumerate(itertools.permutations(events)):
        index = ExecutionIndex(tmp_path / f"{n}.sqlite")
        index.apply_many(order)
        results.append(index.pending_approvals())
        index.close()
    assert all(result == results[0] for result in results)
    expected = [] if end.type.startswith("workflow.") else [("e1", "other")]
    assert [(a["execution_id"], a["node_id"]) for a in results[0]] == expected


def test_an_approval_started_again_is_listed_once(index: ExecutionIndex) -> None:
    events = [started("e1"), approval_started("e1")]
    index.apply_many(events)
    first = index.pending_approvals()
    index.apply_many(events)
    assert index.pending_approvals() == first
    assert len(first) == 1


def test_other_nodes_starting_ask_for_no_approval(index: ExecutionIndex) -> None:
    task_input = LifecycleEvent(
        id="e1/charge/1/node.started",
        type="node.started",
        execution_id="e1",
        workflow_id="refund",
        workflow_version=2,
        at=NOW,
        node_id="charge",
        attempt=1,
        data={"kind": "refund", "amount": 5},
    )
    index.apply_many([task_input, node_event("e1", "node.started")])
    assert pending(index) == []


def test_an_approval_with_malformed_data_is_skipped(index: ExecutionIndex) -> None:
    malformed = approval_started("e1")
    data = {**malformed.data, "choices": "approve"}
    index.apply_many([dataclasses.replace(malformed, data=data), approval_started("e2")])
    assert pending(index) == [("e2", "sign-off")]


def test_pending_approvals_are_listed_oldest_first_up_to_the_limit(
    index: ExecutionIndex,
) -> None:
    index.apply_many(approval_started(f"e{n}", at=NOW + (5 - n) * 1_000) for n in range(5))
    assert [e for e, _ in pending(index)] == ["e4", "e3", "e2", "e1", "e0"]
    assert [e for e, _ in pending(index, limit=2)] == ["e4", "e3"]


def test_pending_approvals_are_filtered_by_workflow_and_department(
    index: ExecutionIndex,
) -> None:
    index.apply_many(
        [
            approval_started("e1", at=NOW + 1),
            approval_started("e2", at=NOW + 2, department="legal"),
            approval_started("e3", at=NOW + 3, department=None),
            approval_started("p1", at=NOW + 4, workflow_id="payout"),
        ]
    )
    assert [e for e, _ in pending(index, workflow_id="refund")] == ["e1", "e2", "e3"]
    assert [e for e, _ in pending(index, department="finance")] == ["e1", "p1"]
    assert [e for e, _ in pending(index, workflow_id="payout", department="finance")] == ["p1"]
    assert pending(index, workflow_id="payout", department="legal") == []


def test_a_limit_below_one_is_refused_for_approvals(index: ExecutionIndex) -> None:
    with pytest.raises(ValueError, match="limit"):
        index.pending_approvals(limit=0)


def test_a_reset_forgets_approvals(index: ExecutionIndex) -> None:
    index.apply_many([approval_started("e1"), node_ended("e2")])
    index.reset()
    index.apply(approval_started("e2"))
    assert pending(index) == [("e2", "sign-off")]


def test_an_index_from_before_approvals_reads_the_topic_again_keeping_its_rows(
    tmp_path: Path,
) -> None:
    path = tmp_path / "executions.sqlite"
    lifecycle = TopicPartition("bf.lifecycle", 0)
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.executescript(
            """
            CREATE TABLE executions (
                execution_id TEXT PRIMARY KEY, workflow_id TEXT NOT NULL,
                workflow_version INTEGER NOT NULL, status TEXT NOT NULL,
                started_at INTEGER NOT NULL, completed_at INTEGER, event_id TEXT,
                event_type TEXT, event_source TEXT, updated_at INTEGER NOT NULL
            );
            CREATE TABLE positions (
                topic TEXT NOT NULL, partition INTEGER NOT NULL, next_offset INTEGER NOT NULL,
                PRIMARY KEY (topic, partition)
            );
            """
        )
        db.execute(
            "INSERT INTO executions VALUES"
            " ('e1', 'refund', 2, 'completed', ?, ?, NULL, NULL, NULL, ?)",
            (NOW, NOW + 1_000, NOW + 1_000),
        )
        db.execute("INSERT INTO positions VALUES ('bf.lifecycle', 0, 7)")

    index = ExecutionIndex(path)
    assert index.positions() == {}
    assert index.list("refund")[0]["status"] == "completed"
    index.apply_many([approval_started("e1"), approval_started("e2")], {lifecycle: 7})
    assert pending(index) == [("e2", "sign-off")]
    index.close()
    # Only once: opened again, it keeps its positions.
    index = ExecutionIndex(path)
    assert index.positions() == {lifecycle: 7}
    index.close()


def test_a_redrive_reopens_a_failed_execution_and_its_later_end_closes_it(
    index: ExecutionIndex,
) -> None:
    redriven = LifecycleEvent(
        id="e1/charge/2/node.redriven",
        type="node.redriven",
        execution_id="e1",
        workflow_id="refund",
        workflow_version=2,
        at=NOW + 2_000,
        node_id="charge",
    )
    index.apply_many([started("e1"), finished("e1", "failed"), redriven])
    assert index.list("refund")[0]["status"] == "running"
    index.apply(finished("e1", "completed", at=NOW + 3_000))
    [execution] = index.list("refund")
    assert (execution["status"], execution["completed_at"]) == (
        "completed",
        "2023-11-14T22:13:23.000Z",
    )


def redrive(execution_id: str, at: int) -> LifecycleEvent:
    return LifecycleEvent(
        f"{execution_id}/charge/{at}/node.redriven", "node.redriven", execution_id, "refund", 2,
        at, node_id="charge",
    )  # fmt: skip


def test_one_batch_ends_and_redrives_as_its_events_in_order_do(index: ExecutionIndex) -> None:
    """A batch runs each statement once for all its rows: a redrive of another execution
    read first must not reopen this one before its end is stored."""
    index.apply_many([started("other"), finished("other", "failed", at=NOW + 100)])
    index.apply_many(
        [
            redrive("other", NOW + 200),
            started("e1"),
            finished("e1", "failed", at=NOW + 1_000),
            redrive("e1", NOW + 2_000),
            started("e2"),
            finished("e2", "failed", at=NOW + 1_000),
            redrive("e2", NOW + 2_000),
            finished("e2", "completed", at=NOW + 3_000),
        ]
    )
    shown = {e["execution_id"]: e["status"] for e in index.list("refund")}
    assert shown == {"other": "running", "e1": "running", "e2": "completed"}


def test_a_parked_execution_is_listed_as_parked(index: ExecutionIndex) -> None:
    index.apply_many([started("e1"), finished("e1", "parked")])
    assert index.list("refund", status="parked")[0]["execution_id"] == "e1"
