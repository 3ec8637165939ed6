"""The API's OpenAPI document is its contract: every route is in it and nothing else is,
it is a valid OpenAPI 3.1 document, and every refusal has the Error shape it promises."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import schemathesis
from aiohttp import web

from braidflow.connectors.api import RESOURCES, create_api
from braidflow.connectors.api import errors as errors_module
from braidflow.connectors.api.errors import (
    MAX_BODY_BYTES,
    BadRequest,
    Conflict,
    NotFound,
    Rejected,
    TooLarge,
    Unauthorized,
    Unavailable,
    refusal,
)
from braidflow.connectors.api.openapi import document
from braidflow.schemas.cloudevents import CloudEventError
from braidflow.schemas.record_limits import RecordTooLarge
from braidflow.topology import DefinitionError
from braidflow.topology.limits import LimitError
from braidflow.topology.loading import Problem

DOCUMENT = document(RESOURCES)
METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def routed() -> set[tuple[str, str]]:
    """(method, path) of every API route the application serves, regexes of path ids
    dropped. The dashboard's files (`/`, `/ui/...`) are pages, not API operations."""
    app = create_api(backend=None)  # type: ignore[arg-type]
    return {
        (route.method.lower(), re.sub(r"\{(\w+):[^}]*\}", r"{\1}", route.resource.canonical))
        for route in app.router.routes()
        if route.resource.canonical.startswith("/api/")
    }


def documented() -> set[tuple[str, str]]:
    return {
        (method, path)
        for path, item in DOCUMENT["paths"].items()
        for method in item
        if method in METHODS
    }


def operations() -> list[tuple[str, str, dict[str, Any]]]:
    return sorted(
        (method, path, spec)
        for path, item in DOCUMENT["paths"].items()
        for method, spec in item.items()
    )


def test_every_route_is_documented_and_every_documented_operation_is_routed() -> None:
    assert routed() - documented() == set(), "routes missing from the document"
    assert documented() - routed() == set(), "documented operations no route serves"
    assert ("get", "/api/v1/openapi.json") in routed()


def test_the_document_is_valid_openapi_3_1() -> None:
    assert DOCUMENT["openapi"].startswith("3.1")
    schema = schemathesis.openapi.from_dict(json.loads(json.dumps(DOCUMENT)))
    schema.validate()
    found = [result.ok() for result in schema.get_all_operations()]
    assert len(found) == len(documented())


@pytest.mark.parametrize(
    ("method", "path", "spec"), operations(), ids=[f"{m} {p}" for m, p, _ in operations()]
)
def test_each_operation_names_its_answers_and_its_parameters(
    method: str, path: str, spec: dict[str, Any]
) -> None:
    statuses = set(spec["responses"])
    assert any(s.startswith("2") for s in statuses), statuses
    assert spec["operationId"] and spec["summary"]
    for status, answer in spec["responses"].items():
        if int(status) >= 400 and path != "/api/v1/ready":
            assert answer["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/Error"
            }, (status, answer)
    named = {p["name"] for p in spec.get("parameters", ()) if p["in"] == "path"}
    assert named == set(re.findall(r"\{(\w+)\}", path))
    if "requestBody" in spec:
        assert {"400", "413", "422"} <= statuses


ERROR = DOCUMENT["components"]["schemas"]["Error"]


@pytest.mark.parametrize(
    ("raised", "status", "body"),
    [
        (
            BadRequest("limit: 'x' is not a number", field="limit"),
            400,
            {"error": "limit: 'x' is not a number", "field": "limit"},
        ),
        (
            Unauthorized("X-Braidflow-Signature: missing"),
            401,
            {"error": "X-Braidflow-Signature: missing"},
        ),
        (NotFound("no workflow 'w'"), 404, {"error": "no workflow 'w'"}),
        (Conflict("already paused"), 409, {"error": "already paused"}),
        (TooLarge("input: 3 MB, over 1 MB"), 413, {"error": "input: 3 MB, over 1 MB"}),
        (Rejected("no event triggers", []), 422, {"error": "no event triggers", "problems": []}),
        (Unavailable("retry"), 503, {"error": "retry"}),
        (RecordTooLarge("event: too large"), 413, {"error": "event: too large"}),
        (LimitError("too deep"), 422, {"error": "too deep"}),
        (LimitError("too big", too_large=True), 413, {"error": "too big"}),
        (CloudEventError("type", "missing"), 400, {"error": "type: missing", "field": "type"}),
        (CloudEventError(None, "not JSON"), 400, {"error": "not JSON"}),
        (
            DefinitionError([Problem("node 'a'", "no handler")]),
            400,
            {"error": "invalid definition", "problems": ["node 'a': no handler"]},
        ),
        (
            DefinitionError.over(LimitError("1001 nodes")),
            422,
            {"error": "1001 nodes", "problems": ["definition: 1001 nodes"]},
        ),
        (
            web.HTTPRequestEntityTooLarge(MAX_BODY_BYTES, MAX_BODY_BYTES + 1),
            413,
            {"error": f"body: over {MAX_BODY_BYTES:,} bytes, the most a request may send"},
        ),
        (web.HTTPNotFound(), 404, {"error": "Not Found"}),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else None,
)
def test_each_refusal_answers_its_status_with_the_error_shape(
    raised: Exception, status: int, body: dict[str, Any]
) -> None:
    found = refusal(raised)
    assert found is not None
    assert (found.status, found.body()) == (status, body)
    jsonschema.validate(found.body(), ERROR)


def test_an_unexpected_failure_is_no_refusal() -> None:
    assert refusal(KeyError("x")) is None


def test_the_api_page_lists_every_operation_and_no_other() -> None:
    page = (Path(__file__).parents[3] / "docs" / "api.md").read_text()
    listed = {
        (method.lower(), path)
        for method, path in re.findall(r"^\| `([A-Z]+) (/api/v1/\S+)` \|", page, re.MULTILINE)
    }
    assert listed == documented()


def test_only_the_middleware_builds_error_answers() -> None:
    """Handlers raise; a response with a 4xx or 5xx status is built in errors.py alone (and
    by readiness, whose 503 is its answer, not an error)."""
    package = Path(errors_module.__file__).parent
    built = []
    for path in sorted(package.glob("*.py")):
        for function in ast.walk(ast.parse(path.read_text())):
            if not isinstance(function, ast.AsyncFunctionDef | ast.FunctionDef):
                continue
            for call in ast.walk(function):
                status = next(
                    (k.value for k in getattr(call, "keywords", ()) if k.arg == "status"), None
                )
                if isinstance(status, ast.Constant) and int(status.value) >= 400:
                    built.append((path.name, function.name))
    assert set(built) == {("operations.py", "ready")}
