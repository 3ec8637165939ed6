"""A department cap across a SIGKILL: 50 starts under a cap of 5, the worker killed after
about 15 have completed and a new one started on the same state: all 50 finish, each once,
and never more than 5 run at once (counted by the real HTTP server their http nodes call)."""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from collections.abc import Callable

from background_loop import BackgroundLoop
from in_flight_server import capped, holding_workflow, serve_in_flight
from suite_broker import SuiteBroker
from topic_records import TopicReader, TopicRecord
from workers import WorkerProcess

from braidflow.schemas import decode_event

CAP = 5
STARTS = 50
KILL_AFTER = 15
FINISH_TIMEOUT_S = 180.0
ENDS = ("workflow.completed", "workflow.failed", "workflow.cancelled")


def test_a_capped_department_killed_mid_queue_finishes_every_execution_once_within_its_cap(
    broker: SuiteBroker,
    prefix: str,
    background_loop: BackgroundLoop,
    start_worker: Callable[..., WorkerProcess],
    workers: list[WorkerProcess],
) -> None:
    counts, url, runner = serve_in_flight(background_loop, hold_s=0.3)
    try:
        # Same prefix (the same groups and changelogs) and the same local state.
        first = start_worker("first").wait_ready()
        department, workflow = f"capped{uuid.uuid4().hex[:8]}", "hold"
        assert first.api.deploy(capped(department, CAP)).status == 201
        assert first.api.deploy(holding_workflow(workflow, department, url)).status == 201
        ids = [first.api.start(workflow, {}) for _ in range(STARTS)]

        deadline = time.monotonic() + 60
        while len(counts.answered) < KILL_AFTER:
            if time.monotonic() > deadline:
                first.fail(f"only {len(counts.answered)} requests answered in 60 s")
            time.sleep(0.02)
        answered_at_kill = len(counts.answered)
        first.kill()

        second = start_worker("second").wait_ready()
        finished = second.wait_until_finished(ids, FINISH_TIMEOUT_S)
        statuses = {e: v["status"] for e, v in finished.items()}
        assert statuses == dict.fromkeys(ids, "completed"), statuses
        assert counts.most <= CAP, f"{counts.most} executions held at once"
        # One request per execution (its node's first attempt): none lost, none added.
        assert len(counts.answered) == STARTS, sorted(counts.answered)

        def every_execution_ended(records: list[TopicRecord]) -> bool:
            events = map(decode_event, (r.value for r in records))
            return {e.execution_id for e in events if e.type in ENDS} >= set(ids)

        with TopicReader(broker, f"{prefix}.lifecycle") as reader:
            reader.until(every_execution_ended)
            events = [decode_event(r.value) for r in reader.read_to_end()]
        ended: dict[str, set[str]] = defaultdict(set)
        for event in events:
            if event.type in ENDS:
                ended[event.execution_id].add(event.id)
        # A resent event keeps its id; an execution ending twice would not.
        assert {e: len(v) for e, v in ended.items()} == dict.fromkeys(ids, 1)
        assert answered_at_kill < STARTS, "the kill came after the last request"
        print(
            f"{answered_at_kill}/{STARTS} answered at the kill; at most {counts.most} held at"
            f" once; {sum(counts.answered.values()) - STARTS} requests sent again"
        )
    finally:
        # Before the server their http nodes call goes away.
        for started in workers:
            started.stop()
        background_loop.run(runner.cleanup())
