"""The event bus as the dashboard shows it: the recent events and, for each, the executions it
started and the waiting executions it resumed (from the execution index)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from aiohttp import web

from braidflow.access import Role
from braidflow.connectors.api.authentication import department_of, may_read
from braidflow.connectors.api.backend import Backend, backend_of
from braidflow.connectors.api.bodies import limit_query
from braidflow.connectors.api.openapi import (
    INTEGER,
    STRING,
    TIME,
    Resource,
    json_reply,
    nullable,
    obj,
    query_param,
)

event_bus = Resource("event-bus", "Recent events: what each started or resumed")

_RUN = {
    "execution_id": STRING,
    "workflow_id": STRING,
    "workflow_version": INTEGER,
    "status": nullable(STRING),
    "at": TIME,
}
RECENT_EVENT = obj(
    ["id", "type", "source", "at", "started", "resumed"],
    {
        "id": STRING,
        "type": nullable(STRING),
        "source": nullable(STRING),
        "at": {**TIME, "description": "When it last started or resumed an execution"},
        "started": {
            "type": "array",
            "items": obj(list(_RUN), _RUN),
            "description": "The executions it started, newest first",
        },
        "resumed": {
            "type": "array",
            "items": obj([*_RUN, "node_id"], {**_RUN, "node_id": STRING}),
            "description": "The executions whose `wait_event` node it ended, newest first",
        },
    },
)


@event_bus.operation(
    "GET",
    "/event-bus",
    summary="Recent events, newest first: the executions each started and each resumed",
    parameters=[
        query_param(
            "limit",
            "At most this many starts and this many resumptions are looked at (default 100)",
            {**INTEGER, "minimum": 1, "maximum": 1000},
        )
    ],
    responses={
        200: json_reply(
            "The events", obj(["events"], {"events": {"type": "array", "items": RECENT_EVENT}})
        )
    },
    refusals=[400],
    role=Role.VIEWER,
)
async def recent_events(request: web.Request) -> web.Response:
    """Only executions of departments the caller may read (of workflows deployed now, for a
    caller with no tenant-wide role)."""
    backend = backend_of(request)
    limit = limit_query(request.query, 100)
    workflows = (
        None
        if may_read(request, None)
        else sorted(
            d.workflow_id for d in backend.all_latest() if may_read(request, department_of(d))
        )
    )
    started, resumed = await backend.recent_events(limit, workflows)
    shown = _readable(request, backend)
    return web.json_response({"events": by_event(filter(shown, started), filter(shown, resumed))})


def _readable(request: web.Request, backend: Backend) -> Callable[[Mapping[str, Any]], bool]:
    """Whether the caller may read a run's execution: its version's department."""
    known: dict[tuple[str, int], bool] = {}

    def readable(run: Mapping[str, Any]) -> bool:
        key = (run["workflow_id"], run["workflow_version"])
        if key not in known:
            known[key] = may_read(request, department_of(backend.get(*key)))
        return known[key]

    return readable


def by_event(
    started: Iterable[Mapping[str, Any]], resumed: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Starts and resumptions grouped by their event, the event last seen first."""
    events: dict[tuple[Any, ...], dict[str, Any]] = {}
    for part, runs in (("started", started), ("resumed", resumed)):
        for run in runs:
            event = run["event"]
            key = (event["id"], event["source"], event["type"])
            shown = events.setdefault(key, {**event, "at": run["at"], "started": [], "resumed": []})
            shown["at"] = max(shown["at"], run["at"])
            shown[part].append({k: v for k, v in run.items() if k != "event"})
    return sorted(events.values(), key=lambda e: e["at"], reverse=True)
