"""Stats: windowed counts and duration quantiles of workflows and departments (docs/analytics.md)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

from aiohttp import web

from braidflow.access import Role
from braidflow.connectors.api.authentication import department_of, may_read, require
from braidflow.connectors.api.backend import backend_of
from braidflow.connectors.api.bodies import choice_query, moment
from braidflow.connectors.api.errors import BadRequest, NotFound
from braidflow.connectors.api.executions import FORWARDED_HEADER
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
from braidflow.schemas.stats_figures import COUNTS, NODE_COUNTS, WINDOWS, Window

stats = Resource("stats", "Stream analytics: counts and duration quantiles per window")

MAX_BUCKETS = 1440
"""The most buckets of one workflow or department a query may span (a day of minutes)."""
DEFAULT_BUCKETS = 60
"""A query without `from` spans this many windows back from `to`."""
AT_ONCE = 16
"""How many workflows' figures a query without filters reads at once."""

_TIME_QUERY = {**STRING, "format": "date-time", "description": "ISO 8601 with an offset or Z"}
_QUANTILES = obj(
    ["p50", "p95", "p99"],
    {q: nullable({"type": "number"}) for q in ("p50", "p95", "p99")},
    closed=True,
)
_USED = {
    "cost": {
        "type": "number",
        "description": "Money its model calls cost, in the connections' prices' currency",
    },
    "tokens": {**INTEGER, "description": "Tokens its model calls used (prompt and completion)"},
}
_NODE = obj(
    [*NODE_COUNTS, "cost", "tokens", "duration_ms"],
    {**{name: INTEGER for name in NODE_COUNTS}, **_USED, "duration_ms": _QUANTILES},
    closed=True,
)
_BUCKET = obj(
    ["start", "end", *COUNTS, "cost", "tokens", "duration_ms", "nodes"],
    {
        "start": TIME,
        "end": TIME,
        "workflow_id": {**STRING, "description": "Whose figures: a workflow's..."},
        "department": {**STRING, "description": "...or a department's"},
        **{name: INTEGER for name in COUNTS},
        **_USED,
        "duration_ms": {
            **_QUANTILES,
            "description": "Quantiles of the executions that ended in the bucket, start to end,"
            " within 1% (DDSketch); null when none ended",
        },
        "nodes": {
            "type": "object",
            "additionalProperties": _NODE,
            "description": "By node id (a department's: `<workflow>/<node>`); durations are"
            " those of attempts",
        },
    },
)


@stats.operation(
    "GET",
    "/stats",
    summary="Counts and duration quantiles of workflows and departments, per window",
    parameters=[
        query_param("workflow", "This workflow's figures", STRING),
        query_param("department", "This department's figures", STRING),
        query_param(
            "window",
            "Bucket size: 1m and 1h tumble, 5m hops every minute (default 1m)",
            {"enum": list(WINDOWS)},
        ),
        query_param(
            "from", f"Buckets from this time (default: {DEFAULT_BUCKETS} back)", _TIME_QUERY
        ),
        query_param("to", "Buckets up to this time (default: now)", _TIME_QUERY),
    ],
    responses={
        200: json_reply(
            "The buckets that counted anything, oldest first, workflows then departments",
            obj(
                ["window", "buckets"],
                {"window": STRING, "buckets": {"type": "array", "items": _BUCKET}},
                closed=True,
            ),
        )
    },
    refusals=[400, 404, 503],
    role=Role.VIEWER,
)
async def read_stats(request: web.Request) -> web.Response:
    """Neither workflow nor department: every workflow the caller may read. A workflow or
    department the caller may not read is 404, as another tenant's is. Each workflow's and
    department's figures live on one worker; a worker asked for figures it does not hold
    asks that worker."""
    query = request.query
    backend = backend_of(request)
    window = WINDOWS[choice_query(query, "window", tuple(WINDOWS)) or "1m"]
    from_ms, to_ms = _span(query, window, backend.now_ms())
    scopes: list[tuple[str, str]] = []
    workflow = query.get("workflow") or None
    department = query.get("department") or None
    if workflow is not None:
        latest = backend.latest(workflow)
        if latest is None:
            raise NotFound(f"no workflow {workflow!r}")
        require(request, Role.VIEWER, department_of(latest), f"workflow {workflow!r}")
        scopes.append(("workflow", workflow))
    if department is not None:
        require(request, Role.VIEWER, department, f"department {department!r}")
        scopes.append(("department", department))
    if not scopes:
        scopes = [
            ("workflow", d.workflow_id)
            for d in backend.all_latest()
            if may_read(request, department_of(d))
        ]
    forwarded = FORWARDED_HEADER in request.headers
    buckets = []
    # A few at a time: most may be held by other workers, each one a forwarded request.
    for first in range(0, len(scopes), AT_ONCE):
        for found in await asyncio.gather(
            *(
                backend.stats(scope, name, window.name, from_ms, to_ms, forwarded)
                for scope, name in scopes[first : first + AT_ONCE]
            )
        ):
            buckets += found
    return web.json_response({"window": window.name, "buckets": buckets})


def _span(query: Mapping[str, str], window: Window, now_ms: int) -> tuple[int, int]:
    """[from, to) in epoch ms; BadRequest naming `from` or `to`."""
    to_ms = moment(query, "to") if "to" in query else now_ms
    if "from" in query:
        from_ms = moment(query, "from")
    else:
        from_ms = to_ms - DEFAULT_BUCKETS * window.size_s * 1000
    if from_ms >= to_ms:
        raise BadRequest("from: must be before to", field="from")
    if len(window.starts(from_ms, to_ms)) > MAX_BUCKETS:
        raise BadRequest(
            f"from: the span holds more than {MAX_BUCKETS} buckets of {window.name};"
            " narrow it or take a larger window",
            field="from",
        )
    return from_ms, to_ms
