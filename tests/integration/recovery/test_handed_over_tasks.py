"""Tasks handed over in their own worker (no tasks-topic hop) survive a SIGKILL of that worker:
the task runs again, and its result is applied once."""

from __future__ import annotations

import contextlib
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

from suite_broker import SuiteBroker
from topic_records import TopicReader
from workers import TASK_HANDLERS, WorkerApi, WorkerProcess

from braidflow.client_cli import ApiUnreachable
from braidflow.engine import NodeCompleted
from braidflow.schemas import decode_event, decode_transition

HANDLERS = (TASK_HANDLERS, Path(__file__).parent.parent / "hand_over_handlers.py")

WARM = """
id: hand-over-warm
nodes:
  - {id: only, type: task, params: {handler: test.echo, input: {warm: true}}}
  - {id: done, type: end}
edges:
  - {from: only, to: done}
"""

# `second` kills the worker on its first run: at its own hand-over, and just after the
# result of `first` (handed over too) was delivered, before its record can be committed.
KILLED = """
id: hand-over-killed
input:
  type: object
  required: [runs]
  properties:
    runs: {type: string}
nodes:
  - {id: first, type: task, params: {handler: test.echo, input: {n: 1}}}
  - {id: second, type: task, params: {handler: test.kill_once, input: {runs: "${input.runs}"}}}
  - {id: done, type: end, params: {output: {first: "${nodes.first.output.n}"}}}
edges:
  - {from: first, to: second}
  - {from: second, to: done}
"""
TIMEOUT_S = 90.0


def handed_over(api: WorkerApi) -> int:
    """braidflow_tasks_handed_over_total of the worker behind `api` (0 when it has none)."""
    found = re.search(r"^braidflow_tasks_handed_over_total (\S+)$", api.get("/metrics").body, re.M)
    return int(float(found.group(1))) if found else 0


def test_a_task_handed_over_in_a_worker_killed_there_runs_again_and_applies_once(
    broker: SuiteBroker, prefix: str, tmp_path: Path, start_worker: Callable[..., WorkerProcess]
) -> None:
    # Same prefix and the same local state: the second carries on from the first.
    first = start_worker("first", handlers=HANDLERS).wait_ready()
    for text in (WARM, KILLED):
        assert first.api.deploy(text).status == 201
    # Once a task has run, the executor holds its partitions (one worker: all of them).
    warm = first.api.start("hand-over-warm", {})
    assert first.wait_until_finished([warm])[warm]["status"] == "completed"
    before = handed_over(first.api)

    runs = tmp_path / "runs"
    # Its 202 may never come: the start, handed over at its acknowledgement, reaches the
    # task that kills the worker within milliseconds. The task names the execution.
    with contextlib.suppress(ApiUnreachable):
        first.api.start("hand-over-killed", {"runs": str(runs)})
    deadline = time.monotonic() + 30
    while first.alive:
        if time.monotonic() > deadline:
            first.fail("the task did not kill its worker in 30s")
        time.sleep(0.05)
    broker.settle_changelogs(prefix)
    killed_pid, handed_then, execution_id = runs.read_text().splitlines()[0].split()
    # `first` and `second` were handed over, not read from the tasks topic.
    assert int(handed_then) == before + 2

    second = start_worker("second", handlers=HANDLERS).wait_ready()
    execution = second.wait_until_finished([execution_id], TIMEOUT_S)[execution_id]
    assert execution["status"] == "completed", execution
    assert execution["output"] == {"first": 1}
    node_runs = {(r["node_id"], r["status"], r["attempt"]) for r in execution["nodes"]}
    assert node_runs == {(n, "completed", 1) for n in ("first", "second", "done")}
    reruns = [line.split()[0] for line in runs.read_text().splitlines()[1:]]
    assert reruns and killed_pid not in reruns, "second ran again, in the second worker"

    with TopicReader(broker, f"{prefix}.lifecycle") as reader:
        reader.until(
            lambda records: any(
                decode_event(r.value).type == "workflow.completed"
                and decode_event(r.value).execution_id == execution_id
                for r in records
            )
        )
        events = [decode_event(r.value) for r in reader.read_to_end()]
    completed: dict[str, set[str]] = defaultdict(set)
    for event in events:
        if event.execution_id == execution_id and event.type == "node.completed":
            completed[event.node_id or ""].add(event.id)
    # A resent event keeps its id; a result applied twice would complete its node twice.
    assert {node: len(ids) for node, ids in completed.items()} == {
        "first": 1,
        "second": 1,
        "done": 1,
    }
    ended = {
        e.id
        for e in events
        if e.execution_id == execution_id
        and e.type in ("workflow.completed", "workflow.failed", "workflow.cancelled")
    }
    assert len(ended) == 1, ended

    # What the crash cost, shown with -s: results reported more than once (run again).
    with TopicReader(broker, f"{prefix}.transitions") as reader:
        reported = Counter(
            t.node_id
            for t in map(decode_transition, (r.value for r in reader.read_to_end()))
            if isinstance(t, NodeCompleted) and t.execution_id == execution_id
        )
    print(f"results reported: {dict(reported)}; runs of second: {len(reruns) + 1}")
