"""Lifecycle records' CloudEvents headers, and which of them the executions index reads."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from aiokafka import ConsumerRecord

from braidflow.connectors.execution_index import (
    NODE_ENDED,
    NODE_STARTED,
    concerns_index,
    index_reading,
)
from braidflow.connectors.lifecycle_feed import LifecycleFeed
from braidflow.connectors.projection import Record
from braidflow.engine import LifecycleEvent, NodeError
from braidflow.engine.ids import node_of_event_id
from braidflow.schemas import encode_event
from braidflow.schemas.lifecycle_events import (
    event_json,
    lifecycle_event_type,
    lifecycle_headers,
)

NODE_TYPES = {"charge": "task", "sign_off": "approval"}
NODE_EVENTS = {NODE_STARTED, *NODE_ENDED}


def test_the_event_type_is_read_off_node_and_workflow_event_ids() -> None:
    assert lifecycle_event_type("ex-1/charge/2/node.completed") == "node.completed"
    assert lifecycle_event_type("ex-1/workflow.started") == "workflow.started"
    # After a pause or a redrive, workflow event ids end with the count of control actions.
    assert lifecycle_event_type("ex-1/workflow.completed/3") == "workflow.completed"
    assert lifecycle_event_type("parent/call/1/child/workflow.failed/12") == "workflow.failed"


def test_node_events_carry_their_node_type() -> None:
    headers = dict(lifecycle_headers("ex-1/sign_off/1/node.started", b"ex-1", NODE_TYPES))
    assert headers["ce_type"] == b"braidflow.node.started"
    assert headers["ce_nodetype"] == b"approval"
    assert headers["ce_subject"] == b"ex-1"


def test_a_childs_node_events_carry_the_node_type_named_after_its_execution_id() -> None:
    # A child's execution id holds slashes: the node is the segment before the attempt.
    child = "ex-1/call/1/child"
    headers = dict(lifecycle_headers(f"{child}/sign_off/2/node.failed", child.encode(), NODE_TYPES))
    assert headers["ce_type"] == b"braidflow.node.failed"
    assert headers["ce_nodetype"] == b"approval"
    workflow = dict(lifecycle_headers(f"{child}/workflow.failed/12", child.encode(), NODE_TYPES))
    assert workflow["ce_type"] == b"braidflow.workflow.failed"
    assert "ce_nodetype" not in workflow


def test_workflow_events_and_unknown_nodes_carry_no_node_type() -> None:
    workflow = dict(lifecycle_headers("ex-1/workflow.resumed/2", b"ex-1", NODE_TYPES))
    assert workflow["ce_type"] == b"braidflow.workflow.resumed"
    assert "ce_nodetype" not in workflow
    assert "ce_nodetype" not in dict(
        lifecycle_headers("ex-1/gone/1/node.failed", b"ex-1", NODE_TYPES)
    )
    assert "ce_nodetype" not in dict(lifecycle_headers("ex-1/charge/1/node.failed", b"ex-1"))


def record(event_id: str, node_types: dict[str, str] | None = NODE_TYPES) -> ConsumerRecord:
    headers = lifecycle_headers(event_id, b"ex-1", node_types)
    return ConsumerRecord("lifecycle", 0, 0, 0, 0, b"ex-1", b"", None, 4, 0, headers)


def test_the_index_skips_starts_and_ends_of_nodes_that_are_no_approvals() -> None:
    assert not concerns_index(record("ex-1/charge/1/node.started"))
    assert not concerns_index(record("ex-1/charge/1/node.completed"))
    assert not concerns_index(record("ex-1/charge/3/node.skipped"))


def test_the_index_reads_approvals_workflow_events_redrives_and_unlabelled_records() -> None:
    assert concerns_index(record("ex-1/sign_off/1/node.started"))
    assert concerns_index(record("ex-1/sign_off/1/node.failed"))
    assert concerns_index(record("ex-1/workflow.started"))
    assert concerns_index(record("ex-1/workflow.completed/2"))
    assert concerns_index(record("ex-1/charge/2/node.redriven"))
    # Written before node events were labelled: decoded and looked at, as before.
    assert concerns_index(record("ex-1/charge/1/node.completed", node_types=None))


def test_the_index_reads_the_data_only_of_starts_approvals_and_node_completions() -> None:
    assert index_reading(record("ex-1/workflow.started")) is True
    assert index_reading(record("ex-1/sign_off/1/node.started")) is True
    assert index_reading(record("ex-1/sign_off/1/node.completed")) is True
    # An end's data is its output: the index stores its status, time and error only.
    assert index_reading(record("ex-1/workflow.completed")) is False
    assert index_reading(record("ex-1/workflow.failed/2")) is False
    assert index_reading(record("ex-1/sign_off/1/node.failed")) is False
    assert index_reading(record("ex-1/charge/1/node.completed")) is None
    unlabelled = ConsumerRecord("lifecycle", 0, 0, 0, 0, b"ex-1", b"", None, 4, 0, [])
    assert index_reading(unlabelled) is True


class Watched(list[tuple[str, bytes]]):
    """Headers that tell whether they were read."""

    read = False

    def __iter__(self) -> Iterator[tuple[str, bytes]]:
        self.read = True
        return super().__iter__()


def valued(event_id: str, node_types: dict[str, str] | None = NODE_TYPES) -> Record:
    """A record as the orchestrator writes it: its event as its value, and its headers."""
    event_type = lifecycle_event_type(event_id)
    node = node_of_event_id(event_id) if event_type.startswith("node.") else None
    event = LifecycleEvent(event_id, event_type, "ex-1", "w", 1, 5, node, 1 if node else None)
    headers = Watched(lifecycle_headers(event_id, b"ex-1", node_types))
    return Record("lifecycle", 0, 0, b"ex-1", encode_event(event), headers)


EVENT_IDS = [
    "ex-1/workflow.accepted",
    "ex-1/workflow.started",
    "ex-1/workflow.completed/2",
    "ex-1/workflow.failed",
    "ex-1/charge/1/node.started",
    "ex-1/charge/1/node.completed",
    "ex-1/charge/3/node.skipped",
    "ex-1/charge/2/node.redriven",
    "ex-1/sign_off/1/node.started",
    "ex-1/sign_off/1/node.completed",
    "ex-1/sign_off/1/node.failed",
    "ex-1/gone/1/node.completed",
]


@pytest.mark.parametrize("node_types", [NODE_TYPES, None])
@pytest.mark.parametrize("event_id", EVENT_IDS)
def test_the_index_reads_an_event_off_its_value_as_off_its_headers(
    event_id: str, node_types: dict[str, str] | None
) -> None:
    headed = record(event_id, node_types)
    assert index_reading(valued(event_id, node_types)) == index_reading(headed)


@pytest.mark.parametrize("event_id", EVENT_IDS)
def test_only_node_events_have_their_headers_read_by_the_index_and_none_by_the_feed(
    event_id: str,
) -> None:
    for_index, for_feed = valued(event_id), valued(event_id)
    index_reading(for_index)
    LifecycleFeed().apply([for_feed])
    assert for_index.headers.read == (lifecycle_event_type(event_id) in NODE_EVENTS)
    assert not for_feed.headers.read


def test_an_event_as_json_has_the_shape_every_reader_shares() -> None:
    failed = LifecycleEvent(
        "ex-1/charge/2/node.failed",
        "node.failed",
        "ex-1",
        "pay",
        3,
        1_764_979_200_123,
        node_id="charge",
        attempt=2,
        data={"card": "4242"},
        error=NodeError("Declined", "card declined", "charge"),
        tenant="acme",
    )
    shown = event_json(failed)
    assert shown == {
        "id": "ex-1/charge/2/node.failed",
        "type": "node.failed",
        "execution_id": "ex-1",
        "workflow_id": "pay",
        "workflow_version": 3,
        "at": "2025-12-06T00:00:00.123Z",
        "node_id": "charge",
        "attempt": 2,
        "data": {"card": "4242"},
        "error": {"type": "Declined", "message": "card declined", "node_id": "charge"},
    }
    assert json.loads(json.dumps(shown)) == shown


def test_an_event_without_error_or_node_shows_nulls() -> None:
    started = LifecycleEvent("ex-1/workflow.started", "workflow.started", "ex-1", "pay", 1, 0)
    shown = event_json(started)
    assert (shown["node_id"], shown["attempt"], shown["error"]) == (None, None, None)
    assert shown["at"] == "1970-01-01T00:00:00.000Z"
