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
from topic_records import TopicReader
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


def test_a_handler_runs_with_its_node_runs_span_as_the_current_opentelemetry_span(
    shared_worker: WorkerProcess,
) -> None:
    workflow = f"{unique()}-spans"
    definition = {
        "id": workflow,
        "nodes": [
            {"id": "sync", "type": "task", "params": {"handler": "test.current_span"}},
            {"id": "async", "type": "task", "params": {"handler": "test.current_span_async"}},
            {
                "id": "done",
                "type": "end",
                "params": {
                    "output": {"sync": "${nodes.sync.output}", "async": "${nodes.async.output}"}
                },
            },
        ],
        "edges": [{"from": "sync", "to": "async"}, {"from": "async", "to": "done"}],
    }
    assert shared_worker.api.deploy(json.dumps(definition)).status == 201
    given = new_traceparent()
    reply = shared_worker.api.request(
        "POST",
        f"/workflows/{workflow}/executions",
        b'{"input": {}}',
        "application/json",
        {"traceparent": given},
    )
    assert reply.status == 202, reply
    execution_id = reply.body["execution_id"]
    output = shared_worker.wait_until_finished([execution_id])[execution_id]["output"]
    trace = ExecutionTrace.of(execution_id, given)
    assert output == {
        node: {"trace_id": given[3:35], "span_id": trace.node_span_id(node, 1)}
        for node in ("sync", "async")
    }


def test_every_record_an_execution_and_its_child_produce_carries_the_trace(
    shared_worker: WorkerProcess,
) -> None:
    kind = unique()
    child, parent = f"{kind}-child", f"{kind}-parent"
    deployed = [
        {
            "id": child,
            "nodes": [
                {"id": "echo", "type": "task", "params": {"handler": "test.echo", "input": {}}},
                {"id": "done", "type": "end"},
            ],
            "edges": [{"from": "echo", "to": "done"}],
        },
        {
            "id": parent,
            "nodes": [
                {"id": "call", "type": "subworkflow", "params": {"workflow": child}},
                {"id": "tell", "type": "publish", "params": {"type": f"{kind}.told"}},
                {"id": "done", "type": "end"},
            ],
            "edges": [{"from": "call", "to": "tell"}, {"from": "tell", "to": "done"}],
        },
    ]
    for definition in deployed:
        assert shared_worker.api.deploy(json.dumps(definition)).status == 201
    given = new_traceparent()
    reply = shared_worker.api.request(
        "POST",
        f"/workflows/{parent}/executions",
        b'{"input": {}}',
        "application/json",
        {"traceparent": given},
    )
    assert reply.status == 202, reply
    execution_id = reply.body["execution_id"]
    ended = shared_worker.wait_until_finished([execution_id])[execution_id]
    assert ended["status"] == "completed", ended
    ours = {execution_id.encode(), f"{execution_id}.call".encode()}
    prefix = shared_worker.prefix
    seen: dict[str, int] = {}
    for topic in ("transitions", "tasks", "lifecycle", f"events.{kind}"):
        name = topic if topic.startswith("events.") else f"{prefix}.{topic}"
        with TopicReader(shared_worker.broker, name) as reader:
            records = [
                r for r in reader.read_to_end() if r.key in ours or topic.startswith("events.")
            ]
        assert records, topic
        for record in records:
            header = dict(record.headers).get("traceparent")
            parsed = parse_traceparent((header or b"").decode())
            assert parsed is not None and parsed.trace_id == given[3:35], (topic, record)
        seen[topic] = len(records)
    # Starts, task results and the child's notice; task requests; every lifecycle event.
    assert seen["transitions"] >= 5 and seen["tasks"] == 1 and seen["lifecycle"] >= 10, seen


def test_an_execution_a_lifecycle_event_starts_continues_the_trace_of_the_one_that_ended(
    shared_worker: WorkerProcess,
) -> None:
    kind = unique()
    first, follower = f"{kind}-first", f"{kind}-follower"
    simple = {"id": first, "nodes": [{"id": "done", "type": "end"}], "edges": []}
    assert shared_worker.api.deploy(json.dumps(simple)).status == 201
    trigger = {
        "event": {
            "types": ["braidflow.workflow.completed"],
            "when": f"event.data.workflow_id == '{first}'",
        }
    }
    assert shared_worker.api.deploy(traced(follower, trigger)).status == 201
    given = new_traceparent()
    reply = shared_worker.api.request(
        "POST",
        f"/workflows/{first}/executions",
        b'{"input": {}}',
        "application/json",
        {"traceparent": given},
    )
    assert reply.status == 202, reply
    ((_, trace),) = handler_trace(shared_worker, follower, 1).items()
    assert trace == given[3:35]
