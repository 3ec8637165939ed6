"""The client `http` nodes call through: one shared aiohttp session per worker.

A node's params become one request. The task's idempotency key goes out as
the `Idempotency-Key` header (unless the node sets that header itself), so a
server can recognise a call repeated after a crash; the node run's span as the
W3C `traceparent` header (likewise), so the server's spans join the trace. The output is
`{status, headers, body}`: header names lower-cased (repeated headers joined
with ", "), the body decoded as JSON when the response says it is JSON, else
text, and None when empty.

Choices worth knowing:
- `DEFAULT_TIMEOUT_MS` (30 s) applies when the node has no `timeout`; the
  timeout covers connecting, sending and reading the whole body.
- The session keeps no cookies: it is shared by every execution and tenant.
- A body above `MAX_BODY_BYTES` fails the node, since the output has to fit in
  a Kafka record.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aiohttp
from multidict import CIMultiDict

from braidflow.engine.trace_context import HEADER as TRACEPARENT
from braidflow.tasks import NodeFailure

DEFAULT_TIMEOUT_MS = 30_000
"""Time an http node may take when its definition sets no `timeout`."""

MAX_BODY_BYTES = 512 * 1024
"""Largest response body an http node accepts; its output travels in a Kafka record."""

SNIPPET_CHARS = 200


class HttpNodeClient:
    """Runs http nodes. `start` before the first call, `stop` at shutdown."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def call(
        self,
        params: Mapping[str, Any],
        timeout_ms: int | None,
        idempotency_key: str,
        traceparent: str | None = None,
        max_body_bytes: int = MAX_BODY_BYTES,
    ) -> dict[str, Any]:
        """Make the request an http node describes; NodeFailure when it does not succeed
        (a body over `max_body_bytes` among the reasons)."""
        if self._session is None:
            raise RuntimeError("HttpNodeClient.call before start()")
        method = str(params.get("method") or "GET").upper()
        url = params.get("url")
        if not isinstance(url, str) or not url:
            raise NodeFailure("InvalidRequest", f"an http node needs a url, got {url!r}")
        headers = CIMultiDict(_text_values(_mapping(params.get("headers"), "headers")))
        headers.setdefault("Idempotency-Key", idempotency_key)
        if traceparent is not None:
            headers.setdefault(TRACEPARENT, traceparent)
        query = params.get("query")
        body = params.get("body")
        timeout = timeout_ms if timeout_ms is not None else DEFAULT_TIMEOUT_MS
        try:
            async with self._session.request(
                method,
                url,
                headers=headers,
                params=query if isinstance(query, str) else _query_pairs(query),
                data=body if isinstance(body, str) else None,
                json=None if body is None or isinstance(body, str) else body,
                timeout=aiohttp.ClientTimeout(total=timeout / 1000),
                allow_redirects=True,
            ) as response:
                text = await _read_text(response, f"{method} {url}", max_body_bytes)
        except TimeoutError:
            raise NodeFailure(
                "TimeoutError", f"{method} {url}: no answer after {timeout}ms"
            ) from None
        except aiohttp.ClientError as exc:
            raise NodeFailure(type(exc).__name__, f"{method} {url}: {exc}") from None
        status = response.status
        if not is_expected(status, params.get("expect_status")):
            raise NodeFailure(
                f"http.{status // 100}xx",
                f"{method} {url} answered {status}"
                f" (expected {_describe(params.get('expect_status'))}): {_snippet(text)}",
            )
        return {
            "status": status,
            "headers": _response_headers(response.headers),
            "body": _body(text, response.content_type, f"{method} {url}"),
        }


def is_expected(status: int, expect_status: int | list[int] | None) -> bool:
    """Whether `status` is a success for a node expecting `expect_status` (None: any 2xx)."""
    if expect_status is None:
        return 200 <= status < 300
    if isinstance(expect_status, int):
        return status == expect_status
    return status in expect_status


def _describe(expect_status: int | list[int] | None) -> str:
    if expect_status is None:
        return "2xx"
    if isinstance(expect_status, int):
        return str(expect_status)
    return " or ".join(str(s) for s in expect_status)


def _mapping(value: Any, field: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise NodeFailure("InvalidRequest", f"http {field} must be an object, got {value!r}")
    return value


def _text(value: Any) -> str:
    # JSON spelling, so `true` stays `true` rather than Python's `True`.
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _text_values(values: Mapping[str, Any]) -> dict[str, str]:
    return {str(name): _text(value) for name, value in values.items() if value is not None}


def _query_pairs(query: Any) -> list[tuple[str, str]]:
    """Query parameters as pairs; a list value repeats the parameter (`?tag=a&tag=b`)."""
    pairs: list[tuple[str, str]] = []
    for name, value in _mapping(query, "query").items():
        for item in value if isinstance(value, list) else [value]:
            if item is not None:
                pairs.append((str(name), _text(item)))
    return pairs


def _response_headers(headers: Mapping[str, str]) -> dict[str, str]:
    joined: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        joined[key] = f"{joined[key]}, {value}" if key in joined else value
    return joined


async def _read_text(response: aiohttp.ClientResponse, request: str, limit: int) -> str:
    """The whole body as text, refusing more than `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise NodeFailure("ResponseTooLarge", f"{request}: body larger than {limit} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    try:
        return raw.decode(response.charset or "utf-8", errors="replace")
    except LookupError:
        # A charset Python does not know: better a readable-enough body than no output.
        return raw.decode("utf-8", errors="replace")


def _body(text: str, content_type: str, request: str) -> Any:
    if not text:
        return None
    if content_type == "application/json" or content_type.endswith("+json"):
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise NodeFailure(
                "InvalidResponse", f"{request}: the response says it is JSON but is not: {exc}"
            ) from None
    return text


def _snippet(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= SNIPPET_CHARS else flat[: SNIPPET_CHARS - 1] + "…"
