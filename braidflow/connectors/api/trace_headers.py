"""The W3C `traceparent` a request arrives with: kept with what it starts (docs/traces.md).

A malformed one is ignored, never refused: tracing must not fail a caller's request.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from aiohttp import web

from braidflow.connectors.api.openapi import header_param
from braidflow.engine.trace_context import HEADER, valid_traceparent
from braidflow.schemas.cloudevents import CloudEvent

TRACEPARENT_PARAM = header_param(
    HEADER,
    "W3C Trace Context: the execution joins this trace (a malformed one is ignored)",
)


def request_traceparent(request: web.Request) -> str | None:
    """The request's valid `traceparent`, or None."""
    return valid_traceparent(request.headers.get(HEADER))


def trace_extension(request: web.Request) -> dict[str, Any]:
    """The CloudEvents extensions that carry the request's trace to what the event starts."""
    traceparent = request_traceparent(request)
    return {} if traceparent is None else {HEADER: traceparent}


def with_request_trace(event: CloudEvent, request: web.Request) -> CloudEvent:
    """`event` with the request's traceparent as its extension, unless it names one itself."""
    extension = trace_extension(request)
    if not extension or HEADER in event.extensions:
        return event
    return dataclasses.replace(event, extensions={**event.extensions, **extension})
