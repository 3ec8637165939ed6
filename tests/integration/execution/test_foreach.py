"""The foreach node on the real broker: inline tasks, sub-workflow items, failures, and 10,000 items."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from suite_broker import SuiteBroker
from workers import WorkerProcess


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:6]}"


def deploy(worker: WorkerProcess, text: str) -> None:
    reply = worker.api.deploy(text)
    assert reply.status == 201, reply


def run(worker: WorkerProcess, text: str, input_: Any, timeout_s: float = 30.0) -> dict[str, Any]:
    workflow = unique("each")
    deploy(worker, text.format(id=workflow))
    execution = worker.api.start(workflow, input_)
    return worker.wait_until_finished([execution], timeout_s)[execution]


def items_of(worker: WorkerProcess, execution: str) -> dict[str, Any] | None:
    """The `items` progress of node `each` while it runs; None before it starts and after."""
    reply = worker.api.execution(execution)
    nodes = reply.body["nodes"] if reply.status == 200 else []
    return next((n["items"] for n in nodes if n["node_id"] == "each"), None)


INLINE = """
id: {id}
nodes:
  - id: each
    type: foreach
    params:
      items: "${{input.names}}"
      concurrency: 3
      do: {{type: task, params: {{handler: test.echo, input: {{name: "${{item}}", at: "${{index}}"}}}}}}
  - {{id: done, type: end, params: {{output: {{all: "${{nodes.each.output}}"}}}}}}
edges:
  - {{from: each, to: done}}
"""


def test_inline_task_items_come_back_in_item_order(shared_worker: WorkerProcess) -> None:
    names = [f"n{i}" for i in range(25)]
    view = run(shared_worker, INLINE, {"names": names})
    assert view["status"] == "completed", view
    assert view["output"]["all"] == [{"name": n, "at": i} for i, n in enumerate(names)]


def test_an_empty_list_completes_with_no_results(shared_worker: WorkerProcess) -> None:
    view = run(shared_worker, INLINE, {"names": []})
    assert view["status"] == "completed" and view["output"] == {"all": []}


FAILING = """
id: {id}
nodes:
  - id: each
    type: foreach
    params:
      items: "${{input.values}}"
      continue_on_error: {keep_going}
      do: {{type: task, params: {{handler: "${{item.handler}}", input: "${{item.value}}"}}}}
  - {{id: done, type: end, params: {{output: {{all: "${{nodes.each.output}}"}}}}}}
edges:
  - {{from: each, to: done}}
"""
# Handlers are not templates: the inline node names one handler for every item.
FAILING_EVERY_OTHER = FAILING.replace('"${{item.handler}}"', "test.strict").replace(
    '"${{item.value}}"', '{{fixed: "${{item.fixed}}"}}'
)


def test_continue_on_error_collects_errors_beside_results(shared_worker: WorkerProcess) -> None:
    items = [{"fixed": i % 2 == 0} for i in range(6)]
    view = run(
        shared_worker, FAILING_EVERY_OTHER.replace("{keep_going}", "true"), {"values": items}
    )
    assert view["status"] == "completed", view
    output = view["output"]["all"]
    assert output["results"] == [
        {"fixed": True},
        None,
        {"fixed": True},
        None,
        {"fixed": True},
        None,
    ]
    assert [(e["index"], e["type"]) for e in output["errors"]] == [
        (1, "ValueError"),
        (3, "ValueError"),
        (5, "ValueError"),
    ]


def test_a_failing_item_fails_the_node_and_names_the_item(shared_worker: WorkerProcess) -> None:
    items = [{"fixed": True}, {"fixed": True}, {"fixed": False}, {"fixed": True}]
    view = run(
        shared_worker, FAILING_EVERY_OTHER.replace("{keep_going}", "false"), {"values": items}
    )
    assert view["status"] == "failed", view
    assert view["error"]["type"] == "ValueError"
    assert view["error"]["message"].startswith("item 2: ")
    [each] = [n for n in view["nodes"] if n["node_id"] == "each"]
    assert each["status"] == "failed" and each["items"] is None


CHILD = """
id: {id}
nodes:
  - {{id: done, type: end, params: {{output: {{square: "${{input.n * input.n}}", tag: "${{parent.input.tag}}"}}}}}}
edges: []
"""
PARENT = """
id: {{id}}
nodes:
  - id: each
    type: foreach
    params: {{{{items: "${{{{input.numbers}}}}", do: {child}, input: {{{{n: "${{{{item}}}}"}}}}, concurrency: 2}}}}
  - {{{{id: done, type: end, params: {{{{output: {{{{all: "${{{{nodes.each.output}}}}"}}}}}}}}}}}}
edges:
  - {{{{from: each, to: done}}}}
