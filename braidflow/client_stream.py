"""Following an execution's lifecycle stream (Server-Sent Events) from the API: what
`braidflow run --wait` reads instead of polling the execution."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

STREAM_ENDS = frozenset({"workflow.completed", "workflow.failed", "workflow.cancelled"})
_SHOWN_WORKFLOW_EVENTS = frozenset(
    {"workflow.queued", "workflow.paused", "workflow.resumed", "workflow.parked", "stream.cut"}
)


class StreamUnreachable(Exception):
    """No HTTP answer at all from the API (refused, reset, unknown host)."""


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """One Server-Sent Event: its id, its type (`event:`), its data (JSON, else the text)."""

    id: str | None
    type: str
    data: Any


def parse_sse(lines: Iterable[str]) -> Iterator[StreamEvent]:
    """The events of a `text/event-stream`, line by line; comments (keepalives) are skipped."""
    event_id: str | None = None
    event_type: str | None = None
    data: list[str] = []
    for raw in lines:
        line = raw.rstrip("\r\n")
        if not line:
            if data or event_type is not None:
                yield StreamEvent(event_id, event_type or "message", _data("\n".join(data)))
            event_type, data = None, []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            event_id = value
        elif name == "event":
            event_type = value
        elif name == "data":
            data.append(value)


def _data(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def event_line(event: StreamEvent) -> str | None:
    """`  fetch  completed`: a node's move, or what else a reader should see; None for the
    rest (accepted, started, the end, which the outcome shows)."""
    data = event.data if isinstance(event.data, Mapping) else {}
    if event.type.startswith("node."):
        parts = [f"  {data.get('node_id') or '?'}", event.type.removeprefix("node.")]
        attempt = data.get("attempt")
        if isinstance(attempt, int) and attempt > 1:
            parts.append(f"attempt {attempt}")
        error = data.get("error")
        if isinstance(error, Mapping):
            parts.append(f"{error.get('type')}: {error.get('message')}")
        return "  ".join(parts)
    if event.type in _SHOWN_WORKFLOW_EVENTS:
        reason = f": {data['reason']}" if data.get("reason") else ""
        return f"  ({event.type}{reason})"
    return None


def follow_events(
    url: str, key: str | None, timeout_s: float, echo: Callable[[str], None]
) -> tuple[int, Any] | None:
    """Echo the events of the execution stream at `url` until the execution's end or
    `timeout_s`; None when it ended, else the status and body of the stream's refusal, or
    status 0 and why when it did not end in time."""
    return asyncio.run(_follow(url, key, timeout_s, echo))


async def _follow(
    url: str, key: str | None, timeout_s: float, echo: Callable[[str], None]
) -> tuple[int, Any] | None:
    headers = {"Accept": "text/event-stream"}
    if key:
        headers["Authorization"] = f"Bearer {key}"
    try:
        async with (
            asyncio.timeout(timeout_s),
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None)) as session,
            session.get(url, headers=headers) as response,
        ):
            if response.status != 200:
                return response.status, _data(await response.text())
            lines = _lines(response)
            async for event in _events(lines):
                line = event_line(event)
                if line is not None:
                    echo(line)
                if event.type in STREAM_ENDS:
                    return None
            return 0, "the stream ended before the execution"
    except TimeoutError:
        return 0, f"timed out after {timeout_s:g} s"
    except aiohttp.ClientError as exc:
        raise StreamUnreachable(str(exc)) from None


async def _lines(response: aiohttp.ClientResponse) -> Any:
    async for raw in response.content:
        yield raw.decode("utf-8", errors="replace")


async def _events(lines: Any) -> Any:
    """`parse_sse` over an async source of lines."""
    pending: list[str] = []
    async for line in lines:
        pending.append(line)
        if not line.rstrip("\r\n"):
            for event in parse_sse(pending):
                yield event
            pending = []
