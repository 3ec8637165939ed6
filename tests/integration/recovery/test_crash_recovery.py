"""A worker killed with SIGKILL mid-stream: a new one on the same state finishes every execution,
and no node completes twice."""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable

from fan_ins import fan_in
from suite_broker import SuiteBroker
from topic_records import TopicReader, TopicRecord
from workers import WorkerProcess

from braidflow.engine import NodeCompleted
from braidflow.schemas import decode_event, decode_transition

FAN_IN = fan_in(
    "crash-fan-in",
    {
        "left": '{handler: test.slow, input: {value: "${input.n}"}}',
        "right": '{handler: test.slow, input: {value: "${input.n * 10}"}}',
    },
    {
        "last": "type: task, params: {handler: test.slow, input: {value: "
        '"${nodes.both.output.left.value + nodes.both.output.right.value}"}}',
        "done": 'type: end, params: {output: {n: "${input.n}", total: "${nodes.last.output.value}"}}',
    },
)
NODES = {"split", "left", "right", "both", "last", "done"}
EXECUTIONS = 50
RECOVERY_TIMEOUT_S = 90.0


def test_a_worker_killed_mid_stream_loses_nothing_and_repeats_nothing(
    broker: SuiteBroker, prefix: str, start_worker: Callable[..., WorkerProcess]
) -> None:
    # Same prefix (so the same groups and changelogs) and the same local state.
    first = start_worker("first").wait_ready()
    assert first.api.deploy(FAN_IN).status == 201
    ids = {first.api.start("crash-fan-in", {"n": n}): n for n in range(1, EXECUTIONS + 1)}
    earliest = list(ids)[:3]

    # Kill once the first executions are through: some done, most in flight.
    deadline = time.monotonic() + 30
    while not any(first.api.execution(e).body.get("status") == "completed" for e in earliest):
        if time.monotonic() > deadline:
            first.fail("no execution completed in 30s")
        time.sleep(0.05)
    killed_at_ms = int(time.time() * 1000)
    first.kill()

    second = start_worker("second").wait_ready()
    finished = second.wait_until_finished(ids, RECOVERY_TIMEOUT_S)

    problems = []
    for execution_id, n in ids.items():
        execution = finished[execution_id]
        if execution["status"] != "completed":
            problems.append(f"{execution_id}: {execution['status']} {execution['error']}")
            continue
        if execution["output"] != {"n": n, "total": 11 * n}:
            problems.append(f"{execution_id}: output {execution['output']}")
        runs = {(r["node_id"], r["status"], r["attempt"]) for r in execution["nodes"]}
        if runs != {(node, "completed", 1) for node in NODES}:
            problems.append(f"{execution_id}: node runs {sorted(runs)}")
    assert not problems, "\n".join(problems)

    def every_execution_ended(records: list[TopicRecord]) -> bool:
        ended = {
            e.execution_id
            for e in map(decode_event, (r.value for r in records))
            if e.type == "workflow.completed"
        }
        return ended >= set(ids)

    with TopicReader(broker, f"{prefix}.lifecycle") as reader:
        # Up to the last execution's end, then whatever else is there (resends).
        reader.until(every_execution_ended)
        events = [decode_event(r.value) for r in reader.read_to_end()]
    completed_ids: dict[tuple[str, str], set[str]] = defaultdict(set)
    finished_ids: dict[str, set[str]] = defaultdict(set)
    finished_after_kill = set()
    for event in events:
        if event.type == "node.completed":
            completed_ids[(event.execution_id, event.node_id)].add(event.id)
        elif event.type in ("workflow.completed", "workflow.failed", "workflow.cancelled"):
            finished_ids[event.execution_id].add(event.id)
            if event.at > killed_at_ms:
                finished_after_kill.add(event.execution_id)
    assert not [e for e in events if e.type == "node.failed"]
    # Resending an event after the crash is allowed (same id); completing a node twice is not.
    twice = {k: v for k, v in completed_ids.items() if len(v) != 1}
    assert not twice, twice
    assert set(completed_ids) == {(e, node) for e in ids for node in NODES}
    assert {e: len(v) for e, v in finished_ids.items()} == dict.fromkeys(ids, 1)
    # The crash did hit work in flight: it finished on the second worker (typically 35-40).
    assert len(finished_after_kill) >= EXECUTIONS // 5, (
        f"only {len(finished_after_kill)} executions finished after the kill"
    )

    # What the crash cost, shown with -s or on a failure above: tasks whose result was
    # reported twice (run again), and lifecycle events sent twice (the outbox resending).
    with TopicReader(broker, f"{prefix}.transitions") as reader:
        transitions = [decode_transition(r.value) for r in reader.read_to_end()]
    reported = Counter(t.id for t in transitions if isinstance(t, NodeCompleted))
    print(
        f"{len(finished_after_kill)}/{EXECUTIONS} executions finished after the kill;"
        f" {sum(1 for n in reported.values() if n > 1)} tasks ran again;"
        f" {len(events) - len({e.id for e in events})} lifecycle events resent"
    )


def test_a_worker_restarted_on_its_data_dir_without_settling_recovers_every_row(
    start_worker: Callable[..., WorkerProcess],
) -> None:
    """On the embedded broker, whose ListOffsets under-reports a changelog's end, braidflow
    reads the end from a fetch (streams/changelog_ends.py): without it, the restart stopped
    with Faust's ConsistencyError, or recovered rows short of their last versions."""

    first = start_worker("first").wait_ready()
    assert first.api.deploy(FAN_IN).status == 201
    ids = [first.api.start("crash-fan-in", {"n": n}) for n in range(EXECUTIONS)]
    first.wait_until_finished(ids, RECOVERY_TIMEOUT_S)
    # No settling: changelog partitions end with a batch of several records.
    first.kill(settle=False)

    second = start_worker("second").wait_ready()
    views = {e: second.api.execution(e) for e in ids}
    assert {(v.status, v.body["status"]) for v in views.values()} == {(200, "completed")}, views
    more = second.api.start("crash-fan-in", {"n": 7})
    assert second.wait_until_finished([more], 30)[more]["output"] == {"n": 7, "total": 77}
