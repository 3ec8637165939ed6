"""Avro records of tenants: records written before tenants (StartExecution v4, Transition
v6, ExecutionState and StoredExecution v7, LifecycleEvent, TaskRequest v4, AwaitEvent v1)
read as the default tenant's; records of another tenant keep it through encoding."""

from __future__ import annotations

import pytest
from avro_history import history_schema, written_with

from braidflow.access import DEFAULT_TENANT
from braidflow.engine import AwaitEvent, LifecycleEvent, StartExecution, TaskRequest
from braidflow.engine.state import ExecutionState
from braidflow.schemas import (
    decode_await,
    decode_event,
    decode_state,
    decode_task,
    decode_transition,
    encode_await,
    encode_event,
    encode_state,
    encode_task,
    encode_transition,
)
from braidflow.schemas.codec import STORE
from braidflow.schemas.records import AWAIT_EVENT, EXECUTION_STATE, LIFECYCLE_EVENT, TASK_REQUEST
from braidflow.schemas.store import current_schema, fingerprint

T0 = 1_795_000_000_000


@pytest.mark.parametrize(
    ("name", "version"),
    [
        ("StartExecution", 4),
        ("Transition", 6),
        ("ExecutionState", 7),
        ("StoredExecution", 7),
        ("LifecycleEvent", 1),
        ("TaskRequest", 4),
        ("AwaitEvent", 1),
    ],
)
def test_each_schema_before_tenants_is_one_the_shipped_store_knows(name: str, version: int) -> None:
    old = history_schema(name, version)
    assert fingerprint(old) != fingerprint(current_schema(f"braidflow.{name}"))
    assert STORE.get(fingerprint(old)) is not None


def without_tenant(avro: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in avro.items() if k != "tenant"}


def test_records_written_before_tenants_read_as_the_default_tenants() -> None:
    start = StartExecution("s", "ex", T0, "w", 1)
    body = without_tenant(encode_and_read_body(start))
    assert decode_transition(written_with("Transition", 6, {"body": body})).tenant == DEFAULT_TENANT
    state = ExecutionState("ex", "w", 1, "running", T0, T0)
    old_state = written_with("ExecutionState", 7, without_tenant(EXECUTION_STATE.to_avro(state)))
    assert decode_state(old_state) == state
    event = LifecycleEvent("e", "workflow.started", "ex", "w", 1, T0)
    old_event = written_with("LifecycleEvent", 1, without_tenant(LIFECYCLE_EVENT.to_avro(event)))
    assert decode_event(old_event) == event
    task = TaskRequest("ex", "w", "n", "task", 1, "k", T0)
    assert decode_task(written_with("TaskRequest", 4, without_tenant(TASK_REQUEST.to_avro(task))))
    wait = AwaitEvent("a", "ex", "w", 1, "n", "ticket.resolved", T0)
    old_wait = written_with("AwaitEvent", 1, without_tenant(AWAIT_EVENT.to_avro(wait)))
    assert decode_await(old_wait).tenant == DEFAULT_TENANT


def encode_and_read_body(start: StartExecution) -> dict[str, object]:
    from braidflow.schemas.records import TRANSITION

    body = TRANSITION.to_avro(start)["body"]
    assert isinstance(body, tuple)
    return dict(body[1])


def test_another_tenants_records_keep_their_tenant() -> None:
    start = StartExecution("s", "ex", T0, "w", 1, tenant="acme")
    assert decode_transition(encode_transition(start)) == start
    state = ExecutionState("ex", "w", 1, "running", T0, T0, tenant="acme")
    assert decode_state(encode_state(state)) == state
    event = LifecycleEvent("e", "workflow.started", "ex", "w", 1, T0, tenant="acme")
    assert decode_event(encode_event(event)) == event
    task = TaskRequest("ex", "w", "n", "task", 1, "k", T0, tenant="acme")
    assert decode_task(encode_task(task)) == task
    wait = AwaitEvent("a", "ex", "w", 1, "n", "ticket.resolved", T0, tenant="acme")
    assert decode_await(encode_await(wait)) == wait
