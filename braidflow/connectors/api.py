"""The REST API under /api/v1 (aiohttp, JSON), served by every worker.

Errors are JSON `{error, problems?}` with a 4xx status naming what was wrong;
an unexpected failure is a 500 with a short message, never a stack trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import logging
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol, TypeVar

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from braidflow.connectors.started_by import started_by
from braidflow.engine import ExecutionState, NodeError, input_problems
from braidflow.engine.state import iso_time
from braidflow.schemas.cloudevents import (
    CloudEvent,
    CloudEventError,
    from_structured,
    new_event,
)
from braidflow.streams.record_limits import RecordTooLarge
from braidflow.topology import DefinitionError, Workflow
from braidflow.topology.durations import parse_timestamp
from braidflow.topology.handler_names import misspelt_handlers
from braidflow.topology.limits import OFF_LOOP_BYTES, LimitError, parse_json
from braidflow.topology.suggestions import did_you_mean

log = logging.getLogger(__name__)

_T = TypeVar("_T")
FORWARDED_HEADER = "X-Braidflow-Forwarded"
MAX_BODY_BYTES = 2 * 1024 * 1024


class Unavailable(Exception):
    """The answer lives on another worker that cannot be reached now; retry later."""


class NotFound(Exception):
    """No such execution, node, approval or dead letter (404)."""


class Conflict(Exception):
    """The request does not fit the current state, e.g. a second decision (409)."""


class Rejected(Exception):
    """The request breaks a rule of the workflow (422); `problems` name the fields."""

    def __init__(self, message: str, problems: list[str]) -> None:
        super().__init__(message)
        self.problems = problems


class Deployed(Protocol):
    workflow_id: str
    version: int
    text: str
    deployed_at: int
    workflow: Workflow


class Backend(Protocol):
    """What the API needs from the runtime."""

    def latest(self, workflow_id: str) -> Deployed | None: ...

    def get(self, workflow_id: str, version: int) -> Deployed | None: ...

    def all_latest(self) -> list[Deployed]: ...

    def versions(self, workflow_id: str) -> list[Deployed]: ...

    async def deploy(self, text: str) -> tuple[Deployed, bool]: ...

    def task_handlers(self) -> list[str]: ...

    async def remove(self, workflow_id: str) -> bool: ...

    async def start_execution(self, deployment: Deployed, input_: Any) -> str: ...

    async def execution(self, execution_id: str, forwarded: bool) -> Mapping[str, Any] | None: ...

    def ready(self) -> bool: ...

    async def publish_event(self, event: CloudEvent) -> str: ...

    def webhook_workflows(self, name: str) -> list[str]: ...

    async def start_for_event(
        self, workflow_ids: list[str], event: CloudEvent
    ) -> list[dict[str, str]]: ...

    def executions_of(
        self, workflow_id: str, limit: int, status: str | None
    ) -> list[dict[str, Any]]: ...

    def pending_approvals(
        self, workflow_id: str | None, department: str | None
    ) -> list[dict[str, Any]]: ...

    async def decide(
        self, execution_id: str, node_id: str, decision: Mapping[str, Any]
    ) -> dict[str, Any]: ...

    async def control(self, execution_id: str, action: str, by: str, reason: str) -> None: ...

    def dead_letters(
        self, kind: str | None, workflow_id: str | None, limit: int
    ) -> list[dict[str, Any]]: ...

    async def redrive(
        self, dead_letter_id: str, patched_input: Any, has_input: bool, by: str
    ) -> dict[str, Any]: ...

    async def backfill(
        self, workflow_id: str, from_ms: int, to_ms: int | None
    ) -> dict[str, Any]: ...


SIGNATURE_HEADER = "X-Braidflow-Signature"
EXECUTION_STATUSES = ("accepted", "running", "completed", "failed", "cancelled", "parked")


def webhook_secret(name: str) -> bytes | None:
    """The HMAC secret of webhook `name`: `BRAIDFLOW_WEBHOOK_SECRET_<NAME>`, else the shared one."""
    own = "BRAIDFLOW_WEBHOOK_SECRET_" + re.sub(r"[^A-Z0-9]", "_", name.upper())
    secret = os.environ.get(own) or os.environ.get("BRAIDFLOW_WEBHOOK_SECRET")
    return secret.encode() if secret else None


def signature_ok(secret: bytes, body: bytes, header: str | None) -> bool:
    """Whether `header` is `sha256=<hex HMAC-SHA256 of body>` (the bare hex is accepted too)."""
    if not header:
        return False
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(header.strip().removeprefix("sha256="), expected)


def _iso(ms: int | None) -> str | None:
    return None if ms is None else iso_time(ms)


def _error(error: NodeError | None) -> dict[str, Any] | None:
    if error is None:
        return None
    return {"type": error.type, "message": error.message, "node_id": error.node_id}


def execution_view(state: ExecutionState, workflow: Workflow) -> dict[str, Any]:
    """The JSON shape of `GET /executions/{id}`.

    `progress.completed_nodes` counts nodes that are done: completed, or skipped
    because a decision did not take their path. A foreach node with items in
    flight shows how far its items are (`items`).
    """
    nodes = []
    for run in state.nodes.values():
        progress = state.foreach.get(run.node_id)
        duration = (
            run.completed_at - run.started_at
            if run.completed_at is not None and run.started_at is not None
            else None
        )
        nodes.append(
            {
                "node_id": run.node_id,
                "status": run.status,
                "attempt": run.attempt,
                "started_at": _iso(run.started_at),
                "completed_at": _iso(run.completed_at),
                "duration_ms": duration,
                "output": run.output,
                "error": _error(run.error),
                "errors": [_error(e) for e in run.errors],
                "items": None
                if progress is None
                else {
                    "total": progress.total,
                    "done": progress.next - len(progress.running),
                    "running": len(progress.running),
                    "failed": progress.failed,
                },
            }
        )
    done = sum(1 for run in state.nodes.values() if run.status in ("completed", "skipped"))
    return {
        "execution_id": state.execution_id,
        "workflow_id": state.workflow_id,
        "workflow_version": state.workflow_version,
        "status": state.status,
        "input": state.input,
        "output": state.output,
        "error": _error(state.error),
        "started_at": _iso(state.started_at),
        "completed_at": _iso(state.completed_at),
        "progress": {"total_nodes": len(workflow.nodes), "completed_nodes": done},
        "paused": state.paused,
        "held": len(state.held),
        "held_transitions": [
            {"kind": type(t).__name__, "id": t.id, "node_id": getattr(t, "node_id", None)}
            for t in state.held
        ],
        "started_by": started_by(state),
        "parent": None
        if state.parent is None
        else {
            "execution_id": state.parent.execution_id,
            "workflow_id": state.parent.workflow_id,
            "node_id": state.parent.node_id,
            "depth": state.parent.depth,
            "item": state.parent.item,
        },
        "children": dict(state.children),
        "control": [
            {
                "action": c.action,
                "by": c.by,
                "at": _iso(c.at),
                "node_id": c.node_id,
                "reason": c.reason or None,
            }
            for c in state.control
        ],
        "nodes": nodes,
        "joins": [
            {"node_id": j.node_id, "arrived": len(j.taken), "dead": len(j.dead), "fired": j.fired}
            for j in state.joins.values()
        ],
    }


def not_started_view(summary: Mapping[str, Any], workflow: Workflow | None) -> dict[str, Any]:
    """The shape of `execution_view` for an execution known only from the execution index:
    accepted and not started yet, or refused at its start (failed, with the reason)."""
    error = summary.get("error")
    return {
        **summary,
        "input": None,
        "output": None,
        "error": None if error is None else {**error, "node_id": None},
        "progress": {
            "total_nodes": None if workflow is None else len(workflow.nodes),
            "completed_nodes": 0,
        },
        "paused": False,
        "held": 0,
        "held_transitions": [],
        # What started it is in its start, which the orchestrator has not read yet.
        "started_by": None,
        "parent": None,
        "children": {},
        "control": [],
        "nodes": [],
        "joins": [],
    }


def _fail(status: int, message: str, problems: list[str] | None = None) -> web.Response:
    body: dict[str, Any] = {"error": message}
    if problems is not None:
        body["problems"] = problems
    return web.json_response(body, status=status)


@web.middleware
async def _errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPRequestEntityTooLarge:
        return _fail(413, f"body: over {MAX_BODY_BYTES:,} bytes, the most a request may send")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _fail(exc.status, exc.reason)
    except RecordTooLarge as exc:
        return _fail(413, str(exc))
    except NotFound as exc:
        return _fail(404, str(exc))
    except Conflict as exc:
        return _fail(409, str(exc))
    except Rejected as exc:
        return _fail(422, str(exc), exc.problems)
    except LimitError as exc:
        return _fail(exc.status, str(exc))
    except Unavailable as exc:
        return _fail(503, str(exc))
    except Exception:
        log.exception("API request %s %s failed", request.method, request.path)
        return _fail(500, "internal error; the worker log has the details")


def _field_fail(exc: CloudEventError) -> web.Response:
    return web.json_response({"error": str(exc), "field": exc.field}, status=400)


def _summary(d: Deployed) -> dict[str, Any]:
    return {
        "id": d.workflow_id,
        "version": d.version,
        "name": d.workflow.definition.name,
        "deployed_at": _iso(d.deployed_at),
    }


async def _off_loop(size: int, work: Callable[..., _T], *args: Any) -> _T:
    """`work(*args)`, in a thread when `size` (of the body it reads) is over OFF_LOOP_BYTES."""
    if size > OFF_LOOP_BYTES:
        return await asyncio.to_thread(work, *args)
    return work(*args)


async def _json_body(request: web.Request) -> Any:
    """The JSON body (empty: `{}`); LimitError when it nests too deep."""
    text = await request.text()
    try:
        return await _off_loop(len(text), parse_json, text, "the body") if text.strip() else {}
    except json.JSONDecodeError as exc:
        raise _BadRequest(
            f"body is not JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        ) from None


class _BadRequest(Exception):
    pass


def _moment(body: Mapping[str, Any], name: str) -> int:
    """Epoch ms of the ISO-8601 timestamp (with an offset or Z) in `body[name]`."""
    value = body.get(name)
    if isinstance(value, str):
        with contextlib.suppress(ValueError):
            return parse_timestamp(value)
    raise _BadRequest(f"{name}: {value!r} is not an ISO-8601 timestamp with an offset or Z")


async def _object_body(request: web.Request, allowed: set[str]) -> dict[str, Any]:
    """The JSON object body (empty: `{}`); _BadRequest naming unknown fields."""
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise _BadRequest("body must be a JSON object")
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise _BadRequest(
            f"unknown field(s) {', '.join(unknown)}; expected {', '.join(sorted(allowed))}"
        )
    return body


def create_api(backend: Backend) -> web.Application:
    """The aiohttp application for `backend`."""
    routes = web.RouteTableDef()

    @routes.post("/api/v1/workflows")
    async def deploy(request: web.Request) -> web.Response:
        text = await request.text()
        if not text.strip():
            return _fail(400, "empty body: send a workflow definition as YAML or JSON")
        try:
            deployment, created = await backend.deploy(text)
        except DefinitionError as exc:
            problems = [str(p) for p in exc.problems]
            if exc.limit is not None:
                return _fail(exc.limit.status, str(exc.limit), problems)
            return _fail(400, "invalid definition", problems)
        except Unavailable as exc:
            return _fail(503, str(exc))
        body: dict[str, Any] = {"id": deployment.workflow_id, "version": deployment.version}
        warnings = misspelt_handlers(deployment.workflow, backend.task_handlers())
        if warnings:
            body["warnings"] = [str(w) for w in warnings]
        return web.json_response(body, status=201 if created else 200)

    @routes.get("/api/v1/workflows")
    async def list_workflows(_: web.Request) -> web.Response:
        return web.json_response({"workflows": [_summary(d) for d in backend.all_latest()]})

    @routes.get("/api/v1/workflows/{id}")
    async def show_workflow(request: web.Request) -> web.Response:
        workflow_id = request.match_info["id"]
        latest = backend.latest(workflow_id)
        if latest is None:
            return _fail(404, f"no workflow {workflow_id!r}")
        return web.json_response(
            {
                **_summary(latest),
                "description": latest.workflow.definition.description,
                "versions": [d.version for d in backend.versions(workflow_id)],
                "definition": latest.text,
            }
        )

    @routes.delete("/api/v1/workflows/{id}")
    async def remove(request: web.Request) -> web.Response:
        workflow_id = request.match_info["id"]
        try:
            removed = await backend.remove(workflow_id)
        except Unavailable as exc:
            return _fail(503, str(exc))
        if not removed:
            return _fail(404, f"no workflow {workflow_id!r}")
        return web.json_response({"id": workflow_id, "removed": True})

    @routes.post("/api/v1/workflows/{id}/executions")
    async def start(request: web.Request) -> web.Response:
        workflow_id = request.match_info["id"]
        try:
            body = await _json_body(request)
        except _BadRequest as exc:
            return _fail(400, str(exc))
        if not isinstance(body, dict):
            return _fail(400, 'body must be a JSON object: {"input": {...}}')
        unknown = sorted(set(body) - {"input", "version"})
        if unknown:
            return _fail(400, f"unknown field(s) {', '.join(unknown)}; expected input, version")
        version = body.get("version")
        if version is not None and (not isinstance(version, int) or isinstance(version, bool)):
            return _fail(400, "version: must be an integer")
        deployment = (
            backend.latest(workflow_id) if version is None else backend.get(workflow_id, version)
        )
        if deployment is None:
            which = "" if version is None else f" version {version}"
            deployed = (d.workflow_id for d in backend.all_latest())
            hint = did_you_mean(workflow_id, deployed) if version is None else ""
            return _fail(404, f"no workflow {workflow_id!r}{which}{hint}")
        input_ = body.get("input", {})
        size = len(await request.read())
        problems = await _off_loop(size, input_problems, deployment.workflow, input_)
        if problems:
            return _fail(422, "input does not match the workflow's input schema", problems)
        execution_id = await backend.start_execution(deployment, input_)
        return web.json_response(
            {"execution_id": execution_id, "status": "accepted", "version": deployment.version},
            status=202,
        )

    @routes.get("/api/v1/executions/{id}")
    async def show_execution(request: web.Request) -> web.Response:
        execution_id = request.match_info["id"]
        try:
            view = await backend.execution(execution_id, FORWARDED_HEADER in request.headers)
        except Unavailable as exc:
            return _fail(503, str(exc))
        if view is None:
            return _fail(404, f"no execution {execution_id!r}")
        return web.json_response(view)

    @routes.get("/api/v1/workflows/{id}/executions")
    async def executions_of(request: web.Request) -> web.Response:
        workflow_id = request.match_info["id"]
        raw_limit = request.query.get("limit", "50")
        status = request.query.get("status")
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 1000:
            return _fail(400, f"limit: {raw_limit!r} is not a number from 1 to 1000")
        if status is not None and status not in EXECUTION_STATUSES:
            return _fail(400, f"status: {status!r} is not one of {', '.join(EXECUTION_STATUSES)}")
        # Versions, not the latest: a removed workflow's executions are still listed.
        if not backend.versions(workflow_id):
            return _fail(404, f"no workflow {workflow_id!r}")
        found = backend.executions_of(workflow_id, int(raw_limit), status)
        return web.json_response({"workflow_id": workflow_id, "executions": found})

    @routes.post("/api/v1/events")
    async def publish(request: web.Request) -> web.Response:
        try:
            body = await request.read()
            event = await _off_loop(len(body), from_structured, body)
            # The topic is named after the type; a type no topic can carry is the sender's error.
            topic = await backend.publish_event(event)
        except CloudEventError as exc:
            return _fail(400, str(exc)) if exc.field is None else _field_fail(exc)
        return web.json_response({"id": event.id, "type": event.type, "topic": topic}, status=202)

    @routes.post("/api/v1/hooks/{name}")
    async def webhook(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        workflows = backend.webhook_workflows(name)
        if not workflows:
            return _fail(404, f"no workflow has a webhook trigger named {name!r}")
        body = await request.read()
        secret = webhook_secret(name)
        if secret is not None and not signature_ok(
            secret, body, request.headers.get(SIGNATURE_HEADER)
        ):
            return _fail(401, f"{SIGNATURE_HEADER}: missing or not the HMAC-SHA256 of the body")
        try:
            data = (
                await _off_loop(len(body), parse_json, body, "the body") if body.strip() else None
            )
        except LimitError:
            raise
        except ValueError as exc:
            return _fail(400, f"body is not JSON: {exc}")
        event_id = request.headers.get("Idempotency-Key") or request.headers.get("X-Request-Id")
        event = new_event(f"braidflow.webhook.{name}", data, source=f"/hooks/{name}", id=event_id)
        started = await backend.start_for_event(workflows, event)
        return web.json_response({"event_id": event.id, "executions": started}, status=202)

    @routes.post("/api/v1/workflows/{id}/backfill")
    async def backfill(request: web.Request) -> web.Response:
        try:
            body = await _object_body(request, {"from", "to"})
            from_ms = _moment(body, "from")
            to_ms = _moment(body, "to") if "to" in body else None
        except _BadRequest as exc:
            return _fail(400, str(exc))
        report = await backend.backfill(request.match_info["id"], from_ms, to_ms)
        return web.json_response(report)

    @routes.get("/api/v1/approvals")
    async def approvals(request: web.Request) -> web.Response:
        pending = backend.pending_approvals(
            request.query.get("workflow"), request.query.get("department")
        )
        return web.json_response({"approvals": pending})

    @routes.post("/api/v1/executions/{id}/approvals/{node}")
    async def decide(request: web.Request) -> web.Response:
        try:
            body = await _object_body(request, {"choice", "by", "comment", "data"})
        except _BadRequest as exc:
            return _fail(400, str(exc))
        choice, by = body.get("choice"), body.get("by")
        if not isinstance(choice, str) or not choice:
            return _fail(400, "choice: required, a non-empty string")
        if not isinstance(by, str) or not by:
            return _fail(400, "by: required, who decides")
        comment = body.get("comment")
        if comment is not None and not isinstance(comment, str):
            return _fail(400, "comment: must be a string")
        decided = await backend.decide(request.match_info["id"], request.match_info["node"], body)
        # Accepted, not applied: a paused execution holds the decision until it is resumed.
        return web.json_response(decided, status=202 if decided.get("applies_on_resume") else 200)

    @routes.post("/api/v1/executions/{id}/{action:cancel|pause|resume}")
    async def control(request: web.Request) -> web.Response:
        try:
            body = await _object_body(request, {"by", "reason"})
        except _BadRequest as exc:
            return _fail(400, str(exc))
        by, reason = body.get("by", ""), body.get("reason", "")
        if not isinstance(by, str) or not isinstance(reason, str):
            return _fail(400, "by and reason must be strings")
        execution_id, action = request.match_info["id"], request.match_info["action"]
        await backend.control(execution_id, action, by, reason)
        return web.json_response({"execution_id": execution_id, "action": action}, status=202)

    @routes.get("/api/v1/dead-letters")
    async def dead_letters(request: web.Request) -> web.Response:
        raw_limit = request.query.get("limit", "100")
        kind = request.query.get("kind")
        if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 1000:
            return _fail(400, f"limit: {raw_limit!r} is not a number from 1 to 1000")
        if kind is not None and kind not in ("node", "record"):
            return _fail(400, f"kind: {kind!r} is not node or record")
        found = backend.dead_letters(kind, request.query.get("workflow"), int(raw_limit))
        return web.json_response({"dead_letters": found})

    @routes.post("/api/v1/dead-letters/{id:.+}/redrive")
    async def redrive(request: web.Request) -> web.Response:
        try:
            body = await _object_body(request, {"input", "by"})
        except _BadRequest as exc:
            return _fail(400, str(exc))
        by = body.get("by", "")
        if not isinstance(by, str):
            return _fail(400, "by: must be a string")
        redriven = await backend.redrive(
            request.match_info["id"], body.get("input"), "input" in body, by
        )
        return web.json_response(redriven, status=202)

    @routes.get("/api/v1/health")
    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    @routes.get("/api/v1/ready")
    async def ready(_: web.Request) -> web.Response:
        if backend.ready():
            return web.json_response({"status": "ready"})
        return web.json_response({"status": "recovering"}, status=503)

    @routes.get("/api/v1/metrics")
    async def metrics(_: web.Request) -> web.Response:
        response = web.Response(body=generate_latest())
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        return response

    app = web.Application(middlewares=[_errors], client_max_size=MAX_BODY_BYTES)
    app.add_routes(routes)
    return app
