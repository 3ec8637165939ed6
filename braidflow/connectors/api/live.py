"""Live: lifecycle events as Server-Sent Events, of an execution, a workflow, a department.

Every worker keeps every execution's events (`LifecycleFeed`, fed by the projection of
the lifecycle topic), so any worker answers any stream from what it holds: nothing is
forwarded, nothing read from the orchestrator's tables, and a reader waits on the feed's
signal rather than polling. Each event is `id: <event id>`, `event: <type>`, `data:
<event_json>`; a `: keepalive` comment after 15 s of silence. `Last-Event-ID` resumes
after that event (as far as this worker keeps events). A `stream.cut` event stands where
events are not kept (see lifecycle_feed.py).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Any

from aiohttp import web

from braidflow.access import Role
from braidflow.connectors.api.authentication import (
    department_of,
    readable_execution_summary,
    require,
)
from braidflow.connectors.api.backend import Backend, backend_of
from braidflow.connectors.api.caller import principal_of
from braidflow.connectors.api.errors import NotFound, Unavailable
from braidflow.connectors.api.openapi import Handler, Resource, header_param, path_param
from braidflow.connectors.api.sse import EVENT_STREAM, KEEPALIVE, KEEPALIVE_S, sse_frame
from braidflow.connectors.lifecycle_feed import (
    CUT,
    STREAM_ENDS,
    Cut,
    FeedEvent,
    LifecycleFeed,
    cut_event,
)
from braidflow.engine.ids import event_type_of, parse_event_id
from braidflow.engine.messages import LifecycleEvent
from braidflow.engine.state import TERMINAL

live = Resource("live", "Live: lifecycle events as Server-Sent Events")

PACE_S = 0.05
"""After sending, a stream lets this long pass before it looks again: what arrives meanwhile
goes out in one write. An execution's events come in many small batches (a step or two
each), and a write per batch per reader cost the worker more than the events themselves."""
BATCH = 500
"""At most this many events of every execution are read at once by a workflow's or a
department's stream."""
LAST_EVENT_ID = header_param(
    "Last-Event-ID", "Resume after this event (as far as this worker keeps events)"
)


def _stream_reply(description: str) -> dict[int, dict[str, object]]:
    return {
        200: {
            "description": description,
            "content": {EVENT_STREAM: {"schema": {"type": "string"}}},
        }
    }


def _feed_of(backend: Backend) -> LifecycleFeed:
    feed = backend.lifecycle_feed()
    if feed is None:
        raise Unavailable("this worker keeps no lifecycle events")
    return feed


async def _open(request: web.Request) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={
            "Content-Type": EVENT_STREAM,
            "Cache-Control": "no-cache",
            # Proxies (nginx) would otherwise hold events back to fill a buffer.
            "X-Accel-Buffering": "no",
        }
    )
    await response.prepare(request)
    return response


def _execution_of(event_id: str) -> str | None:
    """The execution a lifecycle event id names (ids begin with it: engine/ids.py)."""
    try:
        return parse_event_id(event_id).execution_id
    except ValueError:
        return None


def _gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def _quiet(request: web.Request, response: web.StreamResponse, signal: asyncio.Event) -> bool:
    """Wait for `signal`, with a keepalive at each 15 s of silence; False once the reader
    has gone."""
    while not signal.is_set():
        try:
            async with asyncio.timeout(KEEPALIVE_S):
                await signal.wait()
        except TimeoutError:
            if _gone(request):
                return False
            await response.write(KEEPALIVE)
    return not _gone(request)


async def _send(response: web.StreamResponse, events: list[FeedEvent]) -> None:
    frames = [sse_frame(e.id, e.type, e.body) for e in events if e.body is not None]
    if frames:
        await response.write(b"".join(frames))


