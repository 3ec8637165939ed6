"""Two workers sharing the partitions of the stats: each holds the figures of some workflows,
and either one answers for every workflow, forwarding the query to the worker that holds it."""

from __future__ import annotations

import time
import uuid

from waiting import until
from workers import WorkerProcess

from braidflow.connectors.api import FORWARDED_HEADER

WORKFLOWS = 8


def echo(workflow_id: str) -> str:
    return f"""
id: {workflow_id}
nodes:
  - {{id: work, type: task, params: {{handler: test.echo, input: {{n: 1}}}}}}
  - {{id: done, type: end}}
edges:
  - {{from: work, to: done}}
"""


def test_either_worker_answers_for_the_stats_of_every_workflow(pair: list[WorkerProcess]) -> None:
    first, second = pair
    workflows = [f"stats{n}-{uuid.uuid4().hex[:6]}" for n in range(WORKFLOWS)]
    for workflow in workflows:
        assert first.api.deploy(echo(workflow)).status == 201
    deadline = time.monotonic() + 10
    while second.api.get(f"/workflows/{workflows[-1]}").status != 200:
        if time.monotonic() > deadline:
            second.fail("never saw the workflows deployed through the first worker")
        time.sleep(0.05)
    started = [pair[n % 2].api.start(w, {}) for n, w in enumerate(workflows * 2)]
    finished = first.wait_until_finished(started, 60)
    assert {v["status"] for v in finished.values()} == {"completed"}, finished

    for workflow in workflows:
        path = f"/stats?workflow={workflow}&window=1h"
        answers = until(
            lambda path=path: (
                (found := [w.api.get(path) for w in pair])
                and all(sum(b["completed"] for b in r.body["buckets"]) == 2 for r in found)
                and found
            ),
            what=f"both workers counting the two executions of {workflow}",
        )
        assert answers[0].body == answers[1].body, answers

    def held() -> dict[str, list[int]]:
        # Asked not to forward, only the worker holding the workflow's figures has them.
        holders: dict[str, list[int]] = {}
        for workflow in workflows:
            path = f"/stats?workflow={workflow}&window=1h"
            local = [w.api.request("GET", path, headers={FORWARDED_HEADER: "1"}) for w in pair]
            holders[workflow] = [i for i, reply in enumerate(local) if reply.body["buckets"]]
        return holders

    # A worker that missed its heartbeats under load holds nothing until the group settles:
    # then each workflow's figures are on one worker, and both workers hold some (so some
    # of the answers above were forwarded).
    until(
        lambda: (
            (holders := held())
            and all(len(h) == 1 for h in holders.values())
            and {h[0] for h in holders.values()} == {0, 1}
        ),
        what="each workflow's figures held by one worker, and both workers holding some",
    )
