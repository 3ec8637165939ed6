"""An execution accepted and not started yet: how the index holds it, whatever order its
events arrive in, and how `braidflow status` shows it."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from braidflow.client_cli import execution_lines
from braidflow.connectors.api import not_started_view
from braidflow.connectors.execution_index import ExecutionIndex
from braidflow.engine import StartExecution
from braidflow.engine.messages import LifecycleEvent, NodeError
from braidflow.schemas.lifecycle_events import (
    START_REFUSED,
    accepted_event,
    lifecycle_headers,
    refused_event,
)

NOW = 1_700_000_000_000
START = StartExecution("e1/start", "e1", NOW, "refund", 2, {"amount": 5})


@pytest.fixture
def index(tmp_path: Path) -> Iterator[ExecutionIndex]:
    index = ExecutionIndex(tmp_path / "executions.sqlite")
    yield index
    index.close()


def event(type_: str, at: int) -> LifecycleEvent:
    return LifecycleEvent(f"e1/{type_}", type_, "e1", "refund", 2, at)


def test_an_accepted_execution_is_listed_and_found_before_it_starts(
    index: ExecutionIndex,
) -> None:
    index.apply(accepted_event(START))
    found = index.get("e1")
    assert found is not None
    assert found["status"] == "accepted"
    assert found["accepted_at"] == "2023-11-14T22:13:20.000Z"
    assert found["started_at"] is None
    assert index.list("refund", status="accepted") == [found]
    assert index.get("e2") is None


def test_the_acceptance_is_a_small_workflow_event_without_the_input() -> None:
    accepted = accepted_event(START)
    assert (accepted.type, accepted.data, accepted.id) == (
        "workflow.accepted",
        None,
        "e1/workflow.accepted",
    )
    assert ("ce_type", b"braidflow.workflow.accepted") in lifecycle_headers(accepted.id, b"e1")  # fmt: skip


@pytest.mark.parametrize(
    "order",
    list(itertools.permutations(["accepted", "started", "completed"])),
)
def test_an_acceptance_read_late_changes_nothing(
    index: ExecutionIndex, order: tuple[str, ...]
) -> None:
    events = {
        "accepted": accepted_event(START),
        "started": event("workflow.started", NOW + 10),
        "completed": event("workflow.completed", NOW + 20),
    }
    index.apply_many(events[name] for name in order)
    found = index.get("e1")
    assert found is not None
    assert found["status"] == "completed"
    assert found["started_at"] is not None


def test_a_start_read_after_the_acceptance_makes_it_running(index: ExecutionIndex) -> None:
    index.apply(accepted_event(START))
    index.apply(event("workflow.started", NOW + 10))
    found = index.get("e1")
    assert found is not None and found["status"] == "running"
    assert "accepted_at" not in found


def test_status_shows_an_accepted_execution_as_not_started_yet(index: ExecutionIndex) -> None:
    index.apply(accepted_event(START))
    found = index.get("e1")
    assert found is not None
    lines = execution_lines(not_started_view(found, None))
    assert "status     accepted" in lines
    assert "accepted   2023-11-14T22:13:20.000Z (not started yet)" in lines
    assert not any(line.startswith("started") for line in lines)


def test_a_start_refused_after_its_acceptance_reads_as_failed_with_the_reason(
    index: ExecutionIndex,
) -> None:
    index.apply(accepted_event(START))
    index.apply(refused_event(START, "unknown workflow 'refund' version 2", NOW + 5))
    found = index.get("e1")
    assert found is not None
    assert found["status"] == "failed"
    assert found["error"] == {
        "type": START_REFUSED,
        "message": "unknown workflow 'refund' version 2",
    }
    view = not_started_view(found, None)
    assert view["error"] == {**found["error"], "node_id": None}
    assert "status     failed" in execution_lines(view)


def test_a_redrive_clears_the_error_of_an_ended_execution(index: ExecutionIndex) -> None:
    failed = LifecycleEvent(
        "e1/workflow.failed", "workflow.failed", "e1", "refund", 2, NOW + 5,
        error=NodeError("HTTPError", "503"),
    )  # fmt: skip
    index.apply_many([event("workflow.started", NOW), failed])
    ended = index.get("e1")
    assert ended is not None and ended["error"] == {"type": "HTTPError", "message": "503"}
    index.apply(LifecycleEvent("e1/x/2/node.redriven", "node.redriven", "e1", "refund", 2, NOW + 9))
    found = index.get("e1")
    assert found is not None and (found["status"], found["error"]) == ("running", None)


def test_an_index_of_the_version_before_errors_gains_the_column(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as old:
        old.execute(
            "CREATE TABLE executions (execution_id TEXT PRIMARY KEY, workflow_id TEXT NOT NULL,"
            " workflow_version INTEGER NOT NULL, status TEXT NOT NULL, started_at INTEGER NOT"
            " NULL, completed_at INTEGER, event_id TEXT, event_type TEXT, event_source TEXT,"
            " updated_at INTEGER NOT NULL)"
        )
        old.execute("INSERT INTO executions VALUES ('e0', 'refund', 1, 'completed', 1, 2, NULL, NULL, NULL, 2)")  # fmt: skip
        old.execute("PRAGMA user_version = 1")
    old.close()
    index = ExecutionIndex(path)
    try:
        index.apply(accepted_event(START))
        index.apply(refused_event(START, "engine error", NOW + 5))
        assert (index.get("e0") or {})["error"] is None
        assert (index.get("e1") or {})["error"] == {"type": START_REFUSED, "message": "engine error"}  # fmt: skip
    finally:
        index.close()
