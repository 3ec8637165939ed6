"""The client `llm` nodes ask through: `POST {url}/chat/completions` of the node's connection.

Plain aiohttp, one shared session per worker, so every byte on the wire is ours to see. The
connection's key (a secret reference, `connectors/connections.py`) is looked up at the
moment of the call and sent as `Authorization: Bearer`; the task's idempotency key as
`Idempotency-Key` (a question asked again within the attempt, `<key>.<n>`: it is another
request); the node run's span as `traceparent`.

Choices worth knowing:
- `DEFAULT_TIMEOUT_MS` (2 min) applies when the node has no `timeout`; the timeout covers
  the whole attempt: every request, every wait on a 429 and every question asked again.
- A 429 waits what its `Retry-After` asks (1 s when it says nothing), at most
  `RATE_LIMIT_WAITS` times and never past the attempt's deadline; then the attempt fails
  `llm.rate_limited`, which the node's `retry` may retry like any other error.
- Other answers outside 2xx fail the attempt: `llm.5xx`, `llm.4xx`.
- An answer that is not what `output` asks for is asked again with the problem, at most
  `ASKED_AGAIN` times; then the node fails `llm.invalid_answer` with the last problem.
- The output's `usage` adds up every request of the attempt; its `cost`, present when the
  connection prices the model (`prices`), is what that usage cost.
- `tools`: a response that calls tools has each call run through the executor's kinds
  table (`run_tools_with`; an http tool is a run of the `http` kind) and answered in a
  `role: tool` message, for `max_tool_rounds` rounds at most; then the node fails
  `llm.too_many_tool_rounds`. A call that cannot run (arguments that break the tool's
  `parameters`, an unknown tool, a run that fails) is answered with its error instead.
- `stream`: the answer comes as server-sent events (`connectors/llm_stream.py`), read up to
  `MAX_STREAM_BYTES`; node logs reach the logs topic only once the run ends, so the growing
  text would show no progress there: the run logs one line of how the stream went.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any

import aiohttp

from braidflow.connectors.connections import ENV, Connection, SmtpConnection
from braidflow.connectors.llm_answers import (
    Completion,
    added,
    asked_again,
    completion,
    messages,
    read_answer,
    response_format,
    retry_after_s,
)
from braidflow.connectors.llm_stream import Assembly, EventStream
from braidflow.connectors.llm_tools import (
    KEPT_CALLS,
    call_arguments,
    definitions,
    kept_call,
    result_for_model,
    tool_key,
    tool_message,
    work,
)
from braidflow.engine.messages import TaskRequest
from braidflow.engine.trace_context import HEADER as TRACEPARENT
from braidflow.node_logs import NodeLog
from braidflow.secrets import SecretError, SecretScope
from braidflow.tasks import NodeFailure
from braidflow.topology.kinds.llm import DEFAULT_TOOL_ROUNDS
from braidflow.topology.secret_references import resolve_references

DEFAULT_TIMEOUT_MS = 120_000
"""Time an llm node's attempt may take when its definition sets no `timeout`."""

RATE_LIMIT_WAITS = 3
"""How many 429s one request waits out before its attempt fails."""

ASKED_AGAIN = 2
"""How many times an answer that breaks `output` is asked for again."""

MAX_BODY_BYTES = 512 * 1024
"""Largest response accepted; the answer travels in a Kafka record."""

MAX_STREAM_BYTES = 8 * MAX_BODY_BYTES
"""Largest streamed response read: each chunk repeats its envelope around a few characters."""

ToolRun = Callable[[TaskRequest, SecretScope, NodeLog], Awaitable[Any]]
"""How a tool's call runs: the executor's run of a work kind (the request's `kind`)."""

_RETRY_AFTER_DEFAULT_S = 1.0
_SNIPPET_CHARS = 200


