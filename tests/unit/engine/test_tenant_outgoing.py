"""An execution stays within its tenant: the start's tenant is the state's, and every
record a step emits for it (tasks, lifecycle events, child starts, waits, published
events, dead letters) names that tenant, so the runtime routes each within it."""

from __future__ import annotations

from engine_driver import of_type, settle, workflow

from braidflow.access import DEFAULT_TENANT
from braidflow.engine import (
    AwaitEvent,
    DeadLetterNode,
    LifecycleEvent,
    NodeError,
    NodeFailed,
    PublishEvent,
    StartExecution,
    TaskRequest,
    step,
)

T0 = 1_795_000_000_000

FAN_OUT = workflow(
    """
id: fan
nodes:
  - {id: split, type: parallel}
  - {id: tell, type: publish, params: {type: ticket.done, data: {n: 1}}}
  - {id: call, type: subworkflow, params: {workflow: child}}
  - {id: wait, type: wait_event, params: {type: ticket.resolved}}
  - {id: work, type: task, params: {handler: h}}
  - {id: each, type: foreach, params: {items: [1, 2], do: child}}
  - {id: poll, type: loop, params: {do: child, count: 1, max_iterations: 1}}
  - {id: join, type: join}
  - {id: done, type: end}
edges:
  - {from: split, to: tell}
  - {from: split, to: call}
  - {from: split, to: wait}
  - {from: split, to: work}
  - {from: split, to: each}
  - {from: split, to: poll}
  - {from: tell, to: join}
  - {from: call, to: join}
  - {from: wait, to: join}
  - {from: work, to: join}
  - {from: each, to: join}
  - {from: poll, to: join}
  - {from: join, to: done}
"""
)


def test_everything_a_tenants_execution_emits_names_its_tenant() -> None:
    start = StartExecution("s", "ex", T0, "fan", 1, {}, tenant="acme")
    state, sent = settle(FAN_OUT, step(FAN_OUT, None, start))
    assert state.tenant == "acme"
    emitted = [
        *of_type(sent, PublishEvent),
        *of_type(sent, StartExecution),
        *of_type(sent, AwaitEvent),
        *of_type(sent, TaskRequest),
        *of_type(sent, LifecycleEvent),
    ]
    assert {type(m) for m in emitted} == {
        PublishEvent,
        StartExecution,
        AwaitEvent,
        TaskRequest,
        LifecycleEvent,
    }
    assert {m.tenant for m in emitted} == {"acme"}
    # The subworkflow's child, the foreach's two and the loop's first pass.
    assert len(of_type(sent, StartExecution)) == 4


def test_a_dead_letter_names_its_executions_tenant() -> None:
    start = StartExecution("s", "ex", T0, "fan", 1, {}, tenant="acme")
    state, _ = settle(FAN_OUT, step(FAN_OUT, None, start))
    failed = NodeFailed("f", "ex", T0 + 1, "work", 1, NodeError("ValueError", "boom"))
    [letter] = of_type(step(FAN_OUT, state, failed).outgoing, DeadLetterNode)
    assert letter.tenant == "acme"


def test_a_start_that_names_no_tenant_is_the_default_tenants() -> None:
    state, sent = settle(FAN_OUT, step(FAN_OUT, None, StartExecution("s", "ex", T0, "fan", 1, {})))
    assert state.tenant == DEFAULT_TENANT
    assert {m.tenant for m in of_type(sent, StartExecution)} == {DEFAULT_TENANT}
