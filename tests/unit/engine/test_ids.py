"""Record and row ids: each format pinned with a known example, and build -> parse is identity.

The ids are in Kafka records and tables (dedupe, replay): these examples are the formats
written today and must never change.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

import pytest
from engine_driver import applied, assert_ignored, settle, workflow
from hypothesis import given
from hypothesis import strategies as st

from braidflow.engine import StartExecution, TimerFired, ids

START_NAMESPACE = uuid.UUID("6f1c1d57-6a43-4b8e-9d0e-3f0b2f3c9a11")

# Execution ids are the caller's: anything, `/`, `.`, `[` included (not empty, no NUL).
execution_ids = st.text(
    st.characters(exclude_characters="\0", exclude_categories=("Cs",)), min_size=1
)
node_ids = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]*", fullmatch=True)
counts = st.integers(0, 10**6)
attempts = st.integers(1, 10**6)


def test_every_format_is_pinned_by_an_example() -> None:
    assert ids.start_id("e1") == "e1/start"
    assert ids.child_cancel_id("e1.call") == "e1.call/cancel"
    assert ids.control_id("e1", "pause", "ab12") == "e1/pause/ab12"
    assert ids.finished_id("e1") == "e1/finished"
    assert ids.finished_id("e1", ids.generation(2)) == "e1/finished/2"
    assert ids.generation(0) == ""
    assert ids.run_node_id("e1", "pay") == "e1/pay/run"
    assert ids.decision_id("e1", "ok", "d9") == "e1/ok/decision/d9"
    assert ids.decided_id("e1", "ok", 1) == "e1/ok/1/decided"
    assert ids.redrive_id("e1", "pay", "r7") == "e1/pay/redrive/r7"
    assert ids.dead_letter_id("e1", "pay", 3) == "e1/pay/3/dead-letter"
    assert ids.wait_id("e1", "hear", 1) == "e1/hear/1/await"
    assert ids.arrived_id("e1/hear/1/await") == "e1/hear/1/await/arrived"
    assert ids.collect_id("e1", "each", 2) == "e1/each/2/collect"
    assert ids.collected_id("e1/each/2/collect") == "e1/each/2/collect/collected"
    assert ids.published_id("e1", "tell") == "e1/tell"
    assert ids.too_large_id("e1:pay:1/completed") == "e1:pay:1/completed/too-large"
    assert ids.task_key("e1", "pay", 1) == "e1:pay:1"
    assert ids.item_task_key("e1", "each", 1, 4) == "e1:each:1:4"
    assert ids.task_completed_id("e1:pay:1") == "e1:pay:1/completed"
    assert ids.task_failed_id("e1:pay:1") == "e1:pay:1/failed"
    assert ids.EXECUTION_TIMER == "execution/timeout"
    assert ids.node_timer("pay", 2, "retry") == "pay/2/retry"
    assert ids.join_timer("meet") == "meet/join-timeout"
    assert ids.timer_fired_id("e1", "pay/2/retry", 1700) == "e1/timer/pay/2/retry/1700"
    assert ids.node_event_id("e1", "pay", 1, "node.completed") == "e1/pay/1/node.completed"
    assert ids.workflow_event_id("e1", "workflow.started") == "e1/workflow.started"
    assert ids.workflow_event_id("e1", "workflow.completed", "/3") == "e1/workflow.completed/3"
    assert ids.child_execution_id("e1", "call", 1) == "e1.call"
    assert ids.child_execution_id("e1", "call", 2) == "e1.call.2"
    assert ids.item_child_id("e1", "each", 1, 4) == "e1.each[4]"
    assert ids.item_child_id("e1", "each", 3, 0) == "e1.each.3[0]"
    assert ids.item_key("each", 4) == "each[4]"
    assert ids.value_row_key("e1", "00ff") == b"e1/value/00ff"
    assert ids.chunk_key("e1", "each", 1, 0) == b"e1/items/each/1/0"
    assert ids.schedule_slot_id("nightly", 0, 1700) == "nightly/0/1700"
    assert ids.record_letter_id("acme.transitions", 2, 41) == "acme.transitions:2:41"
    event = {"source": "/shop", "id": "o-1"}
    assert (
        ids.execution_id_for(event, "ship") == uuid.uuid5(START_NAMESPACE, "/shop\no-1\nship").hex
    )
    assert ids.timer_key(1, "e1", "pay/1/timeout") == b"\0" * 7 + b"\1e1\0pay/1/timeout"


@given(node_ids, attempts, st.sampled_from(["timeout", "retry", "delay"]))
def test_a_node_timer_reads_back(node_id: str, attempt: int, kind: str) -> None:
    assert ids.parse_node_timer(ids.node_timer(node_id, attempt, kind)) == (node_id, attempt, kind)


@given(node_ids)
def test_a_join_timer_reads_back_without_an_attempt(node_id: str) -> None:
    assert ids.parse_node_timer(ids.join_timer(node_id)) == (node_id, None, "join-timeout")


@given(execution_ids, node_ids, counts, st.sampled_from(["node.started", "node.completed"]))
def test_a_node_event_id_reads_back(
    execution_id: str, node_id: str, attempt: int, type_: str
) -> None:
    event_id = ids.node_event_id(execution_id, node_id, attempt, type_)
    assert ids.parse_event_id(event_id) == (execution_id, type_, node_id, attempt)
    assert ids.node_of_event_id(event_id) == node_id
    assert ids.event_type_of(event_id) == type_


@given(execution_ids, st.sampled_from(["workflow.started", "workflow.completed"]), counts)
def test_a_workflow_event_id_reads_back(execution_id: str, type_: str, actions: int) -> None:
    event_id = ids.workflow_event_id(execution_id, type_, ids.generation(actions))
    assert ids.parse_event_id(event_id) == (execution_id, type_, None, None)
    assert ids.event_type_of(event_id) == type_


@given(execution_ids, node_ids, attempts, st.none() | counts)
def test_a_child_execution_id_reads_back(
    parent: str, node_id: str, attempt: int, index: int | None
) -> None:
    child = (
        ids.child_execution_id(parent, node_id, attempt)
        if index is None
        else ids.item_child_id(parent, node_id, attempt, index)
    )
    assert ids.parse_child_id(child) == (parent, node_id, attempt, index)


@given(execution_ids, st.binary(min_size=1, max_size=16))
def test_a_value_row_key_reads_back(execution_id: str, digest: bytes) -> None:
    key = ids.value_row_key(execution_id, digest.hex())
    assert ids.parse_value_row_key(key) == (execution_id, digest.hex())


@given(execution_ids, node_ids, attempts, counts)
def test_a_chunk_key_reads_back(execution_id: str, node_id: str, attempt: int, chunk: int) -> None:
    key = ids.chunk_key(execution_id, node_id, attempt, chunk)
    assert ids.parse_chunk_key(key) == (execution_id, node_id, attempt, chunk)


@pytest.mark.parametrize(
    ("parse", "text"),
    [
        (ids.parse_node_timer, "pay"),
        (ids.parse_node_timer, "pay/x/timeout"),
        (ids.parse_node_timer, "pay/01/timeout"),
        (ids.parse_node_timer, "/join-timeout"),
        (ids.parse_event_id, "e1/pay/node.completed"),
        (ids.parse_event_id, "workflow.started"),
        (ids.parse_child_id, "e1"),
        (ids.parse_child_id, "e1.call[x]"),
        (ids.parse_value_row_key, b"e1/items/each/1/0"),
        (ids.parse_chunk_key, b"e1/value/00ff"),
    ],
)
def test_a_malformed_id_is_refused_naming_it(parse: object, text: str | bytes) -> None:
    with pytest.raises(ValueError, match="is not a"):
        parse(text)  # type: ignore[operator]


DELAYED = """
id: delayed
nodes:
  - {id: pause, type: delay, params: {for: 1h}}
  - {id: done, type: end}
edges:
  - {from: pause, to: done}
"""


def test_a_pending_timer_whose_id_names_no_node_is_ignored_not_a_crash() -> None:
    wf = workflow(DELAYED)
    state, _ = settle(wf, applied(wf, None, StartExecution("e1/start", "e1", 0, wf.id, 1)))
    odd = replace(state, timers={**state.timers, "pause/one/delay": 5})
    why = assert_ignored(wf, odd, TimerFired("e1/timer/odd", "e1", 5, "pause/one/delay"))
    assert why == "'pause/one/delay' is not a node timer id"
