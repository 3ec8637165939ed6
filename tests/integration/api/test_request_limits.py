"""No request stalls the engine: an alias bomb, input nested 100,000 deep, a definition nested
50,000 deep, a deep event (by the API or straight onto Kafka) are refused naming the limit,
while a workflow running beside them keeps going."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

import pytest
from suite_broker import SuiteBroker
from topic_records import TopicReader, produce
from workers import WorkerProcess

from braidflow.client_cli import Reply
from braidflow.schemas.dead_letters import DeadLetter, decode_dead_letter
from braidflow.topology.limits import MAX_ALIAS_VALUES, MAX_DEPTH

STEPS = 10
# Generous: the chain takes about STEPS * 0.2 s; a stalled loop took a minute and more.
CHAIN_DEADLINE_S = 45.0
STALL = "keepalive is not responding"
DEEP = "[" * 100_000 + "]" * 100_000


def chain_text(workflow_id: str) -> str:
    nodes = [
        {"id": f"s{i}", "type": "task", "params": {"handler": "test.slow", "input": {"value": i}}}
        for i in range(STEPS)
    ]
    edges = [{"from": f"s{i}", "to": f"s{i + 1}"} for i in range(STEPS - 1)]
    nodes.append({"id": "done", "type": "end"})
    edges.append({"from": f"s{STEPS - 1}", "to": "done"})
    return json.dumps({"id": workflow_id, "nodes": nodes, "edges": edges})


def alias_bomb(workflow_id: str) -> str:
    """Nine levels of nine references each, as a task's input: 387 million values expanded."""
    lines = [f"id: {workflow_id}", "variables:", '  a0: &a0 ["lol"]']
    for level in range(1, 10):
        lines.append(f"  a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * 9)}]")
    task = "{handler: test.echo, input: *a9}"
    lines += ["nodes:", f"  - {{id: a, type: task, params: {task}}}", "  - {id: done, type: end}"]
    return "\n".join([*lines, "edges:", "  - {from: a, to: done}"])


def structured_event(event_type: str, data: str) -> bytes:
    head = json.dumps({"specversion": "1.0", "id": uuid.uuid4().hex, "source": "/t"})
    return f'{head[:-1]}, "type": "{event_type}", "data": {data}}}'.encode()


def beside_a_running_chain(worker: WorkerProcess, send: Callable[[], Reply]) -> Reply:
    """`send()`'s reply, checking that a chain started just before it finishes in time."""
    workflow_id = f"pace-{uuid.uuid4().hex[:8]}"
    assert worker.api.deploy(chain_text(workflow_id)).status == 201
    execution_id = worker.api.start(workflow_id, {})
    reply = send()
    view = worker.wait_until_finished([execution_id], CHAIN_DEADLINE_S)[execution_id]
    assert view["status"] == "completed", view
    assert STALL not in worker.log_path.read_text(errors="replace"), worker.log_tail()
    return reply


def deep_body(worker: WorkerProcess, path: str) -> Callable[[], Reply]:
    return lambda: worker.api.request("POST", path, DEEP.encode(), "application/json")


def assert_refused(reply: Reply, status: int, limit: str) -> None:
    assert reply.status == status, reply
    assert limit in reply.body["error"], reply


def test_a_yaml_alias_bomb_is_refused_while_a_workflow_runs(shared_worker: WorkerProcess) -> None:
    text = alias_bomb(f"bomb-{uuid.uuid4().hex[:8]}")
    reply = beside_a_running_chain(shared_worker, lambda: shared_worker.api.deploy(text))
    assert_refused(reply, 422, f"YAML aliases expand to more than the limit of {MAX_ALIAS_VALUES}")


@pytest.mark.parametrize("syntax", ["json", "yaml"])
def test_a_definition_nested_50_000_deep_is_refused(
    shared_worker: WorkerProcess, syntax: str
) -> None:
    deep = "[" * 50_000 + "]" * 50_000
    text = deep if syntax == "json" else f"id: deep\nvariables: {{a: {deep}}}\n"
    reply = beside_a_running_chain(shared_worker, lambda: shared_worker.api.deploy(text))
    assert_refused(
        reply, 422, f"the definition nests arrays and objects deeper than the limit of {MAX_DEPTH}"
    )


