"""Several workers on one broker share the executions, 300 fan-outs at once: every execution
completes and every transition is applied once, with four workers, and with two of which one is
killed with SIGKILL mid-way (the survivor takes over the dead one's partitions).

On the embedded broker the kill stalled 12 to 92 executions in 8 of 28 runs before Faust's seek
was fixed (streams/app.py `_patch_perform_seek`): a `NodeCompleted` on the transitions topic
that the survivor never applied.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor

from aiokafka.partitioner import murmur2
from fan_ins import fan_in
from suite_broker import SuiteBroker
from topic_records import TopicReader, TopicRecord
from waiting import until
from workers import WorkerProcess, describe

from braidflow.engine import LifecycleEvent
from braidflow.schemas import decode_event, decode_transition

FAN_OUT = fan_in(
    "shared-fan-out",
    {
        "a": '{handler: test.echo, input: {n: "${input.n}"}}',
        "b": '{handler: test.echo, input: {n: "${input.n * 2}"}}',
        "c": '{handler: test.echo, input: {n: "${input.n * 3}"}}',
    },
    {
        "done": "type: end, params: {output: {total: "
        '"${nodes.both.output.a.n + nodes.both.output.b.n + nodes.both.output.c.n}"}}'
    },
)
NODES = {"split", "a", "b", "c", "both", "done"}
EXECUTIONS = 300
ENDED = ("workflow.completed", "workflow.failed", "workflow.cancelled")
FINISH_TIMEOUT_S = 45.0


def partition_of(execution_id: str, partitions: int = 4) -> int:
    """The transitions partition of an execution (Kafka's default partitioner, as a worker's)."""
    return (murmur2(execution_id.encode()) & 0x7FFFFFFF) % partitions


def lifecycle(records: list[TopicRecord]) -> list[LifecycleEvent]:
    return [decode_event(r.value) for r in records if r.value is not None]


def deployed_everywhere(workers: list[WorkerProcess]) -> None:
    """Deploy the fan-out through the first worker; return once every worker runs it."""
    assert workers[0].api.deploy(FAN_OUT).status == 201
    for worker in workers:
        until(lambda w=worker: w.api.get("/workflows/shared-fan-out").status == 200, "the deploy")
        worker.wait_until_finished([worker.api.start("shared-fan-out", {"n": 0})], 30)


def started(workers: list[WorkerProcess]) -> dict[str, int]:
    """Start the executions through the workers in turn, eight requests at a time; n by id."""
    with ThreadPoolExecutor(8) as pool:
        ids = pool.map(
            lambda n: workers[n % len(workers)].api.start("shared-fan-out", {"n": n}),
            range(EXECUTIONS),
        )
        return dict(zip(ids, range(EXECUTIONS), strict=True))


def ended(records: list[TopicRecord], ids: dict[str, int]) -> set[str]:
    return {e.execution_id for e in lifecycle(records) if e.type in ENDED} & set(ids)


def fan_outs_ended(records: list[TopicRecord]) -> set[str]:
    return {
        e.execution_id
        for e in lifecycle(records)
        if e.type in ENDED and e.workflow_id == "shared-fan-out"
    }


def wait_until_all_ended(
    reader: TopicReader, ids: dict[str, int], workers: list[WorkerProcess]
) -> list[LifecycleEvent]:
    """Every lifecycle event, once every execution has ended; else fail naming the stalled
    ones by transitions partition, with a few of their views and the workers' logs."""
    try:
        reader.until(lambda records: ended(records, ids) >= set(ids), FINISH_TIMEOUT_S)
    except TimeoutError:
        stalled = sorted(set(ids) - ended(reader.records, ids), key=partition_of)
        live = next(w for w in workers if w.alive)
        views = {e: live.api.execution(e).body for e in stalled[:5]}
        raise AssertionError(
            f"{len(stalled)} of {EXECUTIONS} executions stalled (by transitions partition:"
            f" {dict(Counter(map(partition_of, stalled)))}); e.g. {views}\n{describe(workers)}"
        ) from None
    return lifecycle(reader.read_to_end())


def assert_each_applied_once(
    events: list[LifecycleEvent], ids: dict[str, int], worker: WorkerProcess
) -> None:
    """Every node of every execution completed once, every execution ended once, right."""
    # Resending an event after a crash is allowed (same id); applying a node twice is not.
    completed: dict[tuple[str, str], set[str]] = defaultdict(set)
    finished: dict[str, set[str]] = defaultdict(set)
    for event in events:
        if event.execution_id not in ids:
            continue
        assert event.type != "node.failed", event
        if event.type == "node.completed":
            completed[(event.execution_id, event.node_id)].add(event.id)
        elif event.type in ENDED:
            finished[event.execution_id].add(event.id)
    assert set(completed) == {(e, node) for e in ids for node in NODES}
    twice = {k: v for k, v in completed.items() if len(v) != 1}
    assert not twice, twice
    assert {e: len(v) for e, v in finished.items()} == dict.fromkeys(ids, 1)
    views = {e: worker.api.execution(e).body for e in ids}
    wrong = {
        e: (v["status"], v["output"])
        for e, v in views.items()
        if (v["status"], v["output"]) != ("completed", {"total": 6 * ids[e]})
    }
    assert not wrong, wrong


def test_two_workers_one_killed_mid_fan_out_lose_nothing_and_apply_nothing_twice(
    pair: list[WorkerProcess], broker: SuiteBroker, prefix: str
) -> None:
    killed, survivor = pair
    deployed_everywhere(pair)
    with TopicReader(broker, f"{prefix}.lifecycle") as reader, ThreadPoolExecutor(1) as posting:
        # Posted while the reader watches, so the kill lands mid-run however fast the
        # executions end; through the survivor, whose API outlives the kill. The
        # executions still run on both workers' partitions.
        posted = posting.submit(started, [survivor])
        # Killed with most in flight: a tenth ended (besides each worker's first).
        reader.until(lambda records: len(fan_outs_ended(records)) >= EXECUTIONS // 10 + 2)
        at_kill = list(reader.records)
        killed.kill(settle=False)
        ids = posted.result()
        ended_before_kill = ended(at_kill, ids)
        events = wait_until_all_ended(reader, ids, pair)
    assert len(ended_before_kill) < EXECUTIONS // 2, "the kill came after most had ended"
    assert_each_applied_once(events, ids, survivor)
    print(f"{len(ended_before_kill)}/{EXECUTIONS} ended before the kill")


def test_four_workers_share_the_fan_outs_and_apply_each_transition_once(
    four: list[WorkerProcess], broker: SuiteBroker, prefix: str
) -> None:
    deployed_everywhere(four)
    ids = started(four)
    with TopicReader(broker, f"{prefix}.lifecycle") as reader:
        events = wait_until_all_ended(reader, ids, four)
    assert_each_applied_once(events, ids, four[0])
    with TopicReader(broker, f"{prefix}.transitions") as reader:
        transitions = {decode_transition(r.value).id for r in reader.read_to_end()}
    # One transitions partition each (4 in the suite): each applies its share, and together
    # each transition on the topic exactly once.
    shares = [w.applied_transitions() for w in four]
    print(f"transitions applied by each worker: {shares} of {len(transitions)}")
    assert all(shares), shares
    assert sum(shares) == len(transitions), (shares, len(transitions))
