"""Logs: what the task handlers of an execution's node runs logged.

Answered by any worker from its own read model of the logs topic
(`connectors/node_log_index.py`): nothing is forwarded, nothing read from the execution's
state. The execution itself is looked up in the execution index, for its tenant (another
tenant's: 404) and its department (the caller must be a viewer there).
"""

from __future__ import annotations

from aiohttp import web

from braidflow.access import Role
from braidflow.connectors.api.authentication import readable_execution_summary
from braidflow.connectors.api.backend import backend_of
from braidflow.connectors.api.openapi import (
    INTEGER,
    STRING,
    Resource,
    json_reply,
    nullable,
    obj,
    path_param,
)
from braidflow.node_logs import LEVELS

logs = Resource("logs", "Logs: what task handlers logged, per node run")

LINE = obj(
    ["at", "level", "message"],
    {
        "at": {**STRING, "description": "When, ISO 8601 UTC"},
        "level": {**STRING, "description": f"{', '.join(LEVELS)}, or a custom level's name"},
        "message": STRING,
    },
    closed=True,
)
NODE_RUN_LOG = obj(
    ["node_id", "attempt", "item", "lines", "cut", "cut_lines"],
    {
        "node_id": STRING,
        "attempt": {**INTEGER, "minimum": 1},
        "item": {**nullable(INTEGER), "description": "The foreach item's index; null for none"},
        "lines": {"type": "array", "items": LINE},
        "cut": {"type": "boolean", "description": "Whether lines were left out or shortened"},
        "cut_lines": {**INTEGER, "minimum": 0, "description": "How many lines were left out"},
    },
    closed=True,
)


@logs.operation(
    "GET",
    "/executions/{id}/logs",
    summary="What the task handlers of an execution logged, per node run and attempt",
    parameters=[path_param("id", "The execution's id, as the start answered it")],
    responses={
        200: json_reply(
            "Each node run that logged, in the order the runs ended",
            obj(["logs"], {"logs": {"type": "array", "items": NODE_RUN_LOG}}, closed=True),
        )
    },
    refusals=[404, 503],
    role=Role.VIEWER,
)
async def execution_logs(request: web.Request) -> web.Response:
    """Another tenant's execution, or one of a department the caller may not read: 404."""
    backend = backend_of(request)
    execution_id = request.match_info["id"]
    await readable_execution_summary(request, backend, execution_id)
    return web.json_response({"logs": await backend.node_logs(execution_id)})
