"""The kinds that call through a named connection (`llm` and the model kinds, `email`): a
redrive may patch what they send, never the connection, whose credential it would change."""

from __future__ import annotations

from typing import Any

import pytest
from engine_driver import of_type, workflow

from braidflow.engine import StartExecution, TaskRequest, step
from braidflow.engine.messages import NodeError, NodeFailed, RedriveNode
from braidflow.engine.step import StepResult

T0 = 1_795_000_000_000

PARAMS = {
    "llm": '{connection: openai, model: m, prompt: "Label: ${input.text}"}',
    "classify": '{connection: openai, model: m, text: "${input.text}", labels: [a, b]}',
    "email": '{connection: openai, from: a@x.test, to: b@x.test, subject: s, text: "${input.text}"}',
}


def definition(kind: str) -> str:
    return f"""
id: connected
nodes:
  - {{id: call, type: {kind}, params: {PARAMS[kind]}}}
  - {{id: done, type: end}}
edges:
  - {{from: call, to: done}}
"""


@pytest.mark.parametrize("kind", sorted(PARAMS))
def test_a_redrive_may_patch_the_request_never_the_connection(kind: str) -> None:
    wf = workflow(definition(kind))
    started = step(wf, None, StartExecution("s", "ex", T0, "connected", 1, {"text": "x"}))
    [request] = of_type(started.outgoing, TaskRequest)
    failed = NodeFailed("f", "ex", T0 + 1, "call", 1, NodeError(f"{kind}.5xx", "down"))
    state = step(wf, started.state, failed).state

    def redriven(patched: Any) -> StepResult:
        return step(wf, state, RedriveNode("r", "ex", T0 + 2, "call", "ops", patched))

    kept = {**request.input, "model": "n"} if kind != "email" else {**request.input, "text": "y"}
    [sent] = of_type(redriven(kept).outgoing, TaskRequest)
    assert sent.input == kept
    for moved in ({**request.input, "connection": "other"}, "not an object"):
        elsewhere = redriven(moved)
        assert elsewhere.outgoing == ()
        assert elsewhere.ignored == (
            "a patched input of node 'call' must keep its connection, 'openai'"
        )
