"""Where a trace comes in besides the API start: a webhook's `traceparent` header, a CloudEvent's
`traceparent` extension (structured or binary, on Kafka or through the publish API), and a
publish node's event, which starts the subscribed execution in the publisher's trace. Each
execution's task handler answers with the traceparent its context gives."""

from __future__ import annotations

import json
import secrets
from typing import Any

from domain_events import completed, send, unique
from suite_broker import SuiteBroker
from workers import WorkerProcess

from braidflow.engine.trace_context import ExecutionTrace, parse_traceparent
from braidflow.schemas.cloudevents import CloudEvent


def traced(workflow_id: str, trigger: dict[str, Any]) -> str:
    """A workflow started by `trigger` whose output is its handler's traceparent."""
    return json.dumps(
        {
            "id": workflow_id,
            "triggers": [trigger],
            "nodes": [
                {"id": "work", "type": "task", "params": {"handler": "test.traceparent"}},
                {"id": "done", "type": "end", "params": {"output": "${nodes.work.output}"}},
            ],
            "edges": [{"from": "work", "to": "done"}],
        }
    )


def new_traceparent() -> str:
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def handler_trace(worker: WorkerProcess, workflow_id: str, count: int) -> dict[str, str]:
    """Execution id to the trace id its handler saw, once `count` executions completed."""
    found = {}
    for summary in completed(worker, workflow_id, count):
        view = worker.api.execution(summary["execution_id"]).body
        parsed = parse_traceparent(view["output"]["traceparent"])
        assert parsed is not None, view
        found[summary["execution_id"]] = parsed.trace_id
    return found


def test_a_webhooks_traceparent_header_is_the_trace_of_what_it_starts(
    shared_worker: WorkerProcess,
) -> None:
    workflow = f"{unique()}-hooked"
    hook = f"{workflow}-hook"
    assert shared_worker.api.deploy(traced(workflow, {"webhook": {"name": hook}})).status == 201
    given = new_traceparent()
    for headers in ({"traceparent": given}, {"traceparent": "garbage", "Idempotency-Key": "2"}):
        reply = shared_worker.api.request(
            "POST", f"/hooks/{hook}", b"{}", "application/json", headers
        )
        assert reply.status == 202, reply
    traces = handler_trace(shared_worker, workflow, 2)
    given_trace = given[3:35]
    assert given_trace in traces.values()
    # The malformed one was ignored: that execution has a trace of its own.
    (other,) = [eid for eid, trace in traces.items() if trace != given_trace]
    assert traces[other] == ExecutionTrace.of(other, None).trace_id


def test_a_cloudevents_traceparent_extension_is_the_trace_of_what_it_starts(
    shared_worker: WorkerProcess, broker: SuiteBroker
) -> None:
    kind = unique()
    workflow = f"{kind}-flow"
    deployed = traced(workflow, {"event": {"types": [f"{kind}.created"]}})
    assert shared_worker.api.deploy(deployed).status == 201
    structured, binary, published = new_traceparent(), new_traceparent(), new_traceparent()
    event = CloudEvent("1", "/tests", f"{kind}.created", extensions={"traceparent": structured})
    send(broker, event)
    send(
        broker,
        CloudEvent("2", "/tests", f"{kind}.created", extensions={"traceparent": binary}),
        binary=True,
    )
    # Through the API: the request's header goes in the event as its extension.
    body = {"specversion": "1.0", "id": "3", "source": "/tests", "type": f"{kind}.created"}
    reply = shared_worker.api.request(
        "POST", "/events", json.dumps(body).encode(), "application/json", {"traceparent": published}
    )
    assert reply.status == 202, reply
    traces = set(handler_trace(shared_worker, workflow, 3).values())
    assert traces == {structured[3:35], binary[3:35], published[3:35]}


def test_an_execution_a_published_event_starts_joins_the_publishers_trace(
    shared_worker: WorkerProcess,
) -> None:
    kind = unique()
    listener = f"{kind}-listener"
    deployed = traced(listener, {"event": {"types": [f"{kind}.announced"]}})
    assert shared_worker.api.deploy(deployed).status == 201
    publisher = f"{kind}-publisher"
    assert (
        shared_worker.api.deploy(
            json.dumps(
                {
                    "id": publisher,
                    "nodes": [
                        {"id": "tell", "type": "publish", "params": {"type": f"{kind}.announced"}},
                        {"id": "done", "type": "end"},
                    ],
                    "edges": [{"from": "tell", "to": "done"}],
                }
            )
        ).status
        == 201
    )
    given = new_traceparent()
    reply = shared_worker.api.request(
        "POST",
        f"/workflows/{publisher}/executions",
        b'{"input": {}}',
        "application/json",
        {"traceparent": given},
    )
    assert reply.status == 202, reply
    ((_, trace),) = handler_trace(shared_worker, listener, 1).items()
    assert trace == given[3:35]
