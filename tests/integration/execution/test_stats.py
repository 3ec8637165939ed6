"""Stream analytics against a real worker: after executions that succeed, retry and fail, the
stats show the right counts and plausible quantiles per workflow, department and node, the
Prometheus metrics say the same, and the outside consumer of docs/analytics.md computes the
same figures from the lifecycle topic; an execution past its SLA publishes one
`braidflow.sla.breached` and counts."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from prometheus_client.parser import text_string_to_metric_families
from topic_records import TopicReader, topic_partitions
from waiting import until
from workers import WorkerProcess

from braidflow.schemas.stats_figures import Observation
from braidflow.schemas.stats_observations import StatsRecord, decode_record, encode_record
from braidflow.streams.partitioner import KeyPartitioner

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "stats_consumer.py"
COUNTS = ("started", "completed", "failed", "cancelled", "timed_out", "retries", "dead_letters")


def unique(name: str) -> str:
    return f"{name}{uuid.uuid4().hex[:8]}"


def deploy(worker: WorkerProcess, text: str) -> None:
    reply = worker.api.deploy(text)
    assert reply.status in (200, 201), reply


def totals(buckets: list[dict[str, Any]], node: str | None = None) -> dict[str, int]:
    """The counts of `buckets` (or of one node of them) added up."""
    parts = [b if node is None else b["nodes"].get(node, {}) for b in buckets]
    return {name: sum(p.get(name, 0) for p in parts) for name in COUNTS}


def plausible(quantiles: dict[str, float | None], longest_ms: float) -> None:
    p50, p95, p99 = quantiles["p50"], quantiles["p95"], quantiles["p99"]
    assert p50 is not None and p95 is not None and p99 is not None, quantiles
    assert 0 <= p50 <= p95 <= p99 <= longest_ms * 1.01 + 1, (quantiles, longest_ms)


def elapsed_ms(view: dict[str, Any]) -> float:
    start = datetime.fromisoformat(view["started_at"])
    end = datetime.fromisoformat(view["completed_at"])
    return (end - start).total_seconds() * 1000


@pytest.fixture(scope="module")
def ran(shared_worker: WorkerProcess) -> dict[str, Any]:
    """Six executions of a department's workflow: three succeed at once, two after a retry,
    one fails after three attempts (two retries and a dead letter)."""
    dept, workflow = unique("analytics"), unique("flaky")
    deploy(shared_worker, f"kind: Department\nname: {dept}\n")
    deploy(
        shared_worker,
        f"""
id: {workflow}
department: {dept}
nodes:
  - id: work
    type: task
    params: {{handler: test.flaky, input: {{succeed_at: "${{input.succeed_at}}"}}}}
    retry: {{max_attempts: 3, backoff: fixed, initial: 10ms}}
  - {{id: done, type: end}}
edges:
  - {{from: work, to: done}}
""",
    )
    started = [shared_worker.api.start(workflow, {"succeed_at": n}) for n in (1, 1, 1, 2, 2, 9)]
    views = shared_worker.wait_until_finished(started)
    statuses = sorted(v["status"] for v in views.values())
    assert statuses == ["completed"] * 5 + ["failed"], views
    longest = max(elapsed_ms(v) for v in views.values())
    return {"department": dept, "workflow": workflow, "longest_ms": longest}


def stats(worker: WorkerProcess, query: str) -> list[dict[str, Any]]:
    reply = worker.api.get(f"/stats?{query}")
    assert reply.status == 200, reply
    return list(reply.body["buckets"])


def settled(worker: WorkerProcess, query: str, ended: int) -> list[dict[str, Any]]:
    """The buckets of `query` once they count `ended` executions that ended."""
    return until(
        lambda: (
            (found := stats(worker, query))
            and sum(b["completed"] + b["failed"] for b in found) >= ended
            and found
        ),
        what=f"stats of {query} counting {ended} ended executions",
    )


def test_the_stats_count_executions_retries_and_failures_per_workflow_department_and_node(
    shared_worker: WorkerProcess, ran: dict[str, Any]
) -> None:
    workflow, dept = ran["workflow"], ran["department"]
    want = {
        "started": 6,
        "completed": 5,
        "failed": 1,
        "cancelled": 0,
        "timed_out": 0,
        "retries": 4,
        "dead_letters": 1,
    }
    minutes = settled(shared_worker, f"workflow={workflow}&window=1m", 6)
    assert totals(minutes) == want, minutes
    assert all(b["workflow_id"] == workflow and "department" not in b for b in minutes)
    # Attempts of the node: 3 + 2 x 2 + 3 started, the last of the failing one failed.
    assert totals(minutes, "work") == {**want, "started": 10}, minutes
    hours = settled(shared_worker, f"workflow={workflow}&window=1h", 6)
    assert totals(hours) == want, hours
    if len(hours) == 1:
        # Every execution in one bucket: its quantiles are those of all six.
        plausible(hours[0]["duration_ms"], ran["longest_ms"])
        plausible(hours[0]["nodes"]["work"]["duration_ms"], ran["longest_ms"])
    for bucket in minutes:
        if bucket["completed"] + bucket["failed"]:
            plausible(bucket["duration_ms"], ran["longest_ms"])

    by_department = settled(shared_worker, f"department={dept}&window=1m", 6)
    assert totals(by_department) == want, by_department
    assert totals(by_department, f"{workflow}/work") == {**want, "started": 10}
    assert all(b["department"] == dept for b in by_department)
    # Hopping windows: each moment is in five buckets of five minutes.
    hopping = settled(shared_worker, f"workflow={workflow}&window=5m", 6)
    assert totals(hopping)["started"] == 30, hopping


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of metric sample `name` with exactly `labels` in Prometheus text."""
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return float(found.value)
    return None


