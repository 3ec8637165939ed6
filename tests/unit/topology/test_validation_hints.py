"""Validation says what was probably meant: did you mean, YAML's booleans, and one problem
per mistake. An end's output may be one template, checked when the end runs."""

from __future__ import annotations

from typing import Any

import yaml

from braidflow.engine import ExecutionState
from braidflow.engine.dry_run import dry_run, parse_answers
from braidflow.topology import Problem, compile_workflow, validate_text
from braidflow.topology.handler_names import misspelt_handlers
from braidflow.topology.suggestions import closest, did_you_mean

CHAIN = """
id: chain
nodes:
  - {id: shape, type: transform, params: {set: {user: "${input.user}"}}}
  - {id: done, type: end, params: {output: OUTPUT}}
edges:
  - {from: shape, to: done}
"""


def chain(output: str) -> str:
    return CHAIN.replace("OUTPUT", output)


def run(text: str, input_: Any) -> ExecutionState:
    state = None
    for _, result in dry_run(compile_workflow(yaml.safe_load(text)), input_, parse_answers({})):
        state = result.state
    assert state is not None
    return state


def test_the_closest_name_is_suggested_and_none_when_nothing_is_close() -> None:
    assert closest("tansform", ["transform", "task"]) == "transform"
    assert closest("zzz", ["transform", "task"]) is None
    assert closest("task", ["task"]) is None
    assert did_you_mean("shap", ["shape", "done"]) == "; did you mean 'shape'?"
    assert did_you_mean("zzz", ["shape"]) == ""


def test_an_unknown_type_suggests_the_known_one_and_adds_no_follow_on_problem() -> None:
    text = chain('"${nodes.shape.output}"').replace("type: transform", "type: tansform")
    assert validate_text(text) == [
        Problem(
            "node 'shape'",
            "unknown type 'tansform'; did you mean 'transform'? (known: approval, code, decision,"
            " delay, end, foreach, http, join, loop, parallel, publish, subworkflow, task,"
            " transform, wait_event)",
        )
    ]


def test_an_edge_to_a_misspelt_node_suggests_it() -> None:
    text = chain("{}").replace("{from: shape, to: done}", "{from: shape, to: dnoe}")
    assert Problem("edge 'shape -> dnoe'", "to: 'dnoe' is not a node; did you mean 'done'?") in (
        validate_text(text)
    )


def test_a_reference_to_a_misspelt_node_suggests_it() -> None:
    text = chain('{user: "${nodes.shap.output.user}"}')
    assert validate_text(text) == [
        Problem(
            "node 'done'",
            "params.output: `nodes.shap.output.user`: unknown node 'shap'; did you mean 'shape'?",
        )
    ]


def test_yaml_reading_no_as_a_boolean_is_explained() -> None:
    [problem] = validate_text(chain("{}").replace("id: chain", "id: no"))
    assert problem.message == (
        "id: False is not of type 'string' (YAML read an unquoted no, off or false as the"
        " boolean false; quote it, e.g. 'no', to keep it text)"
    )


def test_an_end_output_may_be_one_template() -> None:
    assert validate_text(chain('"${nodes.shape.output}"')) == []


def test_an_end_output_that_is_text_around_a_template_is_refused() -> None:
    assert validate_text(chain('"user ${nodes.shape.output.user}"')) == [
        Problem(
            "node 'done'",
            "params.output: 'user ${nodes.shape.output.user}' is neither an object nor one ${...}"
            " template (the output must be an object)",
        )
    ]


def test_an_end_whose_template_gives_an_object_completes_with_it() -> None:
    state = run(chain('"${nodes.shape.output}"'), {"user": "ada"})
    assert state.status == "completed"
    assert state.output == {"user": "ada"}


def test_an_end_whose_template_gives_no_object_fails_naming_the_node() -> None:
    state = run(chain('"${nodes.shape.output.user}"'), {"user": "ada"})
    assert state.status == "failed"
    assert state.error is not None
    assert state.error.type == "InvalidOutput"
    assert state.error.node_id == "done"
    assert state.error.message == "the output of end node 'done' is a string, not an object"


HANDLERS = """
id: handlers
nodes:
  - {id: check, type: task, params: {handler: hr.chek}}
  - {id: each, type: foreach, params: {items: [1], do: {type: task, params: {handler: hr.notfy}}}}
  - {id: other, type: task, params: {handler: billing.charge}}
  - {id: done, type: end}
edges:
  - {from: check, to: each}
  - {from: each, to: other}
  - {from: other, to: done}
"""


def test_a_handler_close_to_a_registered_one_is_suggested_and_a_foreign_one_is_not() -> None:
    wf = compile_workflow(yaml.safe_load(HANDLERS))
    assert misspelt_handlers(wf, ["hr.check", "hr.notify"]) == [
        Problem(
            "node 'check'",
            "no task handler 'hr.chek' is registered on this worker; did you mean 'hr.check'?",
        ),
        Problem(
            "node 'each'",
            "no task handler 'hr.notfy' is registered on this worker; did you mean 'hr.notify'?",
        ),
    ]
    assert misspelt_handlers(wf, []) == []
