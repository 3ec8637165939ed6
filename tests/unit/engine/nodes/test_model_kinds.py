"""The agent library's model kinds as the engine sees them: `classify`, `extract` and
`summarize` send their rendered text and fixed params to an executor, and the label a
classify node chose picks the edge it goes on along."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from engine_driver import applied, events, of_type, settle, workflow

from braidflow.cli import main
from braidflow.engine import StartExecution, TaskRequest, step
from braidflow.engine.messages import NodeCompleted, NodeError, NodeFailed, RedriveNode
from braidflow.engine.state import ExecutionStatus, NodeStatus

T0 = 1_795_000_000_000

TRIAGE = """
id: triage
nodes:
  - id: sort
    type: classify
    params:
      connection: local
      model: tiny-1
      text: "${input.title}: ${input.body}"
      labels: {bug: something is broken, question: someone asks how, praise: a thank-you}
      instructions: Tickets of team ${input.team}.
      temperature: 0
  - {id: fix, type: end, params: {output: {went: fix}}}
  - {id: answer, type: end, params: {output: {went: answer}}}
  - {id: thank, type: end, params: {output: {went: thank, label: "${nodes.sort.output.label}"}}}
edges:
  - {from: sort, to: fix, label: bug}
  - {from: sort, to: answer, label: question}
  - {from: sort, to: thank, default: true}
"""

INPUT = {"title": "Login", "body": "it fails", "team": "web"}


def started(text: str = TRIAGE) -> tuple[Any, Any, TaskRequest]:
    wf = workflow(text)
    result = applied(wf, None, StartExecution("s", "ex", T0, "triage", 1, INPUT))
    [request] = of_type(result.outgoing, TaskRequest)
    return wf, result.state, request


def answered(label: Any) -> tuple[Any, list[Any]]:
    wf, state, _ = started()
    done = applied(wf, state, NodeCompleted("c", "ex", T0 + 5, "sort", 1, {"label": label}))
    return settle(wf, done)


def test_a_classify_request_holds_the_rendered_text_and_the_labels() -> None:
    _, _, request = started()
    assert (request.kind, request.handler) == ("classify", None)
    assert request.input == {
        "connection": "local",
        "model": "tiny-1",
        "text": "Login: it fails",
        "instructions": "Tickets of team web.",
        "labels": {
            "bug": "something is broken",
            "question": "someone asks how",
            "praise": "a thank-you",
        },
        "temperature": 0,
    }


@pytest.mark.parametrize(
    ("label", "went", "skipped"),
    [("bug", "fix", {"answer", "thank"}), ("question", "answer", {"fix", "thank"})],
)
def test_the_label_chosen_picks_the_edge_named_by_it(
    label: str, went: str, skipped: set[str]
) -> None:
    state, sent = answered(label)
    assert state.status == ExecutionStatus.COMPLETED
    assert state.output == {"went": went}
    assert {n for n, run in state.nodes.items() if run.status == NodeStatus.SKIPPED} == skipped
    assert [e for e in events(sent) if e.startswith("node.skipped")] == [
        f"node.skipped:{node}" for node in sorted(skipped, key=["fix", "answer", "thank"].index)
    ]


def test_a_label_no_edge_names_takes_the_default_edge() -> None:
    state, _ = answered("praise")
    assert state.output == {"went": "thank", "label": "praise"}


def test_an_output_whose_label_is_not_one_of_the_labels_fails_the_attempt() -> None:
    state, sent = answered("rant")
    assert state.status == ExecutionStatus.FAILED
    assert state.error == NodeError(
        "classify.unknown_label", "the label 'rant' is not one of bug, question, praise", "sort"
    )
    assert not [e for e in events(sent) if e.startswith("node.skipped")]


def test_a_classify_with_one_plain_edge_goes_on_whatever_the_label() -> None:
    text = TRIAGE.split("edges:")[0] + "edges:\n  - {from: sort, to: fix}\n"
    text = text.replace("  - {id: answer, type: end, params: {output: {went: answer}}}\n", "")
    text = "\n".join(line for line in text.splitlines() if "id: thank" not in line)
    wf, state, _ = started(text)
    done = applied(wf, state, NodeCompleted("c", "ex", T0 + 5, "sort", 1, {"label": "praise"}))
    final, _ = settle(wf, done)
    assert final.output == {"went": "fix"}


def test_extract_and_summarize_requests_carry_their_own_params() -> None:
    text = """
id: read
nodes:
  - id: fields
    type: extract
    params:
      connection: local
      model: tiny-1
      text: "${input.body}"
      schema: {type: object, properties: {order: {type: string}}}
  - id: brief
    type: summarize
    params: {connection: local, model: tiny-1, text: "${input.body}", max_words: 12, style: a headline}
  - {id: done, type: end}
edges:
  - {from: fields, to: brief}
  - {from: brief, to: done}
"""
    wf, state, fields = started(text)
    assert fields.input == {
        "connection": "local",
        "model": "tiny-1",
        "text": "it fails",
        "schema": {"type": "object", "properties": {"order": {"type": "string"}}},
    }
    output = {"fields": {"order": "A-1"}, "model": "tiny-1", "usage": {}}
    done = applied(wf, state, NodeCompleted("c", "ex", T0 + 5, "fields", 1, output))
    [brief] = of_type(done.outgoing, TaskRequest)
    assert brief.input == {
        "connection": "local",
        "model": "tiny-1",
        "text": "it fails",
        "style": "a headline",
        "max_words": 12,
    }


def test_a_redrive_may_patch_a_classify_text_never_its_connection() -> None:
    wf, state, request = started()
    error = NodeError("llm.5xx", "down")
    failed = step(wf, state, NodeFailed("f", "ex", T0 + 1, "sort", 1, error)).state
    moved = {**request.input, "connection": "elsewhere"}
    redriven = step(wf, failed, RedriveNode("r", "ex", T0 + 2, "sort", "ops", moved))
    assert redriven.ignored == "a patched input of node 'sort' must keep its connection, 'local'"


def test_a_dry_run_answers_the_label_and_shows_the_edge_it_chose(tmp_path: Path) -> None:
    path = tmp_path / "triage.yaml"
    path.write_text(TRIAGE)
    answers = tmp_path / "answers.yaml"
    answers.write_text("sort: {label: question, model: tiny-1, usage: {total_tokens: 9}}\n")
    given = ["--input", json.dumps(INPUT), "--answers", str(answers)]
    result = CliRunner().invoke(main, ["dry-run", str(path), *given])
    assert result.exit_code == 0, result.output
    assert "-> classify local tiny-1 input {" in result.output
    assert "path: sort -> answer" in result.output