class LlmClient:
    """Runs llm nodes against `connections`. `start` before the first call, `stop` at shutdown."""

    def __init__(self, connections: Mapping[str, Connection | SmtpConnection]) -> None:
        self._connections = dict(connections)
        self._session: aiohttp.ClientSession | None = None
        self._tool_run: ToolRun | None = None

    def run_tools_with(self, run: ToolRun) -> None:
        """Run the tools' calls with `run` (the executor's kinds table, built after this)."""
        self._tool_run = run

    async def start(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def run(self, request: TaskRequest, secrets: SecretScope, node_log: NodeLog) -> Any:
        """The node's output, `{answer, model, usage, finish_reason}`; NodeFailure otherwise."""
        params = request.input
        if not isinstance(params, Mapping):
            raise NodeFailure("InvalidRequest", f"llm node input is not an object: {params!r}")
        connection = self._connection(str(params.get("connection")))
        timeout_ms = request.timeout_ms if request.timeout_ms is not None else DEFAULT_TIMEOUT_MS
        try:
            async with asyncio.timeout(timeout_ms / 1000) as deadline:
                return await self._ask(connection, params, request, secrets, node_log, deadline)
        except TimeoutError:
            if deadline.expired():
                raise NodeFailure(
                    "TimeoutError",
                    f"connection {connection.name!r}: no usable answer after {timeout_ms}ms",
                ) from None
            raise

    def _connection(self, name: str) -> Connection:
        found = self._connections.get(name)
        if found is None:
            known = ", ".join(sorted(self._connections)) or "none"
            raise NodeFailure(
                "llm.unknown_connection",
                f"no connection {name!r} on this worker (its connections, from {ENV}: {known})",
            )
        if not isinstance(found, Connection):
            raise NodeFailure(
                "llm.unknown_connection",
                f"connection {name!r} is a mail server, not a chat-completions endpoint",
            )
        return found

    async def _ask(
        self,
        connection: Connection,
        params: Mapping[str, Any],
        request: TaskRequest,
        secrets: SecretScope,
        node_log: NodeLog,
        deadline: asyncio.Timeout,
    ) -> dict[str, Any]:
        output = params.get("output", "text")
        headers = dict(resolve_references(connection.headers, secrets.lookup))
        if connection.key is not None:
            headers["Authorization"] = (
                f"Bearer {resolve_references(connection.key, secrets.lookup)}"
            )
        if request.traceparent is not None:
            headers.setdefault(TRACEPARENT, request.traceparent)
        query = resolve_references(connection.query, secrets.lookup)
        body: dict[str, Any] = {
            "model": params.get("model"),
            "messages": messages(params.get("system"), str(params.get("prompt"))),
        }
        body.update((k, params[k]) for k in ("temperature", "max_tokens") if k in params)
        if (wanted := response_format(output)) is not None:
            body["response_format"] = wanted
        tools: list[Mapping[str, Any]] = list(params.get("tools") or ())
        if tools:
            body["tools"] = definitions(tools)
        stream = params.get("stream") is True
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        conversation = _Conversation(tools, params.get("max_tool_rounds", DEFAULT_TOOL_ROUNDS))
        usage: dict[str, int] = {}
        problem: str | None = None
        asked = 0
        for sent in itertools.count():
            key = request.idempotency_key if sent == 0 else f"{request.idempotency_key}.{sent + 1}"
            answer = await self._complete(
                connection,
                {**headers, "Idempotency-Key": key},
                query,
                body,
                node_log,
                deadline,
                stream,
            )
            usage = added(usage, answer.usage)
            if answer.tool_calls:
                body["messages"] = [
                    *body["messages"],
                    *await self._answer_calls(
                        conversation, answer, request, secrets, node_log, deadline
                    ),
                ]
                continue
            value, problem = read_answer(answer.content, output)
            if problem is None:
                models = (answer.model, _text(params.get("model")))
                cost = connection.cost(models, usage)
                return {**_output(value, answer, usage, cost), **conversation.output()}
            if asked == ASKED_AGAIN:
                break
            asked += 1
            node_log.add("warning", f"{problem}; asking again")
            body["messages"] = [
                *body["messages"],
                {"role": "assistant", "content": answer.content},
                {"role": "user", "content": asked_again(problem)},
            ]
        raise NodeFailure(
            "llm.invalid_answer", f"asked {1 + ASKED_AGAIN} times; the last time {problem}"
        )

    async def _answer_calls(
        self,
        conversation: _Conversation,
        answer: Completion,
        request: TaskRequest,
        secrets: SecretScope,
        node_log: NodeLog,
        deadline: asyncio.Timeout,
    ) -> list[dict[str, Any]]:
        """The messages of one round of tool calls: the model's, then each call's answer."""
        names = ", ".join(c["function"]["name"] for c in answer.tool_calls)
        if conversation.rounds >= conversation.max_rounds:
            raise NodeFailure(
                "llm.too_many_tool_rounds",
                f"the model still calls tools ({names}) after {conversation.max_rounds}"
                " rounds of tool calls (max_tool_rounds)",
            )
        conversation.rounds += 1
        round_ = conversation.rounds
        node_log.add("info", f"tool round {round_}: the model calls {names}")
        said: list[dict[str, Any]] = [
            {
                "role": "assistant",
                "content": answer.content or None,
                "tool_calls": list(answer.tool_calls),
            }
        ]
        for index, call in enumerate(answer.tool_calls, 1):
            name = call["function"]["name"]
            arguments, result, error = await self._call(
                conversation,
                call,
                tool_key(request.idempotency_key, round_, index),
                request,
                secrets,
                node_log,
                deadline,
            )
            if error is not None:
                node_log.add(
                    "warning", f"tool round {round_}: {name}: {error['type']}: {error['message']}"
                )
            conversation.keep(kept_call(round_, name, arguments, result, error))
            said.append(tool_message(call["id"], result, error))
        return said

    async def _call(
        self,
        conversation: _Conversation,
        call: Mapping[str, Any],
        key: str,
        request: TaskRequest,
        secrets: SecretScope,
        node_log: NodeLog,
        deadline: asyncio.Timeout,
    ) -> tuple[Any, Any, dict[str, str] | None]:
        """One call's arguments, and its result or its error (which the model is sent)."""
        function = call["function"]
        tool = conversation.tools.get(function["name"])
        if tool is None:
            known = ", ".join(sorted(conversation.tools)) or "none"
            return (
                function["arguments"],
                None,
                {
                    "type": "llm.unknown_tool",
                    "message": f"no tool named {function['name']!r} (the tools: {known})",
                },
            )
        arguments, problem = call_arguments(function["arguments"], tool)
        if arguments is None or problem is not None:
            given = function["arguments"] if arguments is None else arguments
            return given, None, {"type": "llm.invalid_arguments", "message": str(problem)}
        kind, params, problem = work(tool, arguments)
        if problem is not None:
            return (
                arguments,
                None,
                {
                    "type": "llm.invalid_arguments",
                    "message": f"as a {kind} node's params: {problem}",
                },
            )
        if self._tool_run is None:
            raise NodeFailure("llm.tools_unavailable", "this worker runs no tools for llm nodes")
        left_s = _left_s(deadline)
        asked = replace(
            request,
            kind=kind,
            input=params,
            idempotency_key=key,
            timeout_ms=None if left_s == float("inf") else max(int(left_s * 1000), 1),
        )
        try:
            output = await self._tool_run(asked, secrets, node_log)
        except (NodeFailure, SecretError) as exc:
            return (
                arguments,
                None,
                {"type": exc.type, "message": secrets.redaction.text(exc.message)},
            )
        except Exception as exc:
            # As the executor would fail a node of that kind: the model is told, the node goes on.
            return (
                arguments,
                None,
                {
                    "type": type(exc).__name__,
                    "message": secrets.redaction.text(str(exc)),
                },
            )
        return arguments, secrets.redaction.value(result_for_model(kind, output)), None

    async def _complete(
        self,
        connection: Connection,
        headers: dict[str, str],
        query: Mapping[str, str],
        body: Mapping[str, Any],
        node_log: NodeLog,
        deadline: asyncio.Timeout,
        stream: bool = False,
    ) -> Completion:
        """One question; waits out a 429 while its Retry-After fits in the attempt."""
        if self._session is None:
            raise RuntimeError("LlmClient.run before start()")
        where = f"POST {connection.url}/chat/completions"
        waits = 0
        while True:
            try:
                async with self._session.post(
                    f"{connection.url}/chat/completions",
                    json=body,
                    headers=headers,
                    params=dict(query),
                ) as response:
                    if stream and response.status == 200 and _is_event_stream(response):
                        return await _read_stream(response, where, node_log)
                    text = await _read_text(response, where)
            except aiohttp.ClientError as exc:
                raise NodeFailure(type(exc).__name__, f"{where}: {exc}") from None
            status = response.status
            if status == 429:
                wait_s = retry_after_s(
                    response.headers.get("Retry-After"), time.time(), _RETRY_AFTER_DEFAULT_S
                )
                left_s = _left_s(deadline)
                if waits >= RATE_LIMIT_WAITS or wait_s >= left_s:
                    why = (
                        f"{waits} waits already"
                        if waits >= RATE_LIMIT_WAITS
                        else f"the attempt has {max(left_s, 0):.1f} s left"
                    )
                    raise NodeFailure(
                        "llm.rate_limited",
                        f"{where} answered 429 (Retry-After {wait_s:g} s; {why}): {_snippet(text)}",
                    )
                waits += 1
                node_log.add("warning", f"{where} answered 429; waiting {wait_s:g} s")
                await asyncio.sleep(wait_s)
                continue
            if not 200 <= status < 300:
                raise NodeFailure(
                    f"llm.{status // 100}xx", f"{where} answered {status}: {_snippet(text)}"
                )
            try:
                return completion(json.loads(text), where)
            except ValueError:
                raise NodeFailure(
                    "llm.invalid_response", f"{where}: the response is not JSON: {_snippet(text)}"
                ) from None


class _Conversation:
    """The tools of one attempt and the calls made so far."""

    def __init__(self, tools: list[Mapping[str, Any]], max_rounds: int) -> None:
        self.tools = {str(tool["name"]): tool for tool in tools}
        self.max_rounds = max_rounds
        self.rounds = 0
        self._kept: list[dict[str, Any]] = []
        self._left_out = 0

    def keep(self, call: dict[str, Any]) -> None:
        if len(self._kept) < KEPT_CALLS:
            self._kept.append(call)
        else:
            self._left_out += 1

    def output(self) -> dict[str, Any]:
        """The node output's part of the tools: none when the node has none."""
        if not self.tools:
            return {}
        more = {"tool_calls_left_out": self._left_out} if self._left_out else {}
        return {"tool_calls": self._kept, "tool_rounds": self.rounds, **more}


def _output(
    value: Any, answer: Completion, usage: dict[str, int], cost: float | None
) -> dict[str, Any]:
    output = {
        "answer": value,
        "model": answer.model,
        "usage": usage,
        "finish_reason": answer.finish_reason,
    }
    if cost is not None:
        output["cost"] = cost
    return output


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _left_s(deadline: asyncio.Timeout) -> float:
    when = deadline.when()
    return float("inf") if when is None else when - asyncio.get_running_loop().time()


def _is_event_stream(response: aiohttp.ClientResponse) -> bool:
    # An endpoint that ignores `stream` answers plain JSON, read as any other answer.
    return response.content_type == "text/event-stream"


async def _read_stream(
    response: aiohttp.ClientResponse, where: str, node_log: NodeLog
) -> Completion:
    """The completion a stream of server-sent events makes, read to its `[DONE]` or its end."""
    events = EventStream()
    assembly = Assembly()
    started = time.monotonic()
    first_s: float | None = None
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > MAX_STREAM_BYTES:
            raise NodeFailure(
                "llm.response_too_large", f"{where}: stream larger than {MAX_STREAM_BYTES} bytes"
            )
        for data in events.feed(chunk):
            assembly.add(data, where)
            if first_s is None and assembly.text:
                first_s = time.monotonic() - started
        if assembly.done:
            break
    else:
        for data in events.close():
            assembly.add(data, where)
    if len(assembly.text.encode()) > MAX_BODY_BYTES:
        raise NodeFailure(
            "llm.response_too_large", f"{where}: answer larger than {MAX_BODY_BYTES} bytes"
        )
    answer = assembly.completion(where)
    first = "no text" if first_s is None else f"the first text after {first_s * 1000:.0f} ms"
    node_log.add(
        "info",
        f"streamed answer: {assembly.chunks} chunks, {first},"
        f" {time.monotonic() - started:.2f} s in all, {len(answer.content)} characters",
    )
    return answer


async def _read_text(response: aiohttp.ClientResponse, where: str) -> str:
    """The whole body as text, refusing more than MAX_BODY_BYTES."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise NodeFailure(
                "llm.response_too_large", f"{where}: body larger than {MAX_BODY_BYTES} bytes"
            )
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", errors="replace")


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= _SNIPPET_CHARS else flat[: _SNIPPET_CHARS - 1] + "…"
