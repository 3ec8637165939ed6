"""Records the runtime sends on an execution's behalf from outside its steps carry its trace:
a timer firing, a domain event resuming a waiting node, the API's control actions (pause,
resume, cancel, an approval's decision, a redrive), the start of an execution an event
starts and the admission of an execution its department's cap queued. Each is read back off
the transitions topic and its `traceparent` header checked; the execution view shows the
trace id."""

from __future__ import annotations

import json
import secrets
from functools import partial
from pathlib import Path
from typing import Any

from domain_events import executions_of, send, unique
from in_flight_server import capped
from otlp_receiver import Collector
from suite_broker import SuiteBroker
from topic_records import TopicReader, TopicRecord
from waiting import until
from workers import WorkerProcess

from braidflow.engine.trace_context import ExecutionTrace, parse_traceparent
from braidflow.schemas import decode_transition
from braidflow.schemas.cloudevents import CloudEvent

CHARGE = {
    "id": "traced-charge",
    "nodes": [
        {"id": "charge", "type": "task", "params": {"handler": "test.strict"}},
        {"id": "done", "type": "end"},
    ],
    "edges": [{"from": "charge", "to": "done"}],
}


def new_traceparent() -> str:
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


def deploy(worker: WorkerProcess, definition: dict[str, Any]) -> None:
    reply = worker.api.deploy(json.dumps(definition))
    assert reply.status == 201, reply


def deploy_then_end(worker: WorkerProcess, workflow_id: str, node: dict[str, Any]) -> None:
    """Deploy `workflow_id`: `node`, then an end."""
    end = {"id": "done", "type": "end"}
    edges = [{"from": node["id"], "to": "done"}]
    deploy(worker, {"id": workflow_id, "nodes": [node, end], "edges": edges})


def start(worker: WorkerProcess, workflow_id: str, traceparent: str) -> str:
    reply = worker.api.request(
        "POST",
        f"/workflows/{workflow_id}/executions",
        b'{"input": {}}',
        "application/json",
        {"traceparent": traceparent},
    )
    assert reply.status == 202, reply
    return str(reply.body["execution_id"])


def headers_of(worker: WorkerProcess, execution_id: str, kinds: set[str]) -> dict[str, str | None]:
    """The `traceparent` header of the execution's first transition of each kind in `kinds`
    (its class name), once the transitions topic holds them all."""
    key = execution_id.encode()

    def kind(record: TopicRecord) -> str:
        return type(decode_transition(record.value or b"")).__name__

    def found(records: list[TopicRecord]) -> dict[str, str | None]:
        headers: dict[str, str | None] = {}
        for record in records:
            if record.key == key and (name := kind(record)) in kinds:
                value = dict(record.headers).get("traceparent")
                headers.setdefault(name, None if value is None else value.decode())
        return headers

    with TopicReader(worker.broker, f"{worker.prefix}.transitions") as reader:
        records = reader.until(lambda records: set(found(records)) == kinds, 60)
    return found(records)


def node_waiting(worker: WorkerProcess, execution_id: str, node_id: str) -> None:
    def waiting() -> bool:
        view = worker.api.execution(execution_id).body
        return any(
            n["node_id"] == node_id and n["status"] == "waiting" for n in view.get("nodes", [])
        )

    until(waiting, f"{node_id} of {execution_id} waiting")


def dead_letter_of(worker: WorkerProcess, execution_id: str) -> str:
    """The id of the execution's dead letter, once the dead-letter index lists it."""
    return str(
        until(
            lambda: next(
                (
                    d["id"]
                    for d in worker.api.get("/dead-letters").body["dead_letters"]
                    if d.get("execution_id") == execution_id
                ),
                None,
            ),
            "the dead letter",
        )
    )


def status_is(worker: WorkerProcess, execution_id: str, status: str) -> bool:
    return bool(worker.api.execution(execution_id).body["status"] == status)


def paused_is(worker: WorkerProcess, execution_id: str, paused: bool) -> bool:
    return bool(worker.api.execution(execution_id).body["paused"] is paused)


def test_the_execution_view_shows_the_trace_id(shared_worker: WorkerProcess) -> None:
    workflow = f"{unique()}-shown"
    deploy(shared_worker, {"id": workflow, "nodes": [{"id": "done", "type": "end"}], "edges": []})
    given = new_traceparent()
    execution_id = start(shared_worker, workflow, given)
    view = shared_worker.wait_until_finished([execution_id])[execution_id]
    assert view["trace_id"] == given[3:35]
    assert view["traceparent"] == ExecutionTrace.of(execution_id, given).header


