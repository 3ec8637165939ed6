"""A streamed chat completion read from its server-sent events: events cut anywhere between
reads, text and tool-call deltas put together, the usage of the last chunk, errors named."""

from __future__ import annotations

import json
from typing import Any

import pytest

from braidflow.connectors.llm_stream import Assembly, EventStream
from braidflow.tasks import NodeFailure

WHERE = "POST http://127.0.0.1/v1/chat/completions"


def chunk(delta: dict[str, Any], finish: str | None = None, **more: Any) -> str:
    body = {"model": "tiny-1", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps({**body, **more})}\n\n"


def assembled(wire: str, cut_every: int) -> Assembly:
    """The chunks of `wire` fed `cut_every` bytes at a time, as reads may cut them."""
    events, assembly = EventStream(), Assembly()
    raw = wire.encode()
    for start in range(0, len(raw), cut_every):
        for data in events.feed(raw[start : start + cut_every]):
            assembly.add(data, WHERE)
    for data in events.close():
        assembly.add(data, WHERE)
    return assembly


TEXT = (
    ": a comment line\n\n"
    + chunk({"role": "assistant", "content": ""})
    + chunk({"content": "Hello"})
    + chunk({"content": " there"})
    + chunk({}, "stop")
    + 'data: {"model": "tiny-1", "choices": [], "usage": {"prompt_tokens": 3,'
    + ' "completion_tokens": 2, "total_tokens": 5}}\r\n\r\n'
    + "data: [DONE]\n\n"
)


@pytest.mark.parametrize("cut_every", [1, 7, 10_000])
def test_text_deltas_cut_anywhere_make_the_answer_with_the_last_chunks_usage(
    cut_every: int,
) -> None:
    assembly = assembled(TEXT, cut_every)
    assert assembly.done
    answer = assembly.completion(WHERE)
    assert (answer.content, answer.model, answer.finish_reason) == ("Hello there", "tiny-1", "stop")
    assert answer.usage == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    assert answer.tool_calls == ()


def test_tool_call_deltas_are_joined_by_their_index() -> None:
    first = {"index": 0, "id": "call_1", "type": "function"}
    wire = (
        chunk({"tool_calls": [{**first, "function": {"name": "weather", "arguments": '{"ci'}}]})
        + chunk({"tool_calls": [{"index": 1, "id": "call_2", "function": {"name": "page"}}]})
        + chunk({"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Oslo"}'}}]})
        + chunk({}, "tool_calls")
    )
    answer = assembled(wire, 5).completion(WHERE)
    assert answer.content == ""
    assert answer.finish_reason == "tool_calls"
    assert [
        (c["id"], c["function"]["name"], c["function"]["arguments"]) for c in answer.tool_calls
    ] == [
        ("call_1", "weather", '{"city": "Oslo"}'),
        ("call_2", "page", ""),
    ]


def test_an_event_of_several_data_lines_is_one_data() -> None:
    events = EventStream()
    assert events.feed('data: {"a":\ndata: 1}\n') == []
    assert events.feed("\n") == ['{"a":\n1}']


def test_an_endpoint_without_usage_in_its_stream_gives_no_usage() -> None:
    answer = assembled(chunk({"content": "ok"}, "stop") + "data: [DONE]\n\n", 100).completion(WHERE)
    assert (answer.content, answer.usage) == ("ok", {})


@pytest.mark.parametrize(
    ("wire", "error", "named"),
    [
        ("data: {not json\n\n", "llm.invalid_response", "a streamed chunk is not JSON"),
        ('data: {"error": {"message": "overloaded"}}\n\n', "llm.invalid_response", "overloaded"),
        ("data: [DONE]\n\n", "llm.invalid_response", "the stream held no chunk"),
        (chunk({"refusal": "I can't"}), "llm.refused", "the model refused: I can't"),
    ],
)
def test_a_stream_without_an_answer_fails_naming_why(wire: str, error: str, named: str) -> None:
    with pytest.raises(NodeFailure) as failed:
        assembled(wire, 100).completion(WHERE)
    assert failed.value.type == error
    assert named in failed.value.message
