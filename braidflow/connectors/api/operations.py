"""Operating a worker: liveness, readiness, metrics and the API's own OpenAPI document."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from braidflow.access import Role
from braidflow.connectors.api.backend import backend_of
from braidflow.connectors.api.openapi import Resource, json_reply, obj

operations = Resource("operations", "Health, readiness, metrics and this document")
DOCUMENT = web.AppKey("openapi", dict)


@operations.operation(
    "GET",
    "/health",
    summary="Liveness: the worker answers",
    responses={200: json_reply("Alive", obj(["status"], {"status": {"const": "ok"}}))},
    role=None,
)
async def health(_: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


@operations.operation(
    "GET",
    "/ready",
    summary="Readiness: 200 once this worker can answer for what it holds",
    responses={
        200: json_reply("Ready", obj(["status"], {"status": {"const": "ready"}})),
        503: json_reply(
            "Not yet: recovering", obj(["status"], {"status": {"const": "recovering"}})
        ),
    },
    role=None,
)
async def ready(request: web.Request) -> web.Response:
    """200 once the worker is ready to answer for what it holds (the backend decides:
    the catalog read, table recovery done); 503 until then."""
    if backend_of(request).ready():
        return web.json_response({"status": "ready"})
    return web.json_response({"status": "recovering"}, status=503)


@operations.operation(
    "GET",
    "/metrics",
    summary="Prometheus metrics of this worker",
    responses={
        200: {
            "description": "Prometheus text format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        }
    },
    role=None,
)
async def metrics(_: web.Request) -> web.Response:
    response = web.Response(body=generate_latest())
    response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
    return response


@operations.operation(
    "GET",
    "/openapi.json",
    summary="This document: every endpoint, its parameters, bodies, answers and errors",
    responses={
        200: json_reply(
            "The OpenAPI 3.1 document", {"type": "object", "required": ["openapi", "paths"]}
        )
    },
    role=Role.VIEWER,
)
async def openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[DOCUMENT])