def test_a_timer_firing_carries_the_span_of_the_node_run_that_waits(
    shared_worker: WorkerProcess,
) -> None:
    workflow = f"{unique()}-nap"
    deploy_then_end(
        shared_worker, workflow, {"id": "nap", "type": "delay", "params": {"for": "300ms"}}
    )
    given = new_traceparent()
    execution_id = start(shared_worker, workflow, given)
    ended = shared_worker.wait_until_finished([execution_id])[execution_id]
    assert ended["status"] == "completed", ended
    headers = headers_of(shared_worker, execution_id, {"TimerFired"})
    expected = ExecutionTrace.of(execution_id, given).node_header("nap", 1)
    assert headers == {"TimerFired": expected}


def test_a_domain_event_resuming_a_waiting_node_carries_that_node_runs_span(
    shared_worker: WorkerProcess,
) -> None:
    kind = unique()
    workflow = f"{kind}-waiter"
    deploy_then_end(
        shared_worker,
        workflow,
        {"id": "wait", "type": "wait_event", "params": {"type": f"{kind}.told"}},
    )
    given = new_traceparent()
    execution_id = start(shared_worker, workflow, given)
    node_waiting(shared_worker, execution_id, "wait")
    # The event's own trace is the publisher's: the resumption is the execution's.
    event_trace = new_traceparent()
    send(
        shared_worker.broker,
        CloudEvent("1", "/tests", f"{kind}.told", extensions={"traceparent": event_trace}),
    )
    ended = shared_worker.wait_until_finished([execution_id])[execution_id]
    assert ended["status"] == "completed", ended
    headers = headers_of(shared_worker, execution_id, {"EventArrived"})
    expected = ExecutionTrace.of(execution_id, given).node_header("wait", 1)
    assert headers == {"EventArrived": expected}


def test_control_actions_through_the_api_carry_the_executions_trace_not_the_callers(
    shared_worker: WorkerProcess,
) -> None:
    workflow = f"{unique()}-review"
    deploy_then_end(
        shared_worker,
        workflow,
        {"id": "review", "type": "approval", "params": {"message": "Ship it?"}},
    )
    given, other = new_traceparent(), new_traceparent()
    decided, cancelled = (
        start(shared_worker, workflow, given),
        start(shared_worker, workflow, other),
    )
    node_waiting(shared_worker, decided, "review")
    node_waiting(shared_worker, cancelled, "review")
    # Each request comes with a trace of the caller's own: not the records' parent.
    caller = {"traceparent": new_traceparent()}
    api = shared_worker.api
    for action in ("pause", "resume"):
        path = f"/executions/{decided}/{action}"
        reply = api.request("POST", path, b"{}", "application/json", caller)
        assert reply.status == 202, reply
        until(partial(paused_is, shared_worker, decided, action == "pause"), f"the {action}")
    reply = api.request(
        "POST",
        f"/executions/{decided}/approvals/review",
        b'{"choice": "approve"}',
        "application/json",
        caller,
    )
    assert reply.status == 200, reply
    reply = api.request(
        "POST", f"/executions/{cancelled}/cancel", b"{}", "application/json", caller
    )
    assert reply.status == 202, reply
    assert shared_worker.wait_until_finished([decided])[decided]["status"] == "completed"

    trace = ExecutionTrace.of(decided, given)
    assert headers_of(
        shared_worker, decided, {"PauseExecution", "ResumeExecution", "ApprovalDecided"}
    ) == {
        "PauseExecution": trace.header,
        "ResumeExecution": trace.header,
        # The decision ends the approval's node run: its span.
        "ApprovalDecided": trace.node_header("review", 1),
    }
    assert headers_of(shared_worker, cancelled, {"CancelExecution"}) == {
        "CancelExecution": ExecutionTrace.of(cancelled, other).header
    }


def test_the_start_of_an_execution_an_event_starts_carries_its_trace(
    shared_worker: WorkerProcess,
) -> None:
    kind = unique()
    workflow = f"{kind}-started"
    deploy(
        shared_worker,
        {
            "id": workflow,
            "triggers": [{"event": {"types": [f"{kind}.opened"]}}],
            "nodes": [{"id": "done", "type": "end"}],
            "edges": [],
        },
    )
    given = new_traceparent()
    send(
        shared_worker.broker,
        CloudEvent("1", "/tests", f"{kind}.opened", extensions={"traceparent": given}),
    )
    (summary,) = until(lambda: executions_of(shared_worker, workflow), "the started execution")
    execution_id = summary["execution_id"]
    headers = headers_of(shared_worker, execution_id, {"StartExecution"})
    assert headers == {"StartExecution": ExecutionTrace.of(execution_id, given).header}


