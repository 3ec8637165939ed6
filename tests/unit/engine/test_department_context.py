"""`dept.*` in expressions and templates: the department's shared context as the execution
started, carried by its start and kept in its state (no lookup by the engine)."""

from __future__ import annotations

from engine_driver import settle, workflow

from braidflow.engine import StartExecution, step
from braidflow.schemas import decode_state, decode_transition, encode_state, encode_transition

T0 = 1_795_000_000_000

GREETING = workflow(
    """
id: greet
department: support
nodes:
  - {id: shape, type: transform, params: {set: {line: "Write to ${dept.support_email}", loud: "${dept.level > 2}"}}}
  - {id: done, type: end, params: {output: "${nodes.shape.output}"}}
edges:
  - {from: shape, to: done}
"""
)


def test_an_execution_reads_the_department_context_its_start_carries() -> None:
    start = StartExecution(
        "s", "ex", T0, "greet", 1, {}, dept={"support_email": "help@acme.test", "level": 3}
    )
    state, _ = settle(GREETING, step(GREETING, None, start))
    assert state.status == "completed"
    assert state.output == {"line": "Write to help@acme.test", "loud": True}


def test_the_context_is_kept_in_the_state_and_survives_encoding() -> None:
    start = StartExecution("s", "ex", T0, "greet", 1, {}, dept={"support_email": "a@b.test"})
    assert decode_transition(encode_transition(start)) == start
    result = step(GREETING, None, start)
    assert result.state is not None and result.state.dept == {"support_email": "a@b.test"}
    assert decode_state(encode_state(result.state)) == result.state


def test_a_start_without_a_context_fails_the_node_naming_the_missing_variable() -> None:
    state, _ = settle(GREETING, step(GREETING, None, StartExecution("s", "ex", T0, "greet", 1, {})))
    assert state.status == "failed"
    assert state.error is not None and state.error.node_id == "shape"
    assert "dept.support_email" in state.error.message
