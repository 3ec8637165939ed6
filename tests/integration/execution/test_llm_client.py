"""The llm nodes' client against the tests' OpenAI-compatible server on 127.0.0.1: what it
sends, what it makes of the answers, and how it waits out a 429 or fails."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from llm_server import ChatServer

from braidflow.connectors.connections import Connection
from braidflow.connectors.llm import LlmClient
from braidflow.engine.messages import TaskRequest
from braidflow.node_logs import NodeLog
from braidflow.secrets import EnvironmentSecrets, SecretError, SecretsAllowed, SecretScope
from braidflow.tasks import NodeFailure

KEY = "sk-test-5f2a9c"
ENVIRON = {"BRAIDFLOW_SECRET_LLM_KEY": KEY}
SCHEMA = {
    "type": "object",
    "required": ["label"],
    "properties": {"label": {"enum": ["bug", "question"]}},
}


@pytest.fixture
async def chat() -> AsyncIterator[tuple[ChatServer, str]]:
    server = ChatServer(key=KEY)
    async with TestServer(server.app(), host="127.0.0.1") as running:
        yield server, str(running.make_url("/v1")).rstrip("/")


@pytest.fixture
async def client(chat: tuple[ChatServer, str]) -> AsyncIterator[LlmClient]:
    _, url = chat
    llm = LlmClient(
        {
            "local": Connection("local", url, "${secrets.LLM_KEY}", {"X-Team": "support"}),
            "keyless": Connection("keyless", url),
            "priced": Connection(
                "priced", url, "${secrets.LLM_KEY}", prices={"tiny-1": (1_000.0, 2_000.0)}
            ),
        }
    )
    await llm.start()
    yield llm
    await llm.stop()


def scope(allowed: SecretsAllowed | None = None) -> SecretScope:
    return SecretScope(EnvironmentSecrets(ENVIRON), allowed=allowed or SecretsAllowed())


SPAN = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def task(timeout_ms: int | None = 5_000, **params: Any) -> TaskRequest:
    given = {"connection": "local", "model": "tiny-1", "output": "text"} | params
    return TaskRequest(
        "e1", "wf", "ask", "llm", 1, "e1:ask:1", 0, given, None, timeout_ms, traceparent=SPAN
    )


def script(steps: str) -> str:
    """A prompt of its own carrying `steps` (llm_server.py)."""
    return f"{uuid.uuid4().hex} | {steps}"


async def run(client: LlmClient, request: TaskRequest, secrets: SecretScope | None = None) -> Any:
    return await client.run(request, secrets or scope(), NodeLog(lambda: 0))


async def test_a_text_answer_comes_with_the_model_usage_and_finish_reason(
    chat: tuple[ChatServer, str], client: LlmClient
) -> None:
    server, _ = chat
    prompt = script("text:The printer is on fire")
    output = await run(client, task(prompt=prompt, system="Be brief.", temperature=0.2))
    # The test server counts words: 7 in the prompt (its id and script too), 2 in the system.
    assert output == {
        "answer": "The printer is on fire",
        "model": "tiny-1",
        "usage": {"prompt_tokens": 9, "completion_tokens": 5, "total_tokens": 14},
        "finish_reason": "stop",
    }
    [seen] = server.seen(prompt)
    assert seen.headers["authorization"] == f"Bearer {KEY}"
    assert seen.headers["idempotency-key"] == "e1:ask:1"
    assert seen.headers["x-team"] == "support"
    assert seen.headers["traceparent"] == SPAN
    assert seen.body == {
        "model": "tiny-1",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": prompt},
        ],
        "temperature": 0.2,
    }


async def test_a_priced_model_answers_with_what_its_usage_cost(client: LlmClient) -> None:
    output = await run(client, task(connection="priced", prompt=script("text:three words here")))
    usage = output["usage"]
    # 1,000 per million prompt tokens, 2,000 per million completion tokens.
    assert output["cost"] == (usage["prompt_tokens"] + 2 * usage["completion_tokens"]) / 1_000
    unpriced = await run(client, task(prompt=script("text:no price")))
    assert "cost" not in unpriced


async def test_max_tokens_is_sent_and_a_cut_answer_says_length(
    chat: tuple[ChatServer, str], client: LlmClient
) -> None:
    server, _ = chat
    prompt = script("text:one two three four five")
    output = await run(client, task(prompt=prompt, max_tokens=2))
    assert (output["answer"], output["finish_reason"]) == ("one two", "length")
    assert server.seen(prompt)[0].body["max_tokens"] == 2


async def test_json_output_asks_for_a_json_object_and_parses_it(
    chat: tuple[ChatServer, str], client: LlmClient
) -> None:
    server, _ = chat
    prompt = script('json:{"label": "bug", "score": 3}')
    output = await run(client, task(prompt=prompt, output="json"))
    assert output["answer"] == {"label": "bug", "score": 3}
    assert server.seen(prompt)[0].body["response_format"] == {"type": "json_object"}


async def test_a_schema_is_asked_for_and_a_malformed_answer_asked_again_with_the_problem(
    chat: tuple[ChatServer, str], client: LlmClient
) -> None:
    server, _ = chat
    prompt = script('malformed then json:{"label": "feature"} then json:{"label": "bug"}')
    output = await run(client, task(prompt=prompt, output=SCHEMA))
    assert output["answer"] == {"label": "bug"}
    first, second, third = server.seen(prompt)
    assert first.body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": SCHEMA},
    }
    # Each question again is another request: a key of its own, the conversation so far.
    keys = [s.headers["idempotency-key"] for s in (first, second, third)]
    assert keys == ["e1:ask:1", "e1:ask:1.2", "e1:ask:1.3"]
    assert second.body["messages"][-2] == {"role": "assistant", "content": '{"answer": '}
    assert "not JSON" in second.body["messages"][-1]["content"]
    assert "'feature' is not one of ['bug', 'question']" in third.body["messages"][-1]["content"]
    # The usage adds up all three requests: 1, 2 and 2 words answered.
    usage = output["usage"]
    assert usage["completion_tokens"] == 5
    assert usage["total_tokens"] == usage["prompt_tokens"] + 5


async def test_an_answer_that_keeps_breaking_the_schema_fails_the_node_with_the_problem(
    chat: tuple[ChatServer, str], client: LlmClient
) -> None:
    server, _ = chat
    prompt = script('json:{"label": "feature"}')
    with pytest.raises(NodeFailure) as failed:
        await run(client, task(prompt=prompt, output=SCHEMA))
    assert failed.value.type == "llm.invalid_answer"
    assert "asked 3 times" in failed.value.message
    assert "at label: 'feature' is not one of ['bug', 'question']" in failed.value.message
    assert len(server.seen(prompt)) == 3


async def test_a_429_waits_its_retry_after_then_asks_again_under_the_same_key(
    chat: tuple[ChatServer, str], client: LlmClient
) -> None:
    server, _ = chat
    prompt = script("429:1 then text:ok")
    node_log = NodeLog(lambda: 0)
    started = time.monotonic()
    output = await client.run(task(prompt=prompt), scope(), node_log)
    assert output["answer"] == "ok"
    assert time.monotonic() - started >= 1.0
    assert [s.headers["idempotency-key"] for s in server.seen(prompt)] == ["e1:ask:1"] * 2
    [line] = node_log.close()
    assert (line.level, line.message.endswith("answered 429; waiting 1 s")) == ("warning", True)


async def test_a_429_asking_longer_than_the_attempt_has_fails_at_once_as_rate_limited(
    chat: tuple[ChatServer, str], client: LlmClient
) -> None:
    server, _ = chat
    prompt = script("429:30 then text:ok")
    started = time.monotonic()
    with pytest.raises(NodeFailure) as failed:
        await run(client, task(timeout_ms=2_000, prompt=prompt))
    assert time.monotonic() - started < 1.0
    assert failed.value.type == "llm.rate_limited"
    assert "Retry-After 30 s; the attempt has " in failed.value.message
    assert len(server.seen(prompt)) == 1


async def test_429s_are_waited_out_a_few_times_only(
    chat: tuple[ChatServer, str], client: LlmClient
) -> None:
    server, _ = chat
    prompt = script("429:0")
    with pytest.raises(NodeFailure) as failed:
        await run(client, task(prompt=prompt))
    assert failed.value.type == "llm.rate_limited"
    assert "3 waits already" in failed.value.message
    assert len(server.seen(prompt)) == 4  # the first and three waited out


async def test_a_5xx_fails_the_attempt(client: LlmClient) -> None:
    with pytest.raises(NodeFailure) as failed:
        await run(client, task(prompt=script("500")))
    assert failed.value.type == "llm.5xx"
    assert "answered 500" in failed.value.message


async def test_an_answer_slower_than_the_timeout_fails_with_a_timeout(client: LlmClient) -> None:
    with pytest.raises(NodeFailure) as failed:
        await run(client, task(timeout_ms=300, prompt=script("slow:3")))
    assert failed.value.type == "TimeoutError"
    assert "300ms" in failed.value.message


async def test_an_unknown_connection_fails_naming_it_and_the_known_ones(client: LlmClient) -> None:
    with pytest.raises(NodeFailure) as failed:
        await run(client, task(connection="opneai", prompt="hi"))
    assert failed.value.type == "llm.unknown_connection"
    assert "'opneai'" in failed.value.message and "keyless, local" in failed.value.message


async def test_a_key_the_department_may_not_use_is_refused_before_any_request(
    chat: tuple[ChatServer, str], client: LlmClient
) -> None:
    server, _ = chat
    prompt = script("text:never")
    with pytest.raises(SecretError) as refused:
        await run(client, task(prompt=prompt), scope(SecretsAllowed(listed=frozenset())))
    assert refused.value.type == "SecretNotAllowed" and "'LLM_KEY'" in refused.value.message
    assert server.seen(prompt) == []


async def test_a_wrong_key_is_a_4xx(client: LlmClient) -> None:
    with pytest.raises(NodeFailure) as failed:
        await run(client, task(connection="keyless", prompt="hi"))
    assert failed.value.type == "llm.4xx"
    assert "answered 401" in failed.value.message


async def test_a_streamed_answer_is_put_together_with_the_usage_of_its_last_chunk(
    chat: tuple[ChatServer, str], client: LlmClient
) -> None:
    server, _ = chat
    prompt = script("text:The printer is on fire")
    node_log = NodeLog(lambda: 0)
    output = await client.run(task(prompt=prompt, stream=True), scope(), node_log)
    assert output["answer"] == "The printer is on fire"
    assert output["usage"]["completion_tokens"] == 5
    assert output["finish_reason"] == "stop"
    [seen] = server.seen(prompt)
    assert seen.body["stream"] is True
    assert seen.body["stream_options"] == {"include_usage": True}
    [line] = node_log.close()
    assert line.message.startswith("streamed answer: 8 chunks, the first text after")


async def test_a_streamed_schema_answer_is_asked_again_like_any_other(
    chat: tuple[ChatServer, str], client: LlmClient
) -> None:
    server, _ = chat
    prompt = script('malformed then json:{"label": "bug"}')
    output = await run(client, task(prompt=prompt, output=SCHEMA, stream=True))
    assert output["answer"] == {"label": "bug"}
    assert len(server.seen(prompt)) == 2


WEATHER = {
    "name": "weather",
    "description": "The weather in a city.",
    "parameters": {
        "type": "object",
        "required": ["city"],
        "properties": {"city": {"type": "string"}},
    },
    "http": {"url": "http://127.0.0.1:9/weather/{city}"},
}


async def test_arguments_that_break_the_parameters_go_back_to_the_model_as_the_tools_error(
    chat: tuple[ChatServer, str], client: LlmClient
) -> None:
    server, _ = chat
    prompt = script('call:weather:{"town": "Oslo"} then reply')
    output = await run(client, task(prompt=prompt, tools=[WEATHER], stream=True))
    assert output["answer"].startswith('tool said: {"error": {"type": "llm.invalid_arguments"')
    assert output["tool_rounds"] == 1
    [call] = output["tool_calls"]
    assert call["name"] == "weather" and call["arguments"] == {"town": "Oslo"}
    assert call["error"]["message"].endswith("'city' is a required property")
    first, second = server.seen(prompt)
    assert first.body["tools"][0]["function"]["name"] == "weather"
    assistant, answered = second.body["messages"][-2:]
    assert assistant["tool_calls"][0]["id"] == answered["tool_call_id"] == "call_0"
    # Usage adds up both requests: the call's two words of arguments, then the answer's.
    assert output["usage"]["completion_tokens"] == 2 + len(output["answer"].split())


async def test_a_model_that_keeps_calling_tools_fails_the_node_past_the_round_limit(
    chat: tuple[ChatServer, str], client: LlmClient
) -> None:
    server, _ = chat
    prompt = script('call:nowhere:{"x": 1}')
    with pytest.raises(NodeFailure) as failed:
        await run(client, task(prompt=prompt, tools=[WEATHER], max_tool_rounds=2))
    assert failed.value.type == "llm.too_many_tool_rounds"
    assert failed.value.message == (
        "the model still calls tools (nowhere) after 2 rounds of tool calls (max_tool_rounds)"
    )
    assert len(server.seen(prompt)) == 3
    unknown = json.loads(server.seen(prompt)[1].body["messages"][-1]["content"])
    assert unknown["error"]["message"] == "no tool named 'nowhere' (the tools: weather)"
