"""A `code` node's attempt is a task request holding its source, its rendered input and the
limits in force; a redrive may patch the input, never the source or the limits."""

from __future__ import annotations

from engine_driver import applied, of_type, workflow

from braidflow.engine import (
    NodeError,
    NodeFailed,
    RedriveNode,
    StartExecution,
    TaskRequest,
    step,
)

SOURCE = "def main(input):\n    return input['n'] * 2\n"
DEFINITION = f"""
id: double
nodes:
  - id: twice
    type: code
    params:
      source: {SOURCE!r}
      input: {{n: "${{input.n}}"}}
      limits: {{wall_ms: 2000, network: true}}
  - {{id: done, type: end, params: {{output: "${{nodes.twice.output}}"}}}}
edges:
  - {{from: twice, to: done}}
"""
LIMITS = {"cpu_ms": 1000, "memory_mb": 256, "wall_ms": 2000, "network": True}


def test_the_request_holds_the_source_the_rendered_input_and_the_limits_in_force() -> None:
    wf = workflow(DEFINITION)
    started = applied(wf, None, StartExecution("s", "ex", 1, "double", 1, {"n": 21}))
    (request,) = of_type(started.outgoing, TaskRequest)
    assert (request.kind, request.handler) == ("code", None)
    assert request.input == {"source": SOURCE, "input": {"n": 21}, "limits": LIMITS}


def test_a_redrive_may_patch_the_input_not_the_source_or_the_limits() -> None:
    wf = workflow(DEFINITION)
    started = applied(wf, None, StartExecution("s", "ex", 1, "double", 1, {"n": "x"}))
    (request,) = of_type(started.outgoing, TaskRequest)
    error = NodeError("TypeError", "can't multiply")
    state = applied(wf, started.state, NodeFailed("f", "ex", 2, "twice", 1, error)).state
    assert state is not None and state.status == "failed"

    fixed = {**request.input, "input": {"n": 4}}
    redriven = applied(wf, state, RedriveNode("r", "ex", 3, "twice", "ops", fixed))
    (sent,) = of_type(redriven.outgoing, TaskRequest)
    assert sent.input == fixed

    for patched in (
        {**request.input, "source": "def main(input):\n    return 'mine'\n"},
        {**request.input, "limits": {**LIMITS, "cpu_ms": 60_000}},
    ):
        result = step(wf, state, RedriveNode("r2", "ex", 4, "twice", "ops", patched))
        assert result.outgoing == ()
        assert result.ignored == (
            "a patched input of code node 'twice' may change its `input` only,"
            " not its source or limits"
        )


def test_a_patched_input_not_shaped_as_a_code_request_is_refused() -> None:
    wf = workflow(DEFINITION)
    started = applied(wf, None, StartExecution("s", "ex", 1, "double", 1, {"n": "x"}))
    error = NodeError("TypeError", "can't multiply")
    state = applied(wf, started.state, NodeFailed("f", "ex", 2, "twice", 1, error)).state
    result = step(wf, state, RedriveNode("r", "ex", 3, "twice", "ops", {"n": 4}))
    assert result.outgoing == ()
    assert result.ignored == (
        "a patched input of code node 'twice' must be {source, input, limits}"
    )