@live.operation(
    "GET",
    "/executions/{id}/events",
    summary="An execution's lifecycle events so far, then live ones; ends after its end",
    parameters=[path_param("id", "The execution's id"), LAST_EVENT_ID],
    responses=_stream_reply(
        "Server-Sent Events: each node's start, completion, failure, waits, then the end"
        " (workflow.completed, failed or cancelled), after which the stream ends"
    ),
    refusals=[404, 503],
    role=Role.VIEWER,
)
async def execution_events(request: web.Request) -> web.StreamResponse:
    """Another tenant's execution, or one of a department the caller may not read: 404."""
    backend = backend_of(request)
    execution_id = request.match_info["id"]
    summary = await readable_execution_summary(request, backend, execution_id)
    feed = _feed_of(backend)
    await feed.replayed()
    last_id = request.headers.get("Last-Event-ID")
    after = (feed.seq_of(last_id, execution_id) if last_id else None) or 0
    last_type = event_type_of(last_id) if last_id and after else None
    response = await _open(request)
    try:
        if not feed.holds(execution_id):
            cut = cut_event(execution_id, Cut.FORGOTTEN, "this worker no longer keeps its events")
            await response.write(sse_frame(cut["id"], CUT, json.dumps(cut)))
            if summary["status"] in TERMINAL:
                return response
        while not feed.closed:
            signal = feed.execution_signal(execution_id)
            events = feed.of_execution(execution_id, after)
            if events:
                await _send(response, events)
                after, last_type = events[-1].seq, events[-1].type
            # Only the last event read ends it: one followed by more was redriven.
            if last_type in STREAM_ENDS:
                break
            if events:
                await asyncio.sleep(PACE_S)
            if not await _quiet(request, response, signal):
                break
    except ConnectionResetError:
        pass  # the reader went away
    return response


async def _follow(
    request: web.Request, feed: LifecycleFeed, wanted: Callable[[LifecycleEvent], bool]
) -> web.StreamResponse:
    """The caller's tenant's events `wanted` picks, live from now (or after Last-Event-ID)."""
    tenant = principal_of(request).tenant
    await feed.replayed()
    last_id = request.headers.get("Last-Event-ID")
    resumed = None
    if last_id and (execution_id := _execution_of(last_id)) is not None:
        resumed = feed.seq_of(last_id, execution_id)
    after = resumed or feed.last_seq
    response = await _open(request)
    try:
        if last_id and resumed is None:
            # Live from now: what came after that event is not kept, and the reader is told.
            reason = f"events after {last_id!r} are not kept"
            cut = cut_event(_execution_of(last_id) or last_id, Cut.FORGOTTEN, reason)
            await response.write(sse_frame(cut["id"], CUT, json.dumps(cut)))
        while not feed.closed:
            signal = feed.tail_signal()
            events = feed.tail(after, limit=BATCH)
            if events:
                after = events[-1].seq
                picked = [
                    e
                    for e in events
                    if e.event is not None and e.event.tenant == tenant and wanted(e.event)
                ]
                if picked:
                    await _send(response, picked)
                    await asyncio.sleep(PACE_S)
                if len(events) == BATCH:
                    continue
            if not await _quiet(request, response, signal):
                break
    except ConnectionResetError:
        pass
    return response


def _scope_stream(
    path: str, summary: str, scope: Mapping[str, Any]
) -> Callable[[Handler], Handler]:
    """Declares the stream of a scope's events (a workflow's, a department's), path
    parameter `scope`: live from now, until the reader closes it."""
    return live.operation(
        "GET",
        path,
        summary=summary,
        parameters=[scope, LAST_EVENT_ID],
        responses=_stream_reply("Server-Sent Events, until the reader closes the stream"),
        refusals=[404, 503],
        role=Role.VIEWER,
    )


@_scope_stream(
    "/workflows/{id}/events",
    "A workflow's lifecycle events (every execution, every version), live from now",
    path_param("id", "The workflow's id"),
)
async def workflow_events(request: web.Request) -> web.StreamResponse:
    """A removed workflow's stream is served too (its executions may still run)."""
    backend = backend_of(request)
    workflow_id = request.match_info["id"]
    versions = backend.versions(workflow_id)
    if not versions:
        raise NotFound(f"no workflow {workflow_id!r}")
    require(request, Role.VIEWER, department_of(versions[-1]), f"workflow {workflow_id!r}")
    feed = _feed_of(backend)
    return await _follow(request, feed, lambda e: e.workflow_id == workflow_id)


@_scope_stream(
    "/departments/{name}/events",
    "The lifecycle events of a department's workflows, live from now",
    path_param("name", "The department's name"),
)
async def department_events(request: web.Request) -> web.StreamResponse:
    """An event is the department's when the version of its workflow that ran names it."""
    backend = backend_of(request)
    name = request.match_info["name"]
    if backend.department(name) is None:
        raise NotFound(f"no department {name!r}")
    require(request, Role.VIEWER, name, f"department {name!r}")
    feed = _feed_of(backend)
    departments: dict[tuple[str, int], str | None] = {}

    def of_department(event: LifecycleEvent) -> bool:
        key = (event.workflow_id, event.workflow_version)
        if key not in departments:
            departments[key] = department_of(backend.get(*key))
        return departments[key] == name

    return await _follow(request, feed, of_department)
