"""Executions: start one, read one, list a workflow's, cancel, pause and resume."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from braidflow.access import Role
from braidflow.connectors.api.authentication import (
    acting_name,
    department_of,
    execution_department,
    may_read,
    refuse_by,
    require,
)
from braidflow.connectors.api.backend import Backend, backend_of
from braidflow.connectors.api.bodies import (
    json_body,
    limit_query,
    object_body,
    off_loop,
    string_field,
)
from braidflow.connectors.api.errors import BadRequest, NotFound, Rejected
from braidflow.connectors.api.execution_search import SEARCH_PARAMETERS, execution_search
from braidflow.connectors.api.openapi import (
    ANY,
    INTEGER,
    STRING,
    Audited,
    Resource,
    json_reply,
    json_request,
    obj,
    path_param,
    query_param,
    ref,
)
from braidflow.connectors.api.trace_headers import TRACEPARENT_PARAM, request_traceparent
from braidflow.connectors.api.waiting import ENDED, WAIT_PATTERN, wait_for_end, wait_query
from braidflow.engine import input_problems
from braidflow.engine.state import ExecutionStatus
from braidflow.topology.suggestions import did_you_mean

FORWARDED_HEADER = "X-Braidflow-Forwarded"
WAIT = query_param(
    "wait",
    "Wait at most this long (500ms, 30s, 1m; at most 60s) for the execution to end",
    {"type": "string", "pattern": WAIT_PATTERN},
)

executions = Resource("executions", "Executions: start, read, list, cancel, pause, resume")
EXECUTION_ID = path_param("id", "The execution's id, as the start answered it")


@executions.operation(
    "POST",
    "/workflows/{id}/executions",
    summary="Start an execution of a workflow (its latest version unless `version` is given)",
    parameters=[path_param("id", "The workflow's id"), TRACEPARENT_PARAM, WAIT],
    body=json_request(
        obj(
            [],
            {
                "input": {**ANY, "description": "Checked against the workflow's input schema"},
                "version": {**INTEGER, "minimum": 1},
            },
            closed=True,
        )
    ),
    responses={
        200: json_reply("With `wait`: the execution, ended within the wait", ref("Execution")),
        202: json_reply(
            "Accepted: the id reads back at once (`status: accepted` until it starts)",
            obj(
                ["execution_id", "status", "version"],
                {
                    "execution_id": STRING,
                    "status": {"const": ExecutionStatus.ACCEPTED.value},
                    "version": INTEGER,
                },
                closed=True,
            ),
        ),
    },
    refusals=[404, 503],
    audit=Audited(answer={"execution_id": "execution", "version": "version"}),
    role=Role.OPERATOR,
)
async def start(request: web.Request) -> web.Response:
    """413 names the size and the limit when the start could not be sent or stored; 422
    names each field of the input that breaks the workflow's input schema."""
    backend = backend_of(request)
    workflow_id = request.match_info["id"]
    wait_s = wait_query(request.query)
    body = await json_body(request)
    if not isinstance(body, dict):
        raise BadRequest('body must be a JSON object: {"input": {...}}', field="body")
    unknown = sorted(set(body) - {"input", "version"})
    if unknown:
        raise BadRequest(
            f"unknown field(s) {', '.join(unknown)}; expected input, version", field=unknown[0]
        )
    version = body.get("version")
    # 2.0 is an integer too, as JSON Schema (and so the document) counts.
    if isinstance(version, float) and version.is_integer():
        version = int(version)
    if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
        raise BadRequest("version: must be an integer", field="version")
    deployment = (
        backend.latest(workflow_id) if version is None else backend.get(workflow_id, version)
    )
    if deployment is None:
        which = "" if version is None else f" version {version}"
        deployed = (d.workflow_id for d in backend.all_latest())
        hint = did_you_mean(workflow_id, deployed) if version is None else ""
        raise NotFound(f"no workflow {workflow_id!r}{which}{hint}")
    require(request, Role.OPERATOR, department_of(deployment), f"workflow {workflow_id!r}")
    input_ = body.get("input", {})
    size = len(await request.read())
    problems = await off_loop(size, input_problems, deployment.workflow, input_)
    if problems:
        raise Rejected("input does not match the workflow's input schema", problems)
    execution_id = await backend.start_execution(deployment, input_, request_traceparent(request))
    ended = await _ended_view(backend, execution_id, wait_s, False)
    if ended is not None:
        return web.json_response(ended)
    return web.json_response(
        {
            "execution_id": execution_id,
            "status": ExecutionStatus.ACCEPTED.value,
            "version": deployment.version,
        },
        status=202,
    )


@executions.operation(
    "GET",
    "/executions/{id}",
    summary="An execution: status, input, output, nodes, joins (from any worker)",
    parameters=[EXECUTION_ID, WAIT],
    responses={200: json_reply("The execution", ref("Execution"))},
    refusals=[400, 404, 503],
    role=Role.VIEWER,
)
async def show_execution(request: web.Request) -> web.Response:
    """A read of an execution another worker holds is forwarded to that worker. With
    `wait`, the view once it ends, or as it is when the wait runs out."""
    execution_id = request.match_info["id"]
    forwarded = FORWARDED_HEADER in request.headers
    wait_s = wait_query(request.query)
    backend = backend_of(request)
    view = await backend.execution(execution_id, forwarded)
    if view is None:
        raise NotFound(f"no execution {execution_id!r}")
    require(
        request, Role.VIEWER, execution_department(backend, view), f"execution {execution_id!r}"
    )
    if view["status"] not in ENDED:
        view = await _ended_view(backend, execution_id, wait_s, forwarded) or view
    return web.json_response(view)


