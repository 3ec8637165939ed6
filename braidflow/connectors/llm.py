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
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
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
from braidflow.engine.messages import TaskRequest
from braidflow.engine.trace_context import HEADER as TRACEPARENT
from braidflow.node_logs import NodeLog
from braidflow.secrets import SecretScope
from braidflow.tasks import NodeFailure
from braidflow.topology.secret_references import resolve_references

DEFAULT_TIMEOUT_MS = 120_000
"""Time an llm node's attempt may take when its definition sets no `timeout`."""

RATE_LIMIT_WAITS = 3
"""How many 429s one request waits out before its attempt fails."""

ASKED_AGAIN = 2
"""How many times an answer that breaks `output` is asked for again."""

MAX_BODY_BYTES = 512 * 1024
"""Largest response accepted; the answer travels in a Kafka record."""

_RETRY_AFTER_DEFAULT_S = 1.0
_SNIPPET_CHARS = 200


class LlmClient:
    """Runs llm nodes against `connections`. `start` before the first call, `stop` at shutdown."""

    def __init__(self, connections: Mapping[str, Connection | SmtpConnection]) -> None:
        self._connections = dict(connections)
        self._session: aiohttp.ClientSession | None = None

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
        usage: dict[str, int] = {}
        problem: str | None = None
        for asked in range(1 + ASKED_AGAIN):
            key = (
                request.idempotency_key if asked == 0 else f"{request.idempotency_key}.{asked + 1}"
            )
            answer = await self._complete(
                connection, {**headers, "Idempotency-Key": key}, query, body, node_log, deadline
            )
            usage = added(usage, answer.usage)
            value, problem = read_answer(answer.content, output)
            if problem is None:
                models = (answer.model, _text(params.get("model")))
                return _output(value, answer, usage, connection.cost(models, usage))
            if asked == ASKED_AGAIN:
                break
            node_log.add("warning", f"{problem}; asking again")
            body["messages"] = [
                *body["messages"],
                {"role": "assistant", "content": answer.content},
                {"role": "user", "content": asked_again(problem)},
            ]
        raise NodeFailure(
            "llm.invalid_answer", f"asked {1 + ASKED_AGAIN} times; the last time {problem}"
        )

    async def _complete(
        self,
        connection: Connection,
        headers: dict[str, str],
        query: Mapping[str, str],
        body: Mapping[str, Any],
        node_log: NodeLog,
        deadline: asyncio.Timeout,
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
