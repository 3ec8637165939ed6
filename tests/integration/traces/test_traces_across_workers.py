"""Traces across services, workers and sub-workflows, with real parts: two worker subprocesses
export their spans by OTLP/HTTP (the SDK's own exporter, as OTEL_* configures it) to a
receiver on 127.0.0.1, and an http node calls a server on 127.0.0.1 that records the
traceparent it is sent. The first worker stops while the children run, so the second ends
spans the first began."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

from otlp_receiver import Collector
from suite_broker import SuiteBroker
from waiting import until
from workers import WorkerProcess, wait_for_terminal

from braidflow.engine.trace_context import ExecutionTrace, parse_traceparent

SPANS_WAIT_S = 60


CHILD = """
id: traced-child
nodes:
  - {id: work, type: task, params: {handler: test.traceparent, input: {seconds: 2}}}
  - {id: done, type: end, params: {output: "${nodes.work.output}"}}
edges:
  - {from: work, to: done}
"""
PARENT = """
id: traced-parent
nodes:
  - {id: fetch, type: http, params: {method: GET, url: "URL/service"}}
  - {id: call, type: subworkflow, params: {workflow: traced-child}}
  - {id: done, type: end, params: {output: {child: "${nodes.call.output}"}}}
edges:
  - {from: fetch, to: call}
  - {from: call, to: done}
"""


def start(worker: WorkerProcess, headers: dict[str, str]) -> str:
    body = json.dumps({"input": {}}).encode()
    reply = worker.api.request(
        "POST", "/workflows/traced-parent/executions", body, "application/json", headers
    )
    assert reply.status == 202, reply
    return str(reply.body["execution_id"])


def both_hold_partitions(first: WorkerProcess, second: WorkerProcess) -> None:
    """Run children until each worker has applied transitions of them: both hold partitions
    of the transitions topic, or all the executions under test might run on one."""

    def shared() -> bool:
        children = [first.api.start("traced-child", {}) for _ in range(8)]
        first.wait_until_finished(children, 30)
        return first.applied_transitions() > 0 and second.applied_transitions() > 0

    until(shared, "both workers applying transitions", 60)


def test_one_trace_per_execution_with_the_right_parents_across_two_workers_and_a_child(
    broker: SuiteBroker,
    prefix: str,
    tmp_path: Path,
    collector: tuple[Collector, str],
) -> None:
    seen, url = collector
    workers = [
        WorkerProcess(
            broker,
            prefix,
            tmp_path / name / "data",
            tmp_path / f"{name}.log",
            env={
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{url}/v1/traces",
                "OTEL_BSP_SCHEDULE_DELAY": "100",
                "OTEL_RESOURCE_ATTRIBUTES": f"service.instance.id={name}",
            },
        )
        for name in ("first", "second")
    ]
    try:
        for worker in workers:
            worker.start()
        for worker in (*workers, *workers):
            worker.wait_ready()
        first, second = workers
        assert first.api.deploy(CHILD).status == 201
        assert first.api.deploy(PARENT.replace("URL", url)).status == 201
        until(lambda: second.api.get("/workflows/traced-parent").status == 200, "the deployment")
        both_hold_partitions(first, second)

        given: dict[str, str] = {}
        for n in range(8):
            traceparent = f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"
            given[start(workers[n % 2], {"traceparent": traceparent})] = traceparent
        own = start(first, {})
        malformed = start(second, {"traceparent": "00-not-a-traceparent-01"})
        # The children run for 2 s; the first worker leaves meanwhile, and the second ends
        # the spans the first began.
        until(lambda: len(seen.traceparents) >= 10, "every http node's call", 30)
        first.stop()
        ended = wait_for_terminal(second.api, [*given, own, malformed], 60, [second])
    finally:
        for worker in workers:
            worker.stop()

    assert {view["status"] for view in ended.values()} == {"completed"}, ended
    expected = {eid: parse_traceparent(tp) for eid, tp in given.items()}
    expected[own] = None
    expected[malformed] = None
    traces = {
        eid: (tp.trace_id if tp else ExecutionTrace.of(eid, None).trace_id)
        for eid, tp in expected.items()
    }

    def all_spans_in() -> bool:
        return all(len(seen.of_trace(trace_id)) == 7 for trace_id in traces.values())

    until(all_spans_in, "seven spans of every execution's trace", SPANS_WAIT_S)
    for execution_id, incoming in expected.items():
        received = seen.of_trace(traces[execution_id])
        spans = {(s.attributes["braidflow.workflow_id"], s.name): s for s in received}
        assert len(spans) == 7, received
        execution = spans["traced-parent", "workflow traced-parent"]
        assert execution.attributes["braidflow.execution_id"] == execution_id
        assert execution.parent_span_id == (incoming.span_id if incoming else None)
        for name in ("node fetch", "node call", "node done"):
            assert spans["traced-parent", name].parent_span_id == execution.span_id, name
        child = spans["traced-child", "workflow traced-child"]
        assert child.parent_span_id == spans["traced-parent", "node call"].span_id
        for name in ("node work", "node done"):
            assert spans["traced-child", name].parent_span_id == child.span_id, name
        # The handler's context and the http call carry the node runs' spans.
        output = ended[execution_id]["output"]["child"]
        work = spans["traced-child", "node work"]
        assert output == {"traceparent": f"00-{traces[execution_id]}-{work.span_id}-01"}
        fetch = spans["traced-parent", "node fetch"]
        assert f"00-{traces[execution_id]}-{fetch.span_id}-01" in seen.traceparents
    # Both workers exported spans of these traces; those of one trace may come from either.
    workers_seen = {s.worker for trace_id in traces.values() for s in seen.of_trace(trace_id)}
    assert workers_seen == {"first", "second"}