async def _ended_view(
    backend: Backend, execution_id: str, wait_s: float | None, forwarded: bool
) -> Mapping[str, Any] | None:
    """The view of `execution_id` once it ends within `wait_s`; None if it does not.

    Waits on this worker's lifecycle feed, whichever worker owns the execution: the owner
    is asked once, for the ended view, and no orchestrator is held meanwhile.
    """
    feed = backend.lifecycle_feed()
    if not wait_s or feed is None:
        return None
    if not await wait_for_end(backend, feed, execution_id, wait_s):
        return None
    view = await backend.execution(execution_id, forwarded)
    return view if view is not None and view["status"] in ENDED else None


@executions.operation(
    "GET",
    "/workflows/{id}/executions",
    summary="A workflow's executions, newest first (from the execution index); searched by"
    " status, time, event and input fields (`input.<field>=<value>`, docs/api.md)",
    parameters=[
        path_param("id", "The workflow's id"),
        query_param("limit", "At most this many", {**INTEGER, "minimum": 1, "maximum": 1000}),
        *SEARCH_PARAMETERS,
    ],
    responses={
        200: json_reply(
            "The executions",
            obj(
                ["workflow_id", "executions"],
                {
                    "workflow_id": STRING,
                    "executions": {"type": "array", "items": ref("ExecutionSummary")},
                },
            ),
        )
    },
    refusals=[400, 404],
    role=Role.VIEWER,
)
async def executions_of(request: web.Request) -> web.Response:
    """A removed workflow's executions are still listed."""
    backend = backend_of(request)
    workflow_id = request.match_info["id"]
    limit = limit_query(request.query, 50)
    search = execution_search(request.query)
    # Versions, not the latest: a removed workflow has versions but no latest.
    versions = backend.versions(workflow_id)
    if not versions:
        raise NotFound(f"no workflow {workflow_id!r}")
    require(request, Role.VIEWER, department_of(versions[-1]), f"workflow {workflow_id!r}")
    found = await backend.executions_of(workflow_id, limit, search)
    return web.json_response({"workflow_id": workflow_id, "executions": found})


@executions.operation(
    "GET",
    "/executions",
    summary="Executions of every workflow the caller may read (or of one `department`), newest"
    " first; searched as a workflow's are (`input.<field>=<value>`, docs/api.md)",
    parameters=[
        query_param("department", "Only those of this department's workflows", STRING),
        query_param("limit", "At most this many", {**INTEGER, "minimum": 1, "maximum": 1000}),
        *SEARCH_PARAMETERS,
    ],
    responses={
        200: json_reply(
            "The executions",
            obj(
                ["executions"], {"executions": {"type": "array", "items": ref("ExecutionSummary")}}
            ),
        )
    },
    refusals=[400],
    role=Role.VIEWER,
)
async def search_executions(request: web.Request) -> web.Response:
    """A caller of a whole tenant finds every workflow's executions, removed workflows' too;
    one of departments, those of the workflows deployed now in its departments."""
    backend = backend_of(request)
    limit = limit_query(request.query, 50)
    search = execution_search(request.query)
    department = request.query.get("department")
    workflows = None
    if department is not None or not may_read(request, None):
        workflows = sorted(
            d.workflow_id
            for d in backend.all_latest()
            if may_read(request, department_of(d))
            and (department is None or department_of(d) == department)
        )
    found = await backend.search_executions(limit, search, workflows)
    return web.json_response({"executions": found})


CONTROL_BODY = json_request(
    obj(
        [],
        {
            "reason": {**STRING, "description": "Why, kept in the execution's control log"},
        },
        closed=True,
    )
)


CONTROL_AUDIT = Audited(detail=("reason",))


def _controlled(action: str) -> dict[str, object]:
    return {
        202: json_reply(
            "Sent: the execution applies it in its turn",
            obj(
                ["execution_id", "action"],
                {"execution_id": STRING, "action": {"const": action}},
                closed=True,
            ),
        )
    }


async def _control(request: web.Request, action: str) -> web.Response:
    body = await object_body(request, {"by", "reason"})
    refuse_by(body)
    reason = string_field(body, "reason") or ""
    execution_id = request.match_info["id"]
    backend = backend_of(request)
    view = await backend.execution(execution_id, False)
    if view is None:
        raise NotFound(f"no execution {execution_id!r}")
    department = execution_department(backend, view)
    require(request, Role.OPERATOR, department, f"execution {execution_id!r}")
    await backend.control(execution_id, action, acting_name(request), reason)
    return web.json_response({"execution_id": execution_id, "action": action}, status=202)


def _declare_control(action: str, summary: str, refused_when: str) -> None:
    """POST /executions/{id}/<action>: the controls differ only in what they ask for, their
    summary and when they are refused with 409 (`refused_when`, the operation's description)."""

    async def handler(request: web.Request) -> web.Response:
        return await _control(request, action)

    # The handler's name is the operationId, its docstring the operation's description.
    handler.__name__ = handler.__qualname__ = action
    handler.__doc__ = refused_when
    executions.operation(
        "POST",
        f"/executions/{{id}}/{action}",
        summary=summary,
        parameters=[EXECUTION_ID],
        body=CONTROL_BODY,
        responses=_controlled(action),
        refusals=[404, 409, 503],
        audit=CONTROL_AUDIT,
        role=Role.OPERATOR,
    )(handler)


_declare_control("cancel", "Cancel an execution", "409 when it has finished.")
_declare_control(
    "pause",
    "Pause an execution: what arrives for it is held until it is resumed",
    "409 when it has finished or is paused already.",
)
_declare_control(
    "resume",
    "Resume a paused execution: what was held applies in order",
    "409 when it has finished or is not paused.",
)
