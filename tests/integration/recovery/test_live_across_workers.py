"""Streams and waits across two workers: every worker keeps every execution's lifecycle, so
the worker that does not own an execution serves its stream and its `?wait=` too.

Each execution is read through both workers at once, so whichever owns it, one of the two
reads is through the worker that does not."""

from __future__ import annotations

import concurrent.futures

from live_streams import read_stream
from workers import WorkerApi, WorkerProcess

SLOW = """
id: live-pair
nodes:
  - {id: work, type: task, params: {handler: test.slow, input: {value: 7, seconds: 1}}}
  - {id: done, type: end, params: {output: {value: "${nodes.work.output.value}"}}}
edges:
  - {from: work, to: done}
"""
EXECUTIONS = 4


def test_each_worker_serves_the_stream_and_the_wait_of_every_execution(
    pair: list[WorkerProcess],
) -> None:
    first, second = pair
    assert first.api.deploy(SLOW).status == 201
    execution_ids = [first.api.start("live-pair", {}) for _ in range(EXECUTIONS)]
    apis: list[WorkerApi] = [first.api, second.api]
    with concurrent.futures.ThreadPoolExecutor(4 * EXECUTIONS) as pool:
        streams = {
            (e, n): pool.submit(read_stream, api, f"/executions/{e}/events")
            for e in execution_ids
            for n, api in enumerate(apis)
        }
        waits = {
            (e, n): pool.submit(api.get, f"/executions/{e}?wait=60s")
            for e in execution_ids
            for n, api in enumerate(apis)
        }
        for key, future in streams.items():
            read = future.result()
            assert (read.status, read.ended) == (200, True), (key, read)
            assert read.types[-1] == "workflow.completed", (key, read.types)
            node_types = [e.type for e in read.events if e.data.get("node_id") == "work"]
            assert node_types[:1] == ["node.started"] and "node.completed" in node_types, key
        for key, future in waits.items():
            reply = future.result()
            assert reply.status == 200, (key, reply)
            assert (reply.body["status"], reply.body["output"]) == ("completed", {"value": 7})