def test_a_queued_execution_is_admitted_under_its_departments_cap_in_its_own_trace(
    shared_worker: WorkerProcess,
) -> None:
    department, workflow = unique(), f"{unique()}-capped"
    reply = shared_worker.api.deploy(capped(department, 1))
    assert reply.status == 201, reply
    nap = {"id": "nap", "type": "delay", "params": {"for": "500ms"}}
    end = {"id": "done", "type": "end"}
    deploy(
        shared_worker,
        {
            "id": workflow,
            "department": department,
            "nodes": [nap, end],
            "edges": [{"from": "nap", "to": "done"}],
        },
    )
    given = {
        start(shared_worker, workflow, tp): tp for tp in (new_traceparent(), new_traceparent())
    }
    first, second = given
    # The second waits for the first's slot: admitted by the agent, once the first has ended.
    until(partial(status_is, shared_worker, second, "queued"), "the second start queued")
    ended = shared_worker.wait_until_finished([first, second])
    assert {e: v["status"] for e, v in ended.items()} == dict.fromkeys(given, "completed")
    for execution_id, traceparent in given.items():
        assert headers_of(shared_worker, execution_id, {"AdmitExecution"}) == {
            "AdmitExecution": ExecutionTrace.of(execution_id, traceparent).header
        }


def test_a_redrive_carries_the_executions_trace_and_its_new_attempt_runs_in_it(
    shared_worker: WorkerProcess,
) -> None:
    workflow = f"{unique()}-charge"
    deploy(shared_worker, {**CHARGE, "id": workflow})
    given = new_traceparent()
    execution_id = start(shared_worker, workflow, given)
    api = shared_worker.api
    letter = dead_letter_of(shared_worker, execution_id)
    assert shared_worker.wait_until_finished([execution_id])[execution_id]["status"] == "failed"
    reply = api.post_json(f"/dead-letters/{letter}/redrive", {"input": {"fixed": True}})
    assert reply.status == 202, reply
    until(partial(status_is, shared_worker, execution_id, "completed"), "the redriven end")
    trace = ExecutionTrace.of(execution_id, given)
    assert headers_of(shared_worker, execution_id, {"RedriveNode"}) == {"RedriveNode": trace.header}
    # The new attempt's task request and its result: the attempt's span, in the same trace.
    with TopicReader(shared_worker.broker, f"{shared_worker.prefix}.tasks") as reader:
        requests = [r for r in reader.read_to_end() if r.key == execution_id.encode()]
    sent = [
        parse_traceparent((dict(r.headers).get("traceparent") or b"").decode()) for r in requests
    ]
    assert [tp.header if tp else None for tp in sent] == [
        trace.node_header("charge", 1),
        trace.node_header("charge", 2),
    ]


def test_a_redriven_executions_spans_stay_in_its_trace_and_none_ends_twice(
    broker: SuiteBroker, prefix: str, tmp_path: Path, collector: tuple[Collector, str]
) -> None:
    seen, url = collector
    worker = WorkerProcess(
        broker,
        prefix,
        tmp_path / "data",
        tmp_path / "worker.log",
        env={
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{url}/v1/traces",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        },
    )
    given = new_traceparent()
    with worker:
        worker.wait_ready()
        deploy(worker, CHARGE)
        execution_id = start(worker, "traced-charge", given)
        letter = dead_letter_of(worker, execution_id)
        assert worker.wait_until_finished([execution_id])[execution_id]["status"] == "failed"
        reply = worker.api.post_json(f"/dead-letters/{letter}/redrive", {"input": {"fixed": True}})
        assert reply.status == 202, reply
        until(partial(status_is, worker, execution_id, "completed"), "the redriven end")
        until(lambda: len(seen.of_trace(given[3:35])) >= 5, "the execution's spans", 60)

    spans = seen.of_trace(given[3:35])
    assert len({s.span_id for s in spans}) == len(spans) == 5, spans
    named = {(s.name, s.attributes.get("braidflow.attempt")): s for s in spans}
    execution = named["workflow traced-charge", None]
    redrive = named["redrive traced-charge", None]
    assert execution.parent_span_id == given[36:52]
    assert execution.attributes["braidflow.status"] == "failed"
    assert redrive.parent_span_id == execution.span_id
    assert redrive.attributes["braidflow.status"] == "completed"
    assert named["node charge", 1].parent_span_id == execution.span_id
    # The redriven attempt and what follows it are the redrive's children.
    assert named["node charge", 2].parent_span_id == redrive.span_id
    assert named["node done", 1].parent_span_id == redrive.span_id
