"""An llm node's tools without the I/O: what the endpoint is told of them, a call's arguments
checked against the tool's parameters, the params of the work a call runs, and what the
model and the node's output get back."""

from __future__ import annotations

import json
from typing import Any

from braidflow.connectors.llm_answers import completion
from braidflow.connectors.llm_tools import (
    KEPT_RESULT_CHARS,
    call_arguments,
    definitions,
    kept_call,
    result_for_model,
    tool_key,
    tool_message,
    work,
)

WEATHER: dict[str, Any] = {
    "name": "weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "required": ["city"],
        "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
    },
    "http": {"url": "http://127.0.0.1:9/weather/{city}"},
}
PAGE: dict[str, Any] = {
    "name": "page",
    "description": "A page's title.",
    "parameters": {
        "type": "object",
        "required": ["url"],
        "properties": {"url": {"type": "string"}},
    },
    "kind": "fetch_page",
    "params": {"select": {"title": "h1"}},
}


def test_the_endpoint_is_told_each_tools_name_description_and_parameters() -> None:
    bare = {"name": "now", "description": "The time.", "kind": "code", "params": {}}
    assert definitions([WEATHER, bare]) == [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "description": "The weather in a city.",
                "parameters": WEATHER["parameters"],
            },
        },
        {
            "type": "function",
            "function": {
                "name": "now",
                "description": "The time.",
                "parameters": {"type": "object", "properties": {}},
            },
        },
    ]


def test_arguments_that_break_the_parameters_are_a_problem_not_a_failure() -> None:
    assert call_arguments('{"city": "Oslo"}', WEATHER) == ({"city": "Oslo"}, None)
    _, problem = call_arguments('{"city": 3}', WEATHER)
    assert problem == "the arguments break the tool's parameters at city: 3 is not of type 'string'"
    assert call_arguments("[1]", WEATHER) == (None, "the arguments are not a JSON object")
    assert str(call_arguments("{city", WEATHER)[1]).startswith("the arguments are not JSON")
    assert call_arguments("", {"name": "now"}) == ({}, None)


def test_an_http_tool_fills_its_url_and_sends_the_other_arguments_as_query_or_body() -> None:
    kind, params, problem = work(WEATHER, {"city": "São Paulo/Centro", "days": 2})
    assert (kind, problem) == ("http", None)
    assert params == {
        "method": "GET",
        "url": "http://127.0.0.1:9/weather/S%C3%A3o%20Paulo%2FCentro",
        "query": {"days": "2"},
    }
    posted = {**WEATHER, "http": {"method": "POST", "url": "http://x/w", "headers": {"X-A": "1"}}}
    assert work(posted, {"city": "Oslo"})[1] == {
        "method": "POST",
        "url": "http://x/w",
        "headers": {"X-A": "1"},
        "body": {"city": "Oslo"},
    }


def test_a_kind_tool_runs_with_its_fixed_params_and_the_arguments_checked_as_that_kinds() -> None:
    assert work(PAGE, {"url": "http://127.0.0.1:9/p"}) == (
        "fetch_page",
        {"url": "http://127.0.0.1:9/p", "select": {"title": "h1"}},
        None,
    )
    # The author's fixed params win over an argument of the same name.
    assert work(PAGE, {"url": "u", "select": {"all": "*"}})[1]["select"] == {"title": "h1"}
    bad = {**PAGE, "params": {"select": {"title": "h1["}}}
    assert "selector" in str(work(bad, {"url": "u"})[2])
    loose = {**PAGE, "parameters": {"type": "object"}}
    assert work(loose, {})[2] == "'url' is a required property"


def test_the_model_reads_a_result_or_an_error_and_the_output_keeps_them_bounded() -> None:
    output = {"status": 200, "headers": {"a": "b"}, "body": {"t": 1}}
    assert result_for_model("http", output) == {"status": 200, "body": {"t": 1}}
    assert result_for_model("fetch_page", {"title": "x"}) == {"title": "x"}
    assert tool_message("call_1", {"t": 1}, None) == {
        "role": "tool",
        "tool_call_id": "call_1",
        "content": '{"t": 1}',
    }
    error = {"type": "llm.invalid_arguments", "message": "no"}
    assert json.loads(tool_message("c", None, error)["content"]) == {"error": error}
    big = kept_call(2, "page", {"url": "u"}, "x" * 5000, None)
    assert big["round"] == 2 and big["arguments"] == {"url": "u"}
    assert big["result"].endswith("more characters)")
    assert len(big["result"]) < KEPT_RESULT_CHARS + 50
    assert kept_call(1, "w", {}, None, error) == {
        "round": 1,
        "name": "w",
        "arguments": {},
        "error": error,
    }
    assert tool_key("e1:ask:1", 2, 3) == "e1:ask:1.tool-2-3"


def test_a_message_of_tool_calls_without_text_is_a_completion() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "w", "arguments": "{}"}}
    body = {"choices": [{"message": {"content": None, "tool_calls": [call, {"x": 1}]}}]}
    answer = completion(body, "here")
    assert (answer.content, answer.tool_calls) == ("", (call,))


def test_arguments_naming_a_secret_are_refused_and_a_dollar_reaches_the_http_call_as_is() -> None:
    named = '{"city": "\\u0024{secrets.API_KEY}"}'
    _, problem = call_arguments(named, WEATHER)
    assert problem == (
        "the arguments name a secret, ${secrets.API_KEY}: a tool's arguments are data"
    )
    posted = {**WEATHER, "http": {"method": "POST", "url": "http://x/{city}"}}
    params = work(posted, {"city": "$5", "note": "costs $$5"})[1]
    # The http kind reads `$$` as `$`: the endpoint gets what the model wrote.
    assert params["url"] == "http://x/%245"
    assert params["body"] == {"note": "costs $$$$5"}
