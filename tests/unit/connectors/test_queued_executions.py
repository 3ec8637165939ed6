"""An execution its department's cap queued: the index lists it `queued` until it starts,
whatever order its events arrive in."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from braidflow.connectors.execution_index import ExecutionIndex
from braidflow.engine import StartExecution
from braidflow.engine.messages import LifecycleEvent
from braidflow.schemas.lifecycle_events import accepted_event

NOW = 1_700_000_000_000
START = StartExecution("e1/start", "e1", NOW, "refund", 2, {"amount": 5})


@pytest.fixture
def index(tmp_path: Path) -> Iterator[ExecutionIndex]:
    index = ExecutionIndex(tmp_path / "executions.sqlite")
    yield index
    index.close()


def event(type_: str, at: int) -> LifecycleEvent:
    return LifecycleEvent(f"e1/{type_}", type_, "e1", "refund", 2, at)


def test_a_queued_execution_is_listed_queued_until_it_starts(index: ExecutionIndex) -> None:
    index.apply(accepted_event(START))
    index.apply(event("workflow.queued", NOW + 1))
    found = index.get("e1")
    assert found is not None and found["status"] == "queued"
    assert index.list("refund", status="queued") == [found]
    index.apply(event("workflow.started", NOW + 50))
    assert index.get("e1")["status"] == "running"  # type: ignore[index]


def test_a_queued_event_read_late_never_takes_an_execution_back(tmp_path: Path) -> None:
    events = [
        accepted_event(START),
        event("workflow.queued", NOW + 1),
        event("workflow.started", NOW + 50),
        event("workflow.completed", NOW + 90),
    ]
    for n, order in enumerate(itertools.permutations(events)):
        index = ExecutionIndex(tmp_path / f"{n}.sqlite")
        index.apply_many(order)
        found = index.get("e1")
        index.close()
        assert found is not None and found["status"] == "completed", order
