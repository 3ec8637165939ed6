"""Reading what a request sends: JSON bodies within the limits of topology/limits.py, and
query parameters. Each refusal is a BadRequest naming the field (or a LimitError)."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from aiohttp import web

from braidflow.connectors.api.errors import BadRequest
from braidflow.topology.durations import parse_timestamp
from braidflow.topology.limits import OFF_LOOP_BYTES, parse_json

_T = TypeVar("_T")


async def off_loop(size: int, work: Callable[..., _T], *args: Any) -> _T:
    """`work(*args)`, in a thread when `size` (of the body it reads) is over OFF_LOOP_BYTES."""
    if size > OFF_LOOP_BYTES:
        return await asyncio.to_thread(work, *args)
    return work(*args)


async def parsed_json(body: bytes | str) -> Any:
    """`body` parsed as JSON, off the loop when large; LimitError when it nests too deep."""
    try:
        return await off_loop(len(body), parse_json, body, "the body")
    except json.JSONDecodeError as exc:
        raise BadRequest(
            f"body is not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}", field="body"
        ) from None
    except UnicodeDecodeError as exc:
        raise BadRequest(f"body is not JSON: not UTF-8 ({exc.reason})", field="body") from None


async def json_body(request: web.Request) -> Any:
    """The JSON body (empty: `{}`)."""
    body = await request.read()
    return await parsed_json(body) if body.strip() else {}


async def object_body(request: web.Request, allowed: set[str]) -> dict[str, Any]:
    """The JSON object body (empty: `{}`); BadRequest naming unknown fields."""
    body = await json_body(request)
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object", field="body")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise BadRequest(
            f"unknown field(s) {', '.join(unknown)}; expected {', '.join(sorted(allowed))}",
            field=unknown[0],
        )
    return body


def string_field(body: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    """`body[name]`, a string (non-empty when `required`); BadRequest naming it otherwise."""
    value = body.get(name)
    if required and (not isinstance(value, str) or not value):
        raise BadRequest(f"{name}: required, a non-empty string", field=name)
    if value is not None and not isinstance(value, str):
        raise BadRequest(f"{name}: must be a string", field=name)
    return value


def moment(body: Mapping[str, Any], name: str) -> int:
    """Epoch ms of the ISO-8601 timestamp (with an offset or Z) in `body[name]`."""
    value = body.get(name)
    if isinstance(value, str):
        with contextlib.suppress(ValueError, OverflowError):
            return parse_timestamp(value)
    raise BadRequest(
        f"{name}: {value!r} is not an ISO-8601 timestamp with an offset or Z", field=name
    )


def limit_query(query: Mapping[str, str], default: int, most: int = 1000) -> int:
    """The `limit` query parameter, a number from 1 to `most`."""
    raw = query.get("limit", str(default))
    # isdigit alone takes '²', which int() refuses.
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= most:
        raise BadRequest(f"limit: {raw!r} is not a number from 1 to {most}", field="limit")
    return int(raw)


TIME_QUERY = {
    "type": "string",
    "format": "date-time",
    "description": "ISO 8601 with an offset or Z",
}
"""The schema of a query parameter `time_query` reads."""


def time_query(query: Mapping[str, str], name: str) -> int | None:
    """The `name` query parameter, an ISO-8601 timestamp, in epoch ms; None when absent."""
    raw = query.get(name)
    if raw is None:
        return None
    try:
        return parse_timestamp(raw)
    except (ValueError, OverflowError):
        raise BadRequest(
            f"{name}: {raw!r} is not an ISO-8601 timestamp with an offset or Z", field=name
        ) from None


def choice_query(query: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str | None:
    """The `name` query parameter, one of `choices`, or None when absent."""
    value = query.get(name)
    if value is not None and value not in choices:
        raise BadRequest(f"{name}: {value!r} is not one of {', '.join(choices)}", field=name)
    return value


async def text_body(request: web.Request) -> str:
    """The body as text; BadRequest when it is not UTF-8."""
    body = await request.read()
    try:
        return body.decode()
    except UnicodeDecodeError as exc:
        raise BadRequest(f"body: not UTF-8 ({exc.reason})", field="body") from None