def test_an_input_nested_100_000_deep_is_refused(shared_worker: WorkerProcess) -> None:
    workflow_id = f"target-{uuid.uuid4().hex[:8]}"
    assert shared_worker.api.deploy(chain_text(workflow_id)).status == 201
    body = ('{"input": ' + DEEP + "}").encode()
    path = f"/workflows/{workflow_id}/executions"
    reply = beside_a_running_chain(
        shared_worker,
        lambda: shared_worker.api.request("POST", path, body, "application/json"),
    )
    assert_refused(
        reply, 422, f"the body nests arrays and objects deeper than the limit of {MAX_DEPTH}"
    )


def test_an_event_nested_100_000_deep_is_refused(shared_worker: WorkerProcess) -> None:
    body = structured_event("deep.happened", DEEP)
    reply = beside_a_running_chain(
        shared_worker,
        lambda: shared_worker.api.request("POST", "/events", body, "application/cloudevents+json"),
    )
    assert_refused(
        reply, 422, f"the event nests arrays and objects deeper than the limit of {MAX_DEPTH}"
    )


def test_a_webhook_body_nested_100_000_deep_is_refused(shared_worker: WorkerProcess) -> None:
    name = f"deep-{uuid.uuid4().hex[:8]}"
    hooked = json.loads(chain_text(name))
    hooked["triggers"] = [{"webhook": {"name": name}}]
    assert shared_worker.api.deploy(json.dumps(hooked)).status == 201
    reply = beside_a_running_chain(shared_worker, deep_body(shared_worker, f"/hooks/{name}"))
    assert_refused(
        reply, 422, f"the body nests arrays and objects deeper than the limit of {MAX_DEPTH}"
    )


@pytest.mark.parametrize(
    "path",
    ["/executions/nobody/approvals/review", "/executions/nobody/cancel", "/dead-letters/x/redrive"],
    ids=["approval", "control", "redrive"],
)
def test_every_other_json_body_nested_too_deep_is_refused(
    shared_worker: WorkerProcess, path: str
) -> None:
    reply = beside_a_running_chain(shared_worker, deep_body(shared_worker, path))
    assert_refused(
        reply, 422, f"the body nests arrays and objects deeper than the limit of {MAX_DEPTH}"
    )


def test_an_event_nested_100_000_deep_on_kafka_is_dead_lettered(
    shared_worker: WorkerProcess, broker: SuiteBroker
) -> None:
    segment = f"deep{uuid.uuid4().hex[:8]}"
    topic = f"events.{segment}"
    key = uuid.uuid4().hex.encode()

    def from_a_raw_producer() -> Reply:
        produce(broker, topic, key, structured_event(f"{segment}.happened", DEEP))
        return Reply(202, {})

    beside_a_running_chain(shared_worker, from_a_raw_producer)

    def letters() -> list[DeadLetter]:
        found = (decode_dead_letter(r.value) for r in reader.records if r.value is not None)
        return [d for d in found if isinstance(d, DeadLetter) and d.key == key]

    with TopicReader(broker, f"{shared_worker.prefix}.dead-letters") as reader:
        reader.until(lambda _: bool(letters()), 60)
        # The partition moves on: a record after it, with the same key, is handled too
        # (dead-lettered for a reason of its own), not stuck behind the deep one.
        produce(broker, topic, key, b"not json")
        reader.until(lambda _: len(letters()) >= 2, 60)
    deep, after = letters()
    assert deep.topic == topic
    assert f"the event nests arrays and objects deeper than the limit of {MAX_DEPTH}" in (
        deep.reason
    )
    assert after.value == b"not json"


def test_a_definition_over_the_size_or_node_limit_is_refused_naming_it(
    shared_worker: WorkerProcess,
) -> None:
    big = json.loads(chain_text("big"))
    big["description"] = "x" * (1024 * 1024)
    assert_refused(shared_worker.api.deploy(json.dumps(big)), 413, "over the limit of 1048576")
    nodes = [{"id": f"n{i}", "type": "end"} for i in range(1001)]
    many = json.dumps({"id": "many", "nodes": nodes, "edges": []})
    assert_refused(shared_worker.api.deploy(many), 422, "1001 nodes, over the limit of 1000")