"""


def test_workflow_items_run_as_child_executions(shared_worker: WorkerProcess) -> None:
    child = unique("square")
    deploy(shared_worker, CHILD.format(id=child))
    view = run(shared_worker, PARENT.format(child=child), {"numbers": [1, 2, 3, 4, 5], "tag": "t"})
    assert view["status"] == "completed", view
    assert view["output"]["all"] == [{"square": n * n, "tag": "t"} for n in range(1, 6)]
    first_child = shared_worker.api.execution(f"{view['execution_id']}.each[0]")
    assert first_child.status == 200
    assert first_child.body["parent"]["item"] == 0


SLOW = """
id: {id}
nodes:
  - id: each
    type: foreach
    params:
      items: "${{input.values}}"
      concurrency: 2
      do: {{type: task, params: {{handler: test.slow, input: {{value: "${{item}}", seconds: 0.5}}}}}}
  - {{id: done, type: end, params: {{output: {{all: "${{nodes.each.output}}"}}}}}}
edges:
  - {{from: each, to: done}}
"""


def test_items_in_flight_are_shown_and_a_cancel_stops_the_node(
    shared_worker: WorkerProcess,
) -> None:
    workflow = unique("slow-each")
    deploy(shared_worker, SLOW.format(id=workflow))
    execution = shared_worker.api.start(workflow, {"values": list(range(40))})
    deadline = time.monotonic() + 30
    items = None
    while time.monotonic() < deadline and not (items and items["done"] >= 2):
        items = items_of(shared_worker, execution)
        time.sleep(0.1)
    assert items is not None and items["total"] == 40 and items["running"] <= 2, items
    cancelled = shared_worker.api.post_json(f"/executions/{execution}/cancel", {})
    assert cancelled.status in (200, 202), cancelled
    view = shared_worker.wait_until_finished([execution])[execution]
    assert view["status"] == "cancelled"


TEN_THOUSAND = """
id: {id}
nodes:
  - {{id: numbers, type: task, params: {{handler: test.records, input: {{n: 10000, width: 45}}}}}}
  - id: each
    type: foreach
    params:
      items: "${{nodes.numbers.output}}"
      concurrency: 200
      do: {{type: task, params: {{handler: test.echo, input: "${{item.n}}"}}}}
  - {{id: done, type: end, params: {{output: {{count: "${{size(nodes.each.output)}}"}}}}}}
edges:
  - {{from: numbers, to: each}}
  - {{from: each, to: done}}
"""


def test_ten_thousand_items_complete_with_their_list_kept_beside_the_state(
    shared_worker: WorkerProcess,
) -> None:
    # The list is about 450 KB, held as the task's output and as the foreach's input: twice
    # over, it would not fit a state row, and each step would write it again.
    view = run(shared_worker, TEN_THOUSAND, {}, timeout_s=300)
    assert view["status"] == "completed", view
    assert view["output"] == {"count": 10000}
    each = next(n for n in view["nodes"] if n["node_id"] == "each")
    assert each["output"] == list(range(10000))
    numbers = next(n for n in view["nodes"] if n["node_id"] == "numbers")
    assert len(numbers["output"]) == 10000 and numbers["output"][9999]["n"] == 9999


MANY = """
id: {id}
nodes:
  - id: each
    type: foreach
    params:
      items: "${{input.values}}"
      concurrency: 20
      do: {{type: task, params: {{handler: test.slow, input: {{value: "${{item.v}}", seconds: 0.01}}}}}}
  - {{id: done, type: end, params: {{output: {{all: "${{nodes.each.output}}"}}}}}}
edges:
  - {{from: each, to: done}}
"""


def test_a_foreach_killed_mid_way_finishes_with_every_result_in_order(
    broker: SuiteBroker, prefix: str, tmp_path: Path
) -> None:
    def worker_process() -> WorkerProcess:
        return WorkerProcess(
            broker,
            prefix,
            tmp_path / "data",
            tmp_path / "worker.log",
        )

    count = 2000
    first = worker_process().start().wait_ready()
    try:
        deploy(first, MANY.format(id="many"))
        # About 60 KB: the list is a row beside the state, which the restart must find too.
        values = [{"v": i, "pad": "x" * 20} for i in range(count)]
        execution = first.api.start("many", {"values": values})
        deadline = time.monotonic() + 60
        done = 0
        # Past a few chunks, so that the restart must find flushed chunks and pending results.
        while done < 450 and time.monotonic() < deadline:
            items = items_of(first, execution)
            done = items["done"] if items else done
            time.sleep(0.05)
        assert 450 <= done < count, done
        first.kill()
    finally:
        first.stop()
    second = worker_process().start().wait_ready()
    try:
        view = second.wait_until_finished([execution], 180)[execution]
    finally:
        second.stop()
    assert view["status"] == "completed", view
    assert [r["value"] for r in view["output"]["all"]] == list(range(count))
