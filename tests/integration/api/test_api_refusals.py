"""Requests the OpenAPI document cannot describe, and schemathesis so never sends, are
refused as it promises: `{error, field?}` with a 4xx naming what was wrong, never a 500."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

import pytest
from workers import Reply, WorkerProcess

NOT_UTF8 = b'{"input": {"name": "\xff\xfe"}}'


def refused(reply: Reply, status: int, field: str) -> str:
    assert reply.status == status, reply
    assert isinstance(reply.body, dict) and reply.body.get("field") == field, reply
    return str(reply.body["error"])


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/workflows", "application/yaml"),
        ("/workflows/any/executions", "application/json"),
        ("/executions/any/cancel", "application/json"),
    ],
)
def test_a_body_that_is_not_utf8_is_refused_naming_the_body(
    shared_worker: WorkerProcess, path: str, content_type: str
) -> None:
    reply = shared_worker.api.request("POST", path, NOT_UTF8, content_type)
    assert "not UTF-8" in refused(reply, 400, "body")


def test_a_charset_nobody_knows_is_read_as_utf8(shared_worker: WorkerProcess) -> None:
    reply = shared_worker.api.request(
        "POST",
        "/workflows/no-such-flow/executions",
        b'{"input": {}}',
        "application/json; charset=nope",
    )
    assert reply.status == 404, reply


@pytest.mark.parametrize("path", ["/dead-letters", "/workflows/any/executions"])
@pytest.mark.parametrize("limit", ["²", "٣", "-1", "0", "1001", "ten"])
def test_a_limit_that_is_no_number_from_1_to_1000_is_refused_naming_it(
    shared_worker: WorkerProcess, path: str, limit: str
) -> None:
    reply = shared_worker.api.get(f"{path}?limit={urllib.parse.quote(limit)}")
    assert "from 1 to 1000" in refused(reply, 400, "limit")


def test_a_method_a_route_does_not_take_is_405_naming_the_allowed_ones(
    shared_worker: WorkerProcess,
) -> None:
    url = f"{shared_worker.api.base_url}/api/v1/workflows"
    with pytest.raises(urllib.error.HTTPError) as caught:
        request = urllib.request.Request(
            url, method="PUT", headers={"Authorization": f"Bearer {shared_worker.api.key}"}
        )
        urllib.request.urlopen(request, timeout=10)
    answer = caught.value
    assert answer.code == 405
    assert set(answer.headers["Allow"].split(",")) == {"GET", "POST"}
    assert json.loads(answer.read()) == {"error": "Method Not Allowed"}
