"""How an llm node reads a chat completion: the answer against `output`, the usage, and
the wait a 429 asks for."""

from __future__ import annotations

from typing import Any

import pytest

from braidflow.connectors.llm_answers import (
    Completion,
    added,
    completion,
    messages,
    read_answer,
    response_format,
    retry_after_s,
)
from braidflow.tasks import NodeFailure

SCHEMA = {"type": "object", "required": ["n"], "properties": {"n": {"type": "integer"}}}


def test_the_system_message_comes_first_when_there_is_one() -> None:
    assert messages(None, "hi") == [{"role": "user", "content": "hi"}]
    assert messages("be brief", "hi")[0] == {"role": "system", "content": "be brief"}


def test_json_and_a_schema_ask_for_structured_output_and_text_for_none() -> None:
    assert response_format("text") is None
    assert response_format("json") == {"type": "json_object"}
    assert response_format(SCHEMA) == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": SCHEMA},
    }


def test_text_is_taken_as_it_is() -> None:
    assert read_answer(" {not json ", "text") == (" {not json ", None)


def test_json_is_parsed_and_a_markdown_fence_around_it_dropped() -> None:
    assert read_answer('{"n": 1}', "json") == ({"n": 1}, None)
    assert read_answer('```json\n{"n": 2}\n```', SCHEMA) == ({"n": 2}, None)


def test_an_answer_that_is_not_json_says_so() -> None:
    value, problem = read_answer('{"n": ', "json")
    assert value is None and problem is not None and problem.startswith("the answer is not JSON")


def test_an_answer_breaking_the_schema_names_where() -> None:
    _, problem = read_answer('{"n": "three"}', SCHEMA)
    assert problem == "the answer breaks the output schema at n: 'three' is not of type 'integer'"
    _, problem = read_answer("[]", SCHEMA)
    assert problem == "the answer breaks the output schema: [] is not of type 'object'"


def body(**message: Any) -> dict[str, Any]:
    return {
        "model": "m-1",
        "choices": [{"message": message, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5, "extra": 1},
    }


def test_a_completion_gives_the_text_model_usage_and_finish_reason() -> None:
    assert completion(body(role="assistant", content="hi"), "POST x") == Completion(
        "hi", "m-1", {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}, "stop"
    )


def test_only_the_counts_an_endpoint_reports_are_kept() -> None:
    reply = body(content="hi") | {"usage": {"completion_tokens": 2, "prompt_tokens": "?"}}
    assert completion(reply, "POST x").usage == {"completion_tokens": 2}
    assert completion(body(content="hi") | {"usage": None}, "POST x").usage == {}


@pytest.mark.parametrize(
    ("reply", "kind"),
    [
        ({"choices": []}, "llm.invalid_response"),
        ([], "llm.invalid_response"),
        (body(content=None), "llm.invalid_response"),
        (body(content=None, refusal="I cannot help with that"), "llm.refused"),
    ],
)
def test_a_response_without_an_answer_fails_the_node(reply: Any, kind: str) -> None:
    with pytest.raises(NodeFailure) as failed:
        completion(reply, "POST http://x/chat/completions")
    assert failed.value.type == kind
    assert failed.value.message.startswith("POST http://x/chat/completions: ")


def test_usage_adds_up_in_a_steady_order() -> None:
    total = added({"total_tokens": 5, "prompt_tokens": 3}, {"prompt_tokens": 4})
    assert list(total.items()) == [("prompt_tokens", 7), ("total_tokens", 5)]


@pytest.mark.parametrize(
    ("header", "wait"),
    [
        ("2", 2.0),
        ("0.5", 0.5),
        ("-3", 0.0),
        (None, 1.0),
        ("soon", 1.0),
        ("Wed, 21 Oct 2015 07:28:10 GMT", 10.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
    ],
)
def test_retry_after_is_seconds_or_an_http_date(header: str | None, wait: float) -> None:
    now = 1445412480.0  # Wed, 21 Oct 2015 07:28:00 GMT
    assert retry_after_s(header, now, 1.0) == wait
