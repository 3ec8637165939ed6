"""The rounds of a draft and what the model is told (braidflow/topology/drafts.py), with plain data:
the model is a list of scripted answers."""

from __future__ import annotations

import asyncio
import json

from braidflow.engine.dry_run import dry_run, parse_answers
from braidflow.engine.state import ExecutionStatus
from braidflow.topology import load_workflow
from braidflow.topology.drafts import (
    DECLINE,
    INSTRUCTIONS,
    Draft,
    Known,
    definition_text,
    diff,
    draft,
    dry_run_answers,
    known_of,
    prompt,
    system_message,
)

VALID = """id: greet
nodes:
  - {id: done, type: end, params: {output: {hello: "${input.name}"}}}
edges: []
"""

BROKEN = """id: greet
nodes:
  - {id: done, type: ennd}
edges: []
"""

TRIGGERED = """id: orders
name: Note orders
triggers:
  - event: {types: ["order.*", "refund.issued"]}
nodes:
  - {id: wait, type: wait_event, params: {type: payment.settled, correlate: "true"}}
  - {id: done, type: end}
edges:
  - {from: wait, to: done}
"""


def run_draft(
    answers: list[str], rounds: int = 3, current: str | None = None
) -> tuple[Draft, list[tuple[str, str]]]:
    """The draft of scripted `answers`, and every (system, prompt) the model was asked."""
    asked: list[tuple[str, str]] = []

    async def ask(system: str, question: str) -> str:
        asked.append((system, question))
        return answers[min(len(asked), len(answers)) - 1]

    done = asyncio.run(draft(ask, "greet people", Known(), current=current, rounds=rounds))
    return done, asked


def test_a_valid_first_answer_is_the_draft() -> None:
    done, asked = run_draft([VALID])
    assert done.valid and done.text == VALID
    assert len(asked) == 1
    assert asked[0][1] == "Request: greet people"


def test_the_problems_of_an_answer_are_sent_back_with_it() -> None:
    done, asked = run_draft([BROKEN, VALID])
    assert done.valid
    assert [bool(r.problems) for r in done.rounds] == [True, False]
    assert "unknown type 'ennd'" in done.rounds[0].problems[0]
    question = asked[1][1]
    assert "Your last answer:\n" + BROKEN in question
    assert f"- {done.rounds[0].problems[0]}" in question


def test_a_draft_stops_after_its_rounds_with_the_last_answer_and_its_problems() -> None:
    done, asked = run_draft([BROKEN], rounds=2)
    assert not done.valid
    assert len(asked) == 2 and len(done.rounds) == 2
    assert done.text == BROKEN


def test_a_model_that_says_it_cannot_draft_ends_the_draft_with_its_words() -> None:
    done, asked = run_draft([BROKEN, f"  {DECLINE} I am a stand-in.\n"])
    assert done.declined == "I am a stand-in."
    assert not done.valid
    assert len(asked) == 2
    assert done.text == BROKEN  # the rounds before it stay
    declined_at_once, _ = run_draft([f"{DECLINE} no"])
    assert (declined_at_once.rounds, declined_at_once.text, declined_at_once.valid) == (
        (),
        "",
        False,
    )
    assert f"starts `{DECLINE}` and says why" in asked[0][0]


def test_an_edit_asks_to_change_the_deployed_text_keeping_its_id() -> None:
    _, asked = run_draft([VALID], current=VALID)
    assert "keep its id:\n" + VALID in asked[0][1]


def test_the_definition_is_read_out_of_a_fenced_answer() -> None:
    assert definition_text(f"Here it is:\n```yaml\n{VALID}```\nEnjoy.") == VALID
    assert definition_text(f"```\n{VALID}```") == VALID
    assert definition_text(VALID + "\n\n") == VALID


def test_the_model_is_told_the_schema_the_kinds_and_what_is_deployed() -> None:
    known = known_of([load_workflow(TRIGGERED), load_workflow(VALID)])
    assert known == Known(
        {"orders": "Note orders", "greet": ""}, ("order.*", "payment.settled", "refund.issued")
    )
    message = system_message(known)
    assert message.startswith(INSTRUCTIONS)
    schema = message.partition("JSON Schema of a definition:\n")[2].partition("\n")[0]
    assert json.loads(schema)["$defs"]["params_llm"]
    kinds = json.loads(message.partition("Node kinds")[2].partition("\n")[2].partition("\n")[0])
    assert kinds["http"]["family"] == "work" and "url" in kinds["http"]["params"]["properties"]
    assert "- orders: Note orders" in message
    assert "Known event types:\norder.*, payment.settled, refund.issued" in message


def test_nothing_deployed_is_said() -> None:
    message = system_message(Known())
    assert "Deployed workflows:\n(none)" in message
    assert "Known event types:\n(none)" in message


def test_a_first_question_holds_only_the_request() -> None:
    assert prompt("greet people", None, None) == "Request: greet people"


def test_the_diff_names_both_sides() -> None:
    changed = diff(VALID, VALID.replace("hello", "hi"), "greet")
    assert changed.startswith("--- greet (deployed)\n+++ greet (drafted)\n")
    assert '-  - {id: done, type: end, params: {output: {hello: "${input.name}"}}}' in changed
    assert diff(VALID, VALID, "greet") == ""


TRIAGED = """
id: triaged
nodes:
  - id: sort
    type: classify
    params: {connection: c, model: m, text: "${input.text}", labels: {question: asks, bug: broken}}
  - id: reply
    type: llm
    params: {connection: c, model: m, prompt: "Answer ${input.text}"}
  - id: send
    type: email
    params: {connection: mail, from: a@example.test, to: b@example.test, subject: Re, text: "${nodes.reply.output.answer}"}
  - id: done
    type: end
    params: {output: {label: "${nodes.sort.output.label}", id: "${nodes.send.output.message_id}"}}
edges:
  - {from: sort, to: reply}
  - {from: reply, to: send}
  - {from: send, to: done}
"""


def test_a_drafts_dry_run_answers_library_nodes_in_their_shape_a_classify_its_first_label() -> None:
    answers = dry_run_answers(load_workflow(TRIAGED))
    assert answers == {
        "sort": {"label": "question", "model": "m", "usage": {}},
        "reply": {"answer": "", "finish_reason": "stop", "model": "m", "usage": {}},
        "send": {"message_id": "", "accepted": [], "refused": {}},
    }
    [*_, last] = dry_run(load_workflow(TRIAGED), {"text": "hi"}, parse_answers(answers))
    assert last[1].state.status == ExecutionStatus.COMPLETED
    assert last[1].state.output == {"label": "question", "id": ""}
