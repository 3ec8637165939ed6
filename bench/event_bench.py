"""Event routing figures on a real broker: CloudEvents per second that one worker's router turns
into executions with 1,000 deployed subscriptions (10 matching each event), and the latency from
publishing an event to its `workflow.started` at low load. In the same run: the bare Kafka
produce-consume hop (1, 2 and 3 hops in a row) as the floor, and the router's own work per event
(decode, match, build and encode the starts) in-process, with no Kafka.

The subscriptions: 100 event types `<run>.t00.done` ... `<run>.t99.done` (all on the topic
`events.<run>`, 4 partitions), ten one-node workflows (a single `end`) per type. Eight name
the type exactly; one has the glob `<run>.tNN.*`, one `<run>.tNN.d*`. The 200 globs share
their first segment, so the first event of each type is tried against all of them (the index
remembers the answer per type until the next deployment); there are no globs with a
wildcard in the first segment (those are tried on every lifecycle record the router reads
too). Workflow `<run>-t00-0` also names `<run>.solo`, which nothing else matches: the
1-subscription latency.

Prints figures; never a pass/fail test. Run: `make bench-events` (or
`python bench/event_bench.py [--broker HOST:PORT] [--kafka-config FILE] [--events N]`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from runtime_bench import (
    FETCH_WAIT_MS,
    _percentile,
    add_kafka_options,
    bench_kafka,
    from_the_end,
    start_worker,
    wait_ready,
)

from braidflow.client import EventPublisher
from braidflow.client_cli import Api
from braidflow.connectors.broker import free_port
from braidflow.engine import StartExecution
from braidflow.kafka_connection import KafkaConnection
from braidflow.schemas import decode_event, decode_transition, encode_transition
from braidflow.schemas.cloudevents import (
    CloudEvent,
    from_kafka,
    new_event,
    to_structured,
    topic_for,
)
from braidflow.streams.starts import event_input, execution_id_for
from braidflow.topology import load_workflow
from braidflow.topology.subscriptions import SubscriptionIndex

TYPES = 100
EXACT = 8  # workflows per type that name it exactly
GLOBS = ("*", "d*")  # and one workflow per type for each of these: `<run>.tNN.<glob>`
PER_EVENT = EXACT + len(GLOBS)
SOURCE = "/bench/events"
PARTITIONS = 4
STARTED = b"braidflow.workflow.started"
COMPLETED = b"braidflow.workflow.completed"


def event_type(segment: str, k: int) -> str:
    return f"{segment}.t{k:02d}.done"


def solo_type(segment: str) -> str:
    return f"{segment}.solo"


def subscribers(segment: str, k: int) -> list[str]:
    """The workflows an event of type number `k` starts."""
    return [f"{segment}-t{k:02d}-{j}" for j in range(PER_EVENT)]


def definitions(segment: str) -> list[str]:
    texts = []
    for k in range(TYPES):
        for j, workflow_id in enumerate(subscribers(segment, k)):
            if j < EXACT:
                types = [event_type(segment, k)]
            else:
                types = [f"{segment}.t{k:02d}.{GLOBS[j - EXACT]}"]
            if k == 0 and j == 0:
                types.append(solo_type(segment))
            definition = {
                "id": workflow_id,
                "triggers": [{"event": {"types": types}}],
                "nodes": [{"id": "done", "type": "end"}],
                "edges": [],
            }
            texts.append(json.dumps(definition))
    return texts


def router_work(texts: list[str], segment: str, events: int = 2000) -> dict[str, float]:
    """What the router does per event, in-process: µs to decode, to match, to build the starts.

    The same calls as `EventRouter.route`, minus the catalog lookup and the send. Also checks
    that every event matches exactly its PER_EVENT subscribers.
    """
    index = SubscriptionIndex.build(load_workflow(text) for text in texts)
    records = [
        to_structured(new_event(event_type(segment, i % TYPES), {"n": i}, source=SOURCE))
        for i in range(events)
    ]
    began = time.perf_counter()
    scopes = [from_kafka(headers, value).scope() for headers, value in records]
    decoded = time.perf_counter()
    decode_us = (decoded - began) / events * 1e6
    for scope in scopes[:TYPES]:
        index.match(scope)
    first_match_us = (time.perf_counter() - decoded) / TYPES * 1e6
    # The timed matching starts on an index that has answered no event yet.
    index = SubscriptionIndex.build(load_workflow(text) for text in texts)
    decoded = time.perf_counter()
    matches = [index.match(scope) for scope in scopes]
    matched = time.perf_counter()
    for scope, found in zip(scopes, matches, strict=True):
        for subscription in found:
            execution_id = execution_id_for(scope, subscription.workflow_id)
            encode_transition(
                StartExecution(
                    f"{execution_id}/start",
                    execution_id,
                    int(time.time() * 1000),
                    subscription.workflow_id,
                    1,
                    event_input(scope),
                    scope,
                )
            )
    built = time.perf_counter()
    for i, found in enumerate(matches):
        if [s.workflow_id for s in found] != subscribers(segment, i % TYPES):
            raise RuntimeError(f"event type {i % TYPES} does not match its {PER_EVENT} workflows")
    return {
        "decode_us": decode_us,
        "match_us": (matched - decoded) / events * 1e6,
        "first_match_us": first_match_us,
        "starts_us": (built - matched) / events * 1e6,
    }


async def bare_hops(kafka: KafkaConnection, hops: int = 3, samples: int = 300) -> list[list[float]]:
    """Produce to a topic, consume it, produce to the next, ...: the time after each hop."""
    topics = [f"bench-hop-{uuid.uuid4().hex[:6]}" for _ in range(hops)]
    admin = AIOKafkaAdminClient(**kafka.aiokafka())
    await admin.start()
    await admin.create_topics([NewTopic(topic, 1, 1) for topic in topics])
    await admin.close()
    producer = AIOKafkaProducer(**kafka.aiokafka(), linger_ms=0)
    consumers = [
        AIOKafkaConsumer(topic, **kafka.aiokafka(), fetch_max_wait_ms=FETCH_WAIT_MS)
        for topic in topics
    ]
    await producer.start()
    for consumer in consumers:
        await from_the_end(consumer)
    timings: list[list[float]] = [[] for _ in topics]
    for i in range(samples):
        began = time.perf_counter()
        for topic, consumer, after in zip(topics, consumers, timings, strict=True):
            await producer.send_and_wait(topic, b"x", key=str(i).encode())
            await consumer.getone()
            after.append(time.perf_counter() - began)
    await producer.stop()
    for consumer in consumers:
        await consumer.stop()
    return timings


async def create_events_topic(kafka: KafkaConnection, segment: str) -> None:
    admin = AIOKafkaAdminClient(**kafka.aiokafka())
    await admin.start()
    await admin.create_topics([NewTopic(topic_for(event_type(segment, 0)), PARTITIONS, 1)])
    await admin.close()


def deploy_all(api: str, texts: list[str]) -> float:
    """Deploy one workflow at a time through the API; the seconds it took."""
    began = time.monotonic()
    for text in texts:
        reply = Api.at(api).call("POST", "/workflows", text.encode(), "application/yaml")
        if reply.status != 201:
            raise RuntimeError(f"deploying failed: {reply}")
    return time.monotonic() - began


class Follower:
    """Follows the transitions and lifecycle topics and notes when each awaited execution
    had its first transition (the router's StartExecution), `workflow.started` and
    `workflow.completed`. Records are told apart by key and headers; decoding them waits
    for `check`, out of the timed path.
    """

    def __init__(self, kafka: KafkaConnection, prefix: str) -> None:
        self.awaited: set[bytes] = set()
        self.routed: dict[bytes, tuple[float, bytes]] = {}
        self.started: dict[bytes, tuple[float, bytes]] = {}
        self.completed: dict[bytes, float] = {}
        self.strays = 0  # transitions of executions that no event should have started
        self.changed = asyncio.Event()
        self._transitions = f"{prefix}.transitions"
        self._consumer = AIOKafkaConsumer(
            self._transitions,
            f"{prefix}.lifecycle",
            **kafka.aiokafka(),
            fetch_max_wait_ms=FETCH_WAIT_MS,
            auto_offset_reset="latest",
        )

    async def start(self) -> None:
        await from_the_end(self._consumer)
        self._task = asyncio.create_task(self._follow())

    async def _follow(self) -> None:
        while True:
            batches = await self._consumer.getmany(timeout_ms=1000)
            now = time.perf_counter()
            for partition, records in batches.items():
                for record in records:
                    self._note(partition.topic, record.key, record.value, record.headers, now)
            self.changed.set()

    def _note(
        self,
        topic: str,
        key: bytes,
        value: bytes,
        headers: tuple[tuple[str, bytes], ...],
        now: float,
    ) -> None:
        if key not in self.awaited:
            self.strays += topic == self._transitions
        elif topic == self._transitions:
            self.routed.setdefault(key, (now, value))
        else:
            kind = dict(headers).get("ce_type")
            if kind == STARTED:
                self.started.setdefault(key, (now, value))
            elif kind == COMPLETED:
                self.completed.setdefault(key, now)

    async def wait_until(self, done: Callable[[], bool], timeout_s: float, what: str) -> None:
        deadline = time.monotonic() + timeout_s
        while not done():
            self.changed.clear()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"waited {timeout_s:g} s for {what}")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)

    def seen_through(self, ids: list[bytes]) -> bool:
        """Routed, started and completed all seen: one consumer reads the topics in no set order."""
        return all(i in self.routed and i in self.started and i in self.completed for i in ids)

    async def drained(self, timeout_s: float) -> None:
        """Every awaited execution routed, started and completed."""
        n = len(self.awaited)
        await self.wait_until(lambda: len(self.routed) == n, timeout_s, "StartExecution records")
        await self.wait_until(lambda: len(self.started) == n, timeout_s, "workflow.started")
        await self.wait_until(lambda: len(self.completed) == n, timeout_s, "workflow.completed")

    def check(self, owners: dict[bytes, str]) -> None:
        """Each first transition is the router's StartExecution for the right event, and so on."""
        if self.strays:
            raise RuntimeError(f"{self.strays} transitions of executions no event should start")
        for key, (_, value) in self.routed.items():
            transition = decode_transition(value)
            if not isinstance(transition, StartExecution) or transition.event is None:
                raise RuntimeError(f"the first transition of {key!r} is {transition}")
            if transition.event["id"] != owners[key]:
                raise RuntimeError(f"{key!r} was started by the wrong event")
        for key, (_, value) in self.started.items():
            if decode_event(value).data["event"]["id"] != owners[key]:
                raise RuntimeError(f"workflow.started of {key!r} names the wrong event")

    async def stop(self) -> None:
        self._task.cancel()
        await self._consumer.stop()


async def measure(
    kafka: KafkaConnection, prefix: str, segment: str, events: int
) -> dict[str, float]:
    follower = Follower(kafka, prefix)
    await follower.start()
    # linger 0: an event is sent at once, not up to 5 ms later (the publisher's default).
    publisher = EventPublisher(kafka, source=SOURCE, config={"linger.ms": 0})
    owners: dict[bytes, str] = {}

    def prepare(kind: str, workflows: list[str]) -> tuple[CloudEvent, list[bytes]]:
        """A new event and the executions it must start, awaited from now on."""
        event = new_event(kind, {"bench": True}, source=SOURCE)
        scope = event.scope()
        ids = [execution_id_for(scope, workflow).encode() for workflow in workflows]
        owners.update(dict.fromkeys(ids, event.id))
        follower.awaited.update(ids)
        return event, ids

    # Warm up: connections, the router's group and its subscription index.
    for k in range(20):
        publisher.publish_event(prepare(event_type(segment, k), subscribers(segment, k))[0])
    await asyncio.to_thread(publisher.flush, 30)
    await follower.drained(60)

    async def latencies(kind: str, workflows: list[str]) -> dict[str, list[float]]:
        """One event at a time, each once its executions completed: seconds from publishing."""
        found: dict[str, list[float]] = {"routed": [], "started": [], "all_started": []}
        for _ in range(200):
            event, event_ids = prepare(kind, workflows)
            sent = time.perf_counter()
            publisher.publish_event(event)
            await follower.wait_until(
                lambda event_ids=event_ids: follower.seen_through(event_ids),
                30,
                f"the executions of event {event.id}",
            )
            found["routed"].append(min(follower.routed[i][0] for i in event_ids) - sent)
            starts = [follower.started[i][0] for i in event_ids]
            found["started"].append(min(starts) - sent)
            found["all_started"].append(max(starts) - sent)
        return found

    # Latency first, on a worker and broker that do not yet hold 20,000 executions.
    ten = await latencies(event_type(segment, 0), subscribers(segment, 0))
    one = await latencies(solo_type(segment), subscribers(segment, 0)[:1])

    batch = [
        prepare(event_type(segment, i % TYPES), subscribers(segment, i % TYPES))
        for i in range(events)
    ]
    ids = [i for _, event_ids in batch for i in event_ids]
    began = time.perf_counter()
    for event, _ in batch:
        publisher.publish_event(event)
    await asyncio.to_thread(publisher.flush, 60)
    published = time.perf_counter() - began
    await follower.drained(900)
    routed = max(follower.routed[i][0] for i in ids) - began
    started = max(follower.started[i][0] for i in ids) - began
    completed = max(follower.completed[i] for i in ids) - began
    await follower.stop()
    follower.check(owners)
    figures = {
        "published_s": published,
        "routed_s": routed,
        "started_s": started,
        "completed_s": completed,
    }
    for name, samples in (("ten", ten), ("one", one)):
        for what, values in samples.items():
            figures[f"{name}_{what}_p50_ms"] = statistics.median(values) * 1000
            figures[f"{name}_{what}_p99_ms"] = _percentile(values, 99) * 1000
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_kafka_options(parser)
    parser.add_argument("--events", type=int, default=2000)
    args = parser.parse_args()
    segment = f"bench{uuid.uuid4().hex[:6]}"
    texts = definitions(segment)
    work = router_work(texts, segment)
    with tempfile.TemporaryDirectory(prefix="braidflow-bench-") as tmp:
        kafka, embedded = bench_kafka(args)
        prefix = f"bench{uuid.uuid4().hex[:6]}"
        port = free_port()
        api = f"http://127.0.0.1:{port}"
        asyncio.run(create_events_topic(kafka, segment))
        worker = start_worker(kafka, prefix, Path(tmp), port)
        try:
            ready_s = wait_ready(api, worker)
            deploy_s = deploy_all(api, texts)
            floor = asyncio.run(bare_hops(kafka))
            figures = asyncio.run(measure(kafka, prefix, segment, args.events))
            floor_after = asyncio.run(bare_hops(kafka, samples=100))
        except BaseException:
            print((Path(tmp) / "worker.log").read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            worker.terminate()
            worker.wait(timeout=30)
            if embedded is not None:
                embedded.stop()

    def ms(name: str) -> str:
        return f"{figures[name + '_p50_ms']:7.1f} / {figures[name + '_p99_ms']:6.1f} ms"

    def floor_lines(hops: list[list[float]]) -> None:
        for count, timings in enumerate(hops, start=1):
            print(
                f"  bare Kafka, {count} hop{'s' if count > 1 else ' '} p50 / p99"
                f"               {statistics.median(timings) * 1000:7.1f} /"
                f" {_percentile(timings, 99) * 1000:6.1f} ms"
            )

    n, executions = args.events, args.events * PER_EVENT
    three_hops = statistics.median(floor[2]) * 1000
    per_event_us = work["decode_us"] + work["match_us"] + work["starts_us"]
    print(
        f"broker: {'embedded Tansu' if embedded else kafka.describe()}; one worker, {PARTITIONS} partitions"
    )
    print(f"  worker ready after                          {ready_s:8.1f} s")
    print(
        f"  {len(texts):,} workflows deployed one by one (API) {deploy_s:8.1f} s"
        f"   ({deploy_s / len(texts) * 1000:.1f} ms each)"
    )
    print("the floor, before the runs below (aiokafka producer and consumer)")
    floor_lines(floor)
    print(
        "the router's own work per event, in-process, no Kafka"
        f" ({PER_EVENT} of {len(texts):,} subscriptions match)"
    )
    print(f"  decode the CloudEvent (structured JSON)     {work['decode_us']:8.1f} µs")
    print(f"  match, remembered per type                  {work['match_us']:8.1f} µs")
    print(
        f"    (a type's first event: 8 exact + all {TYPES * len(GLOBS)} globs"
        f" {work['first_match_us']:6.1f} µs)"
    )
    print(f"  build and encode {PER_EVENT} StartExecution         {work['starts_us']:8.1f} µs")
    print(f"  so at most, events/s on one core            {1e6 / per_event_us:8.0f}")
    print("one event at a time (each once the previous one's executions completed), p50 / p99")
    for name, count in (("ten", PER_EVENT), ("one", 1)):
        print(f"  an event that starts {count} workflow{'s' if count > 1 else ''}, from publish to")
        print(f"    the first StartExecution seen             {ms(name + '_routed')}")
        print(
            f"    the first workflow.started                {ms(name + '_started')}"
            "   (target p50 < 50)"
        )
        if count > 1:
            print(f"    the last ({count}th) workflow.started         {ms(name + '_all_started')}")
        print(
            "    first workflow.started p50 / 3-hop floor  "
            f"{figures[name + '_started_p50_ms'] / three_hops:7.1f} x"
        )
    print(f"{n:,} events published at once ({executions:,} executions), from the first publish")
    print(f"  all published and acknowledged after        {figures['published_s']:8.2f} s")
    print("  to the last StartExecution on the transitions topic (the router alone):")
    print(
        f"    events routed/s                           {n / figures['routed_s']:8.0f}"
        "   (target >= 2,000)"
    )
    print(f"    executions started/s                      {executions / figures['routed_s']:8.0f}")
    print("  to the last workflow.started (router and orchestrator):")
    print(f"    events/s                                  {n / figures['started_s']:8.0f}")
    print(f"    executions started/s                      {executions / figures['started_s']:8.0f}")
    print(f"  to the last workflow.completed              {figures['completed_s']:8.1f} s")
    print("the floor again, after those runs (did the machine or the broker slow down?)")
    floor_lines(floor_after)


if __name__ == "__main__":
    main()
