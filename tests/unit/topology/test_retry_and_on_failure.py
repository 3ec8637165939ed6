"""`retry.on` (YAML's `on` key included) and `settings.on_failure`: their values and problems."""

from __future__ import annotations

from typing import Any

import pytest
from onboarding_definition import edited, node

from braidflow.topology import Problem, load_workflow, parse_text, validate_text

# retry.on and settings.on_failure


def test_retry_on_written_unquoted_in_yaml_is_the_key_on() -> None:
    # YAML 1.1 reads a bare `on` as true; a definition key must stay the word.
    text = """
id: wf
nodes:
  - id: call
    type: http
    params: {method: GET, url: "http://example.test"}
    retry:
      max_attempts: 2
      on: [Timeout]
  - {id: done, type: end}
edges:
  - {from: call, to: done}
"""
    workflow = load_workflow(text)
    retry = workflow.definition.nodes[0].retry
    assert retry is not None and retry.on == ("Timeout",)


def test_yaml_values_keep_their_yaml_meaning_and_only_keys_change() -> None:
    assert parse_text("no: 1\non: [yes, on]\nTrue: false\n") == {
        "no": 1,
        "on": [True, True],
        True: False,
    }
    assert parse_text('{"on": ["Timeout"]}') == {"on": ["Timeout"]}


@pytest.mark.parametrize(
    ("on", "message"),
    [
        ([], "retry.on: [] should be non-empty"),
        (["Timeout", "Timeout"], "retry.on: ['Timeout', 'Timeout'] has non-unique elements"),
        ("Timeout", "retry.on: 'Timeout' is not of type 'array'"),
        ([""], "retry.on.0: '' should be non-empty"),
    ],
)
def test_retry_on_problems(on: Any, message: str) -> None:
    text = edited(lambda d: node(d, "provision")["retry"].update(on=on))
    assert validate_text(text) == [Problem("node 'provision'", message)]


def test_on_failure_is_fail_or_park() -> None:
    text = edited(lambda d: d["settings"].update(on_failure="stop"))
    assert validate_text(text) == [
        Problem("definition", "settings.on_failure: 'stop' is not one of ['fail', 'park']")
    ]