def test_the_metrics_show_the_same_counts(
    shared_worker: WorkerProcess, ran: dict[str, Any]
) -> None:
    settled(shared_worker, f"workflow={ran['workflow']}", 6)
    text = shared_worker.api.get("/metrics").body
    assert isinstance(text, str)
    workflow, dept = ran["workflow"], ran["department"]
    execution = {"tenant": "default", "workflow": workflow, "department": dept}
    executions = "braidflow_stats_executions_total"
    assert sample(text, executions, **execution, event="started") == 6
    assert sample(text, executions, **execution, event="completed") == 5
    assert sample(text, executions, **execution, event="failed") == 1
    node = {"tenant": "default", "workflow": workflow, "node": "work"}
    assert sample(text, "braidflow_stats_node_runs_total", **node, event="retries") == 4
    assert sample(text, "braidflow_stats_node_runs_total", **node, event="dead_letters") == 1
    p99 = sample(
        text, "braidflow_stats_duration_ms", tenant="default", workflow=workflow, node="",
        quantile="p99",
    )  # fmt: skip
    assert p99 is not None and 0 < p99 <= ran["longest_ms"] * 1.01 + 1


def test_the_events_of_a_batch_go_on_as_one_record_per_workflow_and_minute(
    shared_worker: WorkerProcess, ran: dict[str, Any]
) -> None:
    workflow = ran["workflow"]
    settled(shared_worker, f"workflow={workflow}", 6)
    key = f"default/workflow/{workflow}".encode()
    with TopicReader(shared_worker.broker, f"{shared_worker.prefix}.stats") as reader:
        records = [decode_record(r.value) for r in reader.read_to_end() if r.key == key]
    observations = sum(len(r.observations) for r in records)
    # Six executions, each at least a start, a node start and end, and its end.
    assert observations >= 6 * 4, records
    # Each event says one thing: a record per event would hold one observation each.
    assert len(records) < observations, [r.observations for r in records]


def test_a_batch_of_stats_records_writes_each_bucket_once(shared_worker: WorkerProcess) -> None:
    """Forty records of one workflow, sent at once, all count, and reach the minute table's
    changelog as a few writes of their bucket (one per record before)."""
    workflow = unique("burst")
    deploy(shared_worker, f"id: {workflow}\nnodes:\n  - {{id: done, type: end}}\nedges: []\n")
    broker, prefix = shared_worker.broker, shared_worker.prefix
    key = f"default/workflow/{workflow}".encode()
    partitions = topic_partitions(broker, f"{prefix}.stats")
    partition = KeyPartitioner()(key, partitions, partitions)
    value = encode_record(StatsRecord(workflow, None, (Observation("started"),)))
    producer = Producer(broker.confluent({"linger.ms": 50}))
    for _ in range(40):
        producer.produce(f"{prefix}.stats", value, key, partition=partition)
    assert producer.flush(10) == 0
    until(
        lambda: sum(b["started"] for b in stats(shared_worker, f"workflow={workflow}")) == 40,
        what="the stats counting 40 starts",
    )
    with TopicReader(broker, f"{prefix}-stats-1m-changelog") as reader:
        writes = [r for r in reader.read_to_end() if r.key and workflow.encode() in r.key]
    assert 0 < len(writes) < 10, len(writes)


def test_observations_sent_again_after_a_crash_count_once(shared_worker: WorkerProcess) -> None:
    """What a first stage killed before its commit sends again (the same lifecycle records,
    in other batches) counts once; the positions kept for it do not show."""
    workflow = unique("resent")
    deploy(shared_worker, f"id: {workflow}\nnodes:\n  - {{id: done, type: end}}\nedges: []\n")
    broker, prefix = shared_worker.broker, shared_worker.prefix
    key = f"default/workflow/{workflow}".encode()
    partitions = topic_partitions(broker, f"{prefix}.stats")
    partition = KeyPartitioner()(key, partitions, partitions)
    started = Observation("started")

    def sent(*offsets: int) -> bytes:
        sources = tuple((2, offset) for offset in offsets)
        return encode_record(StatsRecord(workflow, None, (started,) * len(offsets), sources))

    producer = Producer(broker.confluent())
    for value in (sent(1, 2, 3), sent(2, 3), sent(3, 4), sent(1, 2, 3, 4, 5)):
        producer.produce(f"{prefix}.stats", value, key, partition=partition)
    assert producer.flush(10) == 0
    until(
        lambda: sum(b["started"] for b in stats(shared_worker, f"workflow={workflow}")) == 5,
        what="the stats counting the five events",
    )
    [bucket] = stats(shared_worker, f"workflow={workflow}&window=1h")
    assert bucket["started"] == 5 and "read" not in bucket, bucket
    text = shared_worker.api.get("/metrics").body
    labels = {"tenant": "default", "workflow": workflow, "department": "", "event": "started"}
    assert sample(text, "braidflow_stats_executions_total", **labels) == 5


