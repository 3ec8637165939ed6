"""Transitions a worker sends to its own partitions are handed to its orchestrator once
acknowledged (streams/transitions_reader.py), and still applied once each."""

from __future__ import annotations

import re
from collections import Counter

from topic_records import TopicReader
from workers import WorkerApi, WorkerProcess

from braidflow.schemas import decode_event, decode_transition

CHAIN = """
id: handed-over-chain
nodes:
  - {id: first, type: task, params: {handler: test.echo, input: {n: 1}}}
  - {id: second, type: task, params: {handler: test.echo, input: {n: 2}}}
  - {id: done, type: end, params: {output: {n: "${nodes.second.output.n}"}}}
edges:
  - {from: first, to: second}
  - {from: second, to: done}
"""


def handed_over(api: WorkerApi) -> int:
    """braidflow_transitions_handed_over_total of the worker behind `api` (0: none)."""
    body = api.get("/metrics").body
    found = re.search(r"^braidflow_transitions_handed_over_total (\S+)$", body, re.M)
    return int(float(found.group(1))) if found else 0


def test_a_chain_s_own_transitions_are_handed_over_and_each_applied_once(
    shared_worker: WorkerProcess,
) -> None:
    worker = shared_worker
    assert worker.api.deploy(CHAIN).status == 201
    # Once a task has run, the executor holds its partitions (one worker: all of them).
    warm = worker.api.start("handed-over-chain", {})
    assert worker.wait_until_finished([warm])[warm]["status"] == "completed"
    before = handed_over(worker.api)

    ids = [worker.api.start("handed-over-chain", {}) for _ in range(3)]
    executions = worker.wait_until_finished(ids)
    for execution in executions.values():
        assert execution["status"] == "completed", execution
        assert execution["output"] == {"n": 2}
    # The two results of three executions: most if not all of them
    # (one the fetch brings back before its acknowledgement is seen is read as before).
    assert handed_over(worker.api) > before

    with TopicReader(worker.broker, f"{worker.prefix}.lifecycle") as reader:
        reader.until(
            lambda records: (
                sum(
                    decode_event(r.value).type == "workflow.completed"
                    and decode_event(r.value).execution_id in ids
                    for r in records
                )
                == len(ids)
            )
        )
        events = [decode_event(r.value) for r in reader.read_to_end()]
    # A transition applied twice would complete its node twice (a resent event keeps its id).
    completed = Counter(
        (e.execution_id, e.node_id)
        for e in {e.id: e for e in events if e.type == "node.completed"}.values()
        if e.execution_id in ids
    )
    assert completed == {(i, n): 1 for i in ids for n in ("first", "second", "done")}
    ended = Counter(
        e.execution_id
        for e in {e.id: e for e in events if e.type == "workflow.completed"}.values()
        if e.execution_id in ids
    )
    assert ended == dict.fromkeys(ids, 1)
    with TopicReader(worker.broker, f"{worker.prefix}.transitions") as reader:
        # Only these executions' records: other tests on the shared worker send records
        # that are not transitions at all (poison records).
        keys = {i.encode() for i in ids}
        sent = Counter(
            decode_transition(r.value).execution_id
            for r in reader.read_to_end()
            if r.key in keys and r.value is not None
        )
    # Every step is still a record of the topic: the start and two results (the end runs in
    # the second result's step).
    assert {i: sent[i] for i in ids} == {i: 3 for i in ids}
