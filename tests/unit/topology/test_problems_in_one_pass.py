"""Every problem with waits, on_error edges and settings is found in one pass, even when the
graph cannot be checked."""

from __future__ import annotations

from typing import Any

from onboarding_definition import edge, edited, node

from braidflow.topology import Problem, validate_text

# One pass


def test_every_problem_with_the_new_features_is_found_in_one_pass() -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["settings"]["on_failure"] = "retry"
        node(doc, "cool_off")["params"] = {"for": "1h", "until": "2027-01-04T09:00:00Z"}
        node(doc, "ask")["params"].update(choices=["yes", "no"])
        node(doc, "order")["params"].pop("workflow")
        edge(doc, "provision", "note_failure")["when"] = "true"
        node(doc, "settled")["timeout"] = "1m"

    assert validate_text(edited(change)) == [
        Problem("node 'order'", "params: 'workflow' is a required property"),
        Problem("definition", "settings.on_failure: 'retry' is not one of ['fail', 'park']"),
        Problem("node 'settled'", "has `timeout` and `params.timeout`; give only one"),
        Problem("node 'ask'", "params.on_timeout: 'reject' is not among the choices (yes, no)"),
        Problem("node 'cool_off'", "params: a delay takes `for` or `until`, not both"),
        Problem("edge 'provision -> note_failure'", "an on_error edge takes no `when`"),
    ]


def test_param_problems_are_found_even_when_the_graph_cannot_be_checked() -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["edges"] = "none"
        node(doc, "cool_off")["params"] = {}

    assert validate_text(edited(change)) == [
        Problem("definition", "edges: 'none' is not of type 'array'"),
        Problem(
            "node 'cool_off'", "params: a delay needs `for` (a duration) or `until` (a timestamp)"
        ),
    ]


def test_a_node_type_that_is_not_text_is_one_schema_problem() -> None:
    text = edited(lambda d: node(d, "cool_off").update(type=["delay"]))
    assert validate_text(text) == [
        Problem(
            "node 'cool_off'",
            "unknown type ['delay'] (known:"
            " approval, code, decision, delay, end, foreach, http, join, loop, parallel, publish, subworkflow,"
            " task, transform, wait_event)",
        )
    ]
