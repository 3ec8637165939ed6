"""What the agent library's model kinds ask of an endpoint: the node's text alone as the user
message, the instructions in the system message, and a JSON Schema that holds a classify
label to the node's labels and extracted fields to the node's schema."""

from __future__ import annotations

import jsonschema
import pytest

from braidflow.connectors.agent_library import ModelKind, question, shaped
from braidflow.connectors.llm import LlmClient
from braidflow.connectors.llm_answers import read_answer

ASKED = {"connection": "local", "model": "tiny-1", "text": "Login fails", "temperature": 0}


def test_a_classify_question_lists_the_labels_and_asks_for_one_by_an_enum() -> None:
    asked = question(
        "classify",
        {**ASKED, "labels": {"bug": "broken", "question": "how to"}, "instructions": "Be strict."},
    )
    assert asked["prompt"] == "Login fails"
    assert (asked["connection"], asked["model"], asked["temperature"]) == ("local", "tiny-1", 0)
    assert "- bug: broken\n- question: how to" in asked["system"]
    assert asked["system"].endswith("\nBe strict.")
    assert read_answer('{"label": "bug"}', asked["output"]) == ({"label": "bug"}, None)
    _, problem = read_answer('{"label": "rant"}', asked["output"])
    assert problem is not None and "'rant' is not one of ['bug', 'question']" in problem


def test_a_label_list_asks_for_the_labels_in_the_order_written() -> None:
    asked = question("classify", {**ASKED, "labels": ["question", "bug"]})
    assert asked["output"]["properties"]["label"] == {"enum": ["question", "bug"]}
    assert "- question\n- bug" in asked["system"]
    jsonschema.Draft202012Validator.check_schema(asked["output"])


def test_an_extract_question_asks_for_the_nodes_schema() -> None:
    schema = {"type": "object", "required": ["order"], "properties": {"order": {"type": "string"}}}
    asked = question("extract", {**ASKED, "schema": schema})
    assert asked["output"] == schema
    assert '"order"' in asked["system"] and asked["prompt"] == "Login fails"


@pytest.mark.parametrize(
    ("more", "said"),
    [
        ({}, "Summarize the text you are given. Answer with only the summary."),
        (
            {"max_words": 12, "style": "a headline"},
            "Summarize the text you are given in at most 12 words, written as a headline."
            " Answer with only the summary.",
        ),
    ],
)
def test_a_summarize_question_asks_for_text(more: dict[str, object], said: str) -> None:
    asked = question("summarize", {**ASKED, **more})
    assert (asked["system"], asked["output"]) == (said, "text")


def test_each_kind_shapes_the_llm_answer_into_its_output() -> None:
    def llm(answer: object) -> dict[str, object]:
        return {
            "answer": answer,
            "model": "tiny-1",
            "usage": {"total_tokens": 7},
            "finish_reason": "stop",
        }

    common = {"model": "tiny-1", "usage": {"total_tokens": 7}}
    assert shaped("classify", llm({"label": "bug"})) == {"label": "bug", **common}
    assert shaped("extract", llm({"order": "A-1"})) == {"fields": {"order": "A-1"}, **common}
    assert shaped("summarize", llm(" Login fails. \n")) == {"summary": "Login fails.", **common}


def test_only_the_model_kinds_of_the_library_are_run() -> None:
    with pytest.raises(ValueError, match="'llm'"):
        ModelKind(LlmClient({}), "llm")
