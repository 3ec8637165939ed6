"""The outbox sends each entry to its topic, and makes sure an events topic exists first."""

from __future__ import annotations

import asyncio
import sys
import tracemalloc
from typing import Any

from braidflow.config import Topics
from braidflow.engine import LifecycleEvent, PublishEvent, TaskRequest
from braidflow.schemas import OutboxEntry
from braidflow.schemas.cloudevents import from_structured
from braidflow.streams.outbox import Acknowledged, Outbox, outbox_entry


async def test_a_published_event_makes_sure_of_its_topic_and_other_records_do_not() -> None:
    sent: list[tuple[str, bytes]] = []
    ensured: list[str] = []

    async def send(topic: str, key: bytes, value: bytes, headers: Any) -> asyncio.Future[int]:
        sent.append((topic, key))
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        done.set_result(0)
        return done

    async def ensure(topic: str) -> None:
        ensured.append(topic)

    outbox = Outbox(Topics("bf"), send, ensure)
    entries = [
        OutboxEntry("task", "ex:a:1", b"task"),
        OutboxEntry("publish", "ex/tell", b"{}", "events.ticket", b"subject"),
    ]
    await outbox.send(b"ex", entries)
    assert sent == [("bf.tasks", b"ex"), ("events.ticket", b"subject")]
    assert ensured == ["events.ticket"]


async def test_every_record_carries_its_traceparent_header_and_a_published_event_its_extension() -> (
    None
):
    headers: dict[str, Any] = {}

    async def send(topic: str, key: bytes, value: bytes, sent: Any) -> asyncio.Future[int]:
        headers[topic] = dict(sent or ())
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        done.set_result(0)
        return done

    async def ensure(topic: str) -> None:
        pass

    node_span = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    event = LifecycleEvent("ex/workflow.started", "workflow.started", "ex", "wf", 1, 1)
    task = TaskRequest("ex", "wf", "a", "task", 1, "ex:a:1", 1, traceparent=node_span)
    publish = PublishEvent("ex/tell", "ex", "wf", "tell", 1, "ticket.opened", {"n": 1})
    entries = [
        outbox_entry(event, "events.", "ex", node_span),
        outbox_entry(task, "events.", "ex", node_span),
        outbox_entry(publish, "events.", "ex", node_span),
    ]
    await Outbox(Topics("bf"), send, ensure).send(b"ex", entries)
    assert {topic: h["traceparent"] for topic, h in headers.items()} == {
        "bf.lifecycle": node_span.encode(),
        "bf.tasks": node_span.encode(),
        "events.ticket": node_span.encode(),
    }
    # Lifecycle records keep their CloudEvents headers beside it.
    assert headers["bf.lifecycle"]["ce_type"] == b"braidflow.workflow.started"
    published = from_structured(entries[2].value)
    assert published.extensions == {"traceparent": node_span}


async def test_a_task_request_is_handed_over_before_it_is_queued_and_sent_all_the_same() -> None:
    order: list[tuple[str, bytes, bytes]] = []

    async def send(topic: str, key: bytes, value: bytes, headers: Any) -> asyncio.Future[int]:
        order.append((topic, key, value))
        done: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        done.set_result(0)
        return done

    outbox = Outbox(Topics("bf"), send)
    outbox.on_task = lambda key, value: order.append(("handed over", key, value))
    entries = [OutboxEntry("event", "ex/e", b"event"), OutboxEntry("task", "ex:a:1", b"task")]
    await outbox.send(b"ex", entries)
    assert order == [
        ("bf.lifecycle", b"ex", b"event"),
        ("handed over", b"ex", b"task"),
        ("bf.tasks", b"ex", b"task"),
    ]


def test_acknowledged_ids_past_their_memory_bound_forget_the_oldest() -> None:
    ids = [f"e{n:04}/nap/1/node.started" for n in range(5)]
    one = sys.getsizeof(ids[0]) + 90
    acknowledged = Acknowledged(capacity_bytes=3 * one)
    for record_id in [*ids, ids[4]]:
        acknowledged.add(record_id)
    assert [record_id in acknowledged for record_id in ids] == [False, False, True, True, True]


def test_acknowledged_ids_hold_no_more_memory_than_their_bound() -> None:
    # 200,000 ids under a bound by count took 36 MiB.
    bound = 1024 * 1024
    tracemalloc.start()
    try:
        acknowledged = Acknowledged(capacity_bytes=bound)
        for n in range(20_000):
            acknowledged.add(f"{n:032x}/nap/1/braidflow.node.started")
        held = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert f"{19_999:032x}/nap/1/braidflow.node.started" in acknowledged
    assert f"{0:032x}/nap/1/braidflow.node.started" not in acknowledged
    assert held <= 1.1 * bound


async def test_an_entry_sent_now_is_acknowledged_by_its_note_and_the_rest_go_through_send() -> None:
    queued: list[str] = []
    notes: list[tuple[Any, Any]] = []

    async def send(topic: str, key: bytes, value: bytes, headers: Any) -> asyncio.Future[int]:
        queued.append(topic)
        return asyncio.get_running_loop().create_future()

    def send_now(topic: str, key: bytes, value: bytes, headers: Any, note: Any, arg: Any) -> bool:
        if topic == "bf.tasks":
            return False  # say, its partition's batch is full
        notes.append((note, arg))
        return True

    outbox = Outbox(Topics("bf"), send, sends_now=lambda: send_now)
    entries = [OutboxEntry("transition", "t1", b"t"), OutboxEntry("task", "ex:a:1", b"task")]
    await outbox.send(b"ex", entries)
    assert queued == ["bf.tasks"]
    ((note, arg),) = notes
    assert "t1" not in outbox.acknowledged
    note(arg, 0, 12, 1_000)
    assert "t1" in outbox.acknowledged
    assert "ex:a:1" not in outbox.acknowledged


async def test_open_batches_are_taken_once_for_a_step_and_again_after_a_record_that_waited() -> (
    None
):
    # What was taken before an `await` may be drained or failed since (`quick_send.OpenBatches`).
    taken: list[int] = []
    sent_now: list[tuple[int, str]] = []

    async def send(topic: str, key: bytes, value: bytes, headers: Any) -> asyncio.Future[int]:
        await asyncio.sleep(0)
        return asyncio.get_running_loop().create_future()

    def sends_now() -> Any:
        taken.append(len(taken))
        run = taken[-1]

        def send_now(topic: str, key: bytes, value: bytes, *_: Any) -> bool:
            if value == b"full":
                return False
            sent_now.append((run, value.decode()))
            return True

        return send_now

    outbox = Outbox(Topics("bf"), send, sends_now=sends_now)
    values = [b"a", b"b", b"full", b"c"]
    await outbox.send(b"ex", [OutboxEntry("transition", v.decode(), v) for v in values])
    assert taken == [0, 1]
    assert sent_now == [(0, "a"), (0, "b"), (1, "c")]
