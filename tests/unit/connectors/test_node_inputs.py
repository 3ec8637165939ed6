"""A node run's input in the execution view: kept by the state for work and waits, derived at
read time for control nodes, driven with plain data."""

from __future__ import annotations

from dataclasses import replace

from engine_driver import applied, settle, workflow

from braidflow.connectors.api import execution_view
from braidflow.engine import NodeCompleted, StartExecution

T0 = 1_750_000_000_000
EX = "ex-inputs"
FLOW = """
id: inputs
nodes:
  - {id: ask, type: task, params: {handler: h, input: {name: "${input.name}"}}}
  - {id: shape, type: transform, params: {set: {greeting: "hi ${nodes.ask.output.name}"}}}
  - {id: route, type: decision}
  - {id: done, type: end, params: {output: {said: "${nodes.shape.output.greeting}"}}}
  - {id: other, type: end}
edges:
  - {from: ask, to: shape}
  - {from: shape, to: route}
  - {from: route, to: done, when: "nodes.shape.output.greeting == 'hi ana'"}
  - {from: route, to: other, default: true}
"""


def inputs_by_node(text: str = FLOW) -> dict[str, object]:
    wf = workflow(text)
    state, _ = settle(
        wf, applied(wf, None, StartExecution("s", EX, T0, "inputs", 1, {"name": "ana"}))
    )
    done = applied(wf, state, NodeCompleted("c", EX, T0 + 5, "ask", 1, {"name": "ana"}))
    state, _ = settle(wf, done)
    assert state.status == "completed", state
    return {n["node_id"]: n["input"] for n in execution_view(state, wf)["nodes"]}


def test_a_task_shows_the_input_its_request_was_sent_with() -> None:
    assert inputs_by_node()["ask"] == {"name": "ana"}


def test_a_control_node_shows_its_params_rendered_as_they_were_when_it_ran() -> None:
    found = inputs_by_node()
    assert found["shape"] == {"set": {"greeting": "hi ana"}}
    assert found["done"] == {"output": {"said": "hi ana"}}
    # A decision has no params: its input is none, what it chose is in the edges taken.
    assert found["route"] is None


def test_a_control_node_reads_only_the_node_runs_that_had_ended_when_it_ran() -> None:
    """A param naming a node that ended later renders as it did then (the node unknown)."""
    wf = workflow(FLOW)
    state, _ = settle(
        wf, applied(wf, None, StartExecution("s", EX, T0, "inputs", 1, {"name": "ana"}))
    )
    state, _ = settle(
        wf, applied(wf, state, NodeCompleted("c", EX, T0 + 5, "ask", 1, {"name": "ana"}))
    )
    shape = state.nodes["shape"]
    # As if `ask` had ended after `shape` started: `shape` could not have read it.
    late = replace(state.nodes["ask"], completed_at=shape.started_at + 1)
    moved = replace(state, nodes={**state.nodes, "ask": late})
    view = execution_view(moved, wf)
    [shown] = [n for n in view["nodes"] if n["node_id"] == "shape"]
    assert shown["input"] is None