def test_an_outside_consumer_computes_the_same_figures_from_the_lifecycle_topic(
    shared_worker: WorkerProcess, ran: dict[str, Any]
) -> None:
    workflow = ran["workflow"]
    minutes = settled(shared_worker, f"workflow={workflow}&window=1m", 6)
    broker = shared_worker.broker
    properties = [
        f"-X{name}={value}"
        for name, value in broker.confluent().items()
        if name != "bootstrap.servers"
    ]
    done = subprocess.run(
        [
            sys.executable,
            str(EXAMPLE),
            "--broker",
            broker.address,
            "--topic",
            f"{shared_worker.prefix}.lifecycle",
            *properties,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    theirs = [json.loads(line) for line in done.stdout.splitlines()]
    theirs = [line for line in theirs if line["workflow_id"] == workflow]
    ours = [
        {
            "tenant": "default",
            "workflow_id": workflow,
            "start": b["start"],
            **{name: b[name] for name in (*COUNTS, "sla_breached")},
            "duration_ms": b["duration_ms"],
        }
        for b in minutes
    ]
    assert theirs == ours


def test_an_execution_past_its_sla_publishes_one_breach_and_counts(
    shared_worker: WorkerProcess,
) -> None:
    workflow = unique("slow")
    deploy(
        shared_worker,
        f"""
id: {workflow}
settings: {{sla: 5s}}
nodes:
  - id: work
    type: task
    params: {{handler: test.slow, input: {{seconds: "${{input.seconds}}", value: 1}}}}
  - {{id: done, type: end}}
edges:
  - {{from: work, to: done}}
""",
    )
    # The SLA well above what a one-node execution takes on a loaded machine: at 500 ms the
    # quick one breached too, once, in CI.
    late = shared_worker.api.start(workflow, {"seconds": 8})
    early = shared_worker.api.start(workflow, {"seconds": 0})
    views = shared_worker.wait_until_finished([late, early])
    assert {v["status"] for v in views.values()} == {"completed"}, views
    buckets = until(
        lambda: (
            (found := stats(shared_worker, f"workflow={workflow}&window=1h"))
            and sum(b["completed"] for b in found) == 2
            and found
        ),
        what="the stats of both executions",
    )
    assert sum(b["sla_breached"] for b in buckets) == 1, buckets
    with TopicReader(shared_worker.broker, "events.braidflow") as reader:
        records = reader.read_to_end()
    breaches = [
        json.loads(r.value or b"{}")
        for r in records
        if r.key is not None and r.key.decode() in (late, early)
    ]
    assert len(breaches) == 1, breaches
    [breach] = breaches
    assert breach["type"] == "braidflow.sla.breached" and breach["subject"] == late
    assert breach["data"]["workflow"] == workflow and breach["data"]["sla_ms"] == 5000


def test_a_bad_parameter_is_refused_naming_it(shared_worker: WorkerProcess) -> None:
    for query, field in (
        ("window=2m", "window"),
        ("from=yesterday", "from"),
        ("to=2026-13-01T00:00:00Z", "to"),
        ("from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z", "from"),
        ("from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z", "from"),
        # Millennia apart: counted, never listed (a list of their minutes took the worker down).
        ("from=3398-04-24T17:38:50Z&to=9420-08-02T16:27:17Z", "from"),
    ):
        reply = shared_worker.api.get(f"/stats?{query}")
        assert reply.status == 400 and reply.body.get("field") == field, (query, reply)
    assert shared_worker.api.get("/stats?workflow=no-such-workflow").status == 404


def test_a_viewer_reads_the_stats_of_what_it_may_read_only(
    shared_worker: WorkerProcess, ran: dict[str, Any]
) -> None:
    workflow, dept = ran["workflow"], ran["department"]
    settled(shared_worker, f"workflow={workflow}", 6)
    elsewhere = unique("elsewhere")
    deploy(
        shared_worker,
        f"id: {elsewhere}\nnodes:\n  - {{id: done, type: end}}\nedges: []\n",
    )
    viewer = shared_worker.api.as_new_key("viewer", unique("dept-viewer"), department=dept)
    # No filter: every workflow it may read, those of its department only.
    everything = viewer.get("/stats?window=1h")
    assert everything.status == 200, everything
    assert {b["workflow_id"] for b in everything.body["buckets"]} == {workflow}
    assert totals(everything.body["buckets"])["started"] == 6
    assert viewer.get(f"/stats?department={dept}").status == 200
    # A workflow or a department it may not read does not exist for it.
    assert viewer.get(f"/stats?workflow={elsewhere}").status == 404
    assert viewer.get("/stats?department=finance").status == 404
