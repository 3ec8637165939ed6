"""The lifecycle feed: each execution's events in order, kept once, bounded, decoded only
when read, and its readers woken when events of theirs are applied."""

from __future__ import annotations

import gc
import json
import tracemalloc

from avro_history import written_with

from braidflow.connectors.lifecycle_feed import (
    CUT,
    EXECUTION_OVERHEAD,
    Cut,
    FeedEvent,
    LifecycleFeed,
    cut_event,
    held_bytes,
)
from braidflow.connectors.projection import Record
from braidflow.engine import ids
from braidflow.engine.messages import LifecycleEvent
from braidflow.schemas import encode_event
from braidflow.schemas.lifecycle_events import lifecycle_headers
from braidflow.schemas.records import LIFECYCLE_EVENT

NOW = 1_700_000_000_000


def record(
    execution_id: str, type_: str, node_id: str | None = None, tenant: str = "default"
) -> Record:
    event_id = (
        ids.workflow_event_id(execution_id, type_)
        if node_id is None
        else ids.node_event_id(execution_id, node_id, 1, type_)
    )
    event = LifecycleEvent(
        event_id,
        type_,
        execution_id,
        "refund",
        1,
        NOW,
        node_id=node_id,
        attempt=None if node_id is None else 1,
        tenant=tenant,
    )
    key = execution_id.encode()
    return Record("lifecycle", 0, 0, key, encode_event(event), lifecycle_headers(event_id, key))


def types(feed: LifecycleFeed, execution_id: str) -> list[str]:
    return [e.type for e in feed.of_execution(execution_id)]


def test_an_execution_reads_back_in_order_each_event_once_as_its_json() -> None:
    feed = LifecycleFeed()
    records = [record("e1", "workflow.started"), record("e1", "node.started", "a")]
    assert feed.apply(records) == ["e1", "e1"]
    feed.apply([*records, record("e1", "workflow.completed")])  # a redelivery, then the end
    kept = feed.of_execution("e1")
    assert [e.type for e in kept] == ["workflow.started", "node.started", "workflow.completed"]
    shown = json.loads(kept[1].body or "")
    assert (shown["id"], shown["node_id"], shown["attempt"]) == ("e1/a/1/node.started", "a", 1)
    assert feed.of_execution("e1", after_seq=kept[1].seq) == kept[2:]
    assert feed.seq_of("e1/a/1/node.started", "e1") == kept[1].seq


def test_past_the_bound_node_events_give_way_to_one_cut_and_the_end_is_kept() -> None:
    feed = LifecycleFeed(per_execution=3)
    feed.apply([record("e1", "workflow.started")])
    feed.apply([record("e1", "node.started", f"n{i}") for i in range(5)])
    feed.apply([record("e1", "workflow.completed")])
    assert types(feed, "e1") == [
        "workflow.started",
        "node.started",
        "node.started",
        "node.started",
        CUT,
        "workflow.completed",
    ]
    cut = json.loads(feed.of_execution("e1")[4].body or "")
    assert cut["kept"] == 3 and "at most 3 node events" in cut["reason"]


def test_an_execution_first_seen_midway_begins_with_a_cut_and_may_be_cut_again() -> None:
    feed = LifecycleFeed(per_execution=1)
    feed.apply([record("e1", "node.completed", "a"), record("e1", "node.completed", "b")])
    feed.apply([record("e1", "workflow.completed")])
    assert types(feed, "e1") == [CUT, "node.completed", CUT, "workflow.completed"]
    assert [e.id for e in feed.of_execution("e1") if e.type == CUT] == [
        "e1/stream.cut/0",
        "e1/stream.cut/1",
    ]


def test_a_cut_is_written_as_json_when_first_read_and_counts_the_same_bytes_after() -> None:
    # A restarted worker firing parked timers cuts every execution it had forgotten; its
    # JSON text was most of that cost, and is rarely read.
    feed = LifecycleFeed()
    feed.apply([record("e1", "node.completed", "a")])
    cut = feed.of_execution("e1")[0]
    counted = held_bytes(cut)
    assert (cut.type, cut._body) == (CUT, None)
    assert json.loads(cut.body or "") == cut_event(
        "e1", Cut.BEFORE, "events from before this worker read the topic are not kept"
    )
    assert held_bytes(cut) == counted


def test_past_the_total_the_executions_idle_longest_are_forgotten_whole() -> None:
    feed = LifecycleFeed(total=10)
    for n in range(6):
        feed.apply([record(f"e{n}", "workflow.started"), record(f"e{n}", "workflow.completed")])
    feed.apply([record("e2", "node.started", "late")])  # e2 is busy again: kept
    feed.apply([record("e6", "workflow.started"), record("e6", "workflow.completed")])
    assert [feed.holds(f"e{n}") for n in range(7)] == [False, False, True, False, True, True, True]
    assert types(feed, "e5") == ["workflow.started", "workflow.completed"]


def test_past_the_bytes_bound_the_idle_executions_go_and_the_tail_keeps_as_much() -> None:
    # 100,000 events of parked executions took 35 - 56 MiB: the bound is on memory too.
    pair = [record("e0", "workflow.started"), record("e0", "workflow.completed")]
    budget = 3 * (sum(held_bytes(e) for e in _applied(pair)) + EXECUTION_OVERHEAD)
    feed = LifecycleFeed(total_bytes=budget)
    for n in range(6):
        feed.apply([record(f"e{n}", "workflow.started"), record(f"e{n}", "workflow.completed")])
    assert [feed.holds(f"e{n}") for n in range(6)] == [False] * 3 + [True] * 3
    assert [e.execution_id for e in feed.tail(0)] == ["e3", "e3", "e4", "e4", "e5", "e5"]


PARKED = [
    ("workflow.started", None),
    ("node.started", "nap"),
    ("node.completed", "nap"),
    ("node.started", "done"),
    ("node.completed", "done"),
    ("workflow.completed", None),
]
"""A parked execution's six events, once fired."""


def _filled(feed: LifecycleFeed, executions: int) -> int:
    """Apply `executions` parked executions' events to `feed`; the bytes it holds then."""
    made = [[record(f"{n:036d}", t, node) for t, node in PARKED] for n in range(executions)]
    gc.collect()
    tracemalloc.start()
    try:
        for records in made:
            # Each value an object of its own, traced, as a consumer's are.
            feed.apply([r._replace(value=bytes(bytearray(r.value or b""))) for r in records])
        del made
        gc.collect()
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return held


def test_a_feed_past_its_bytes_bound_holds_about_that_much_memory() -> None:
    # Parked executions' six events each: counting only their values' and ids' text and a
    # fixed 200 bytes, a feed held 1.6 times its bound.
    bound = 1024 * 1024
    feed = LifecycleFeed(total_bytes=bound)
    held = _filled(feed, 6_000)
    assert not feed.holds(f"{0:036d}")
    assert 0.85 * bound < held < 1.15 * bound


def test_by_default_a_feed_keeps_27_000_events_of_parked_executions_in_9_mib() -> None:
    # Kept as an object each (with its id and a set of ids per execution), as many took
    # 16.9 MiB, most of a parked worker's growth of its Python heap.
    feed = LifecycleFeed()
    held = _filled(feed, 6_000)
    kept = sum(len(feed.of_execution(f"{n:036d}")) for n in range(6_000))
    assert kept > 27_000 and held < 9 * 1024 * 1024


def test_the_tail_reads_a_forgotten_execution_while_its_events_are_in_it() -> None:
    feed = LifecycleFeed(total=4)
    feed.apply([record("e0", "workflow.started"), record("e0", "node.started", "a")])
    feed.apply([record("e1", "workflow.started"), record("e1", "node.started", "a")])
    feed.apply([record("e2", "workflow.started")])
    assert not feed.holds("e0")
    assert [e.id for e in feed.tail(0)] == [
        "e0/a/1/node.started",
        "e1/workflow.started",
        "e1/a/1/node.started",
        "e2/workflow.started",
    ]
    assert [e.seq for e in feed.tail(0)] == [2, 3, 4, 5]
    feed.apply([record("e2", "node.started", "a")])
    assert [e.id for e in feed.tail(0, limit=2)] == ["e1/workflow.started", "e1/a/1/node.started"]


def test_a_record_of_an_older_schema_is_kept_by_its_headers_once() -> None:
    # Its value does not begin with its id and type: they are read off its headers.
    event = LifecycleEvent("e1/a/1/node.started", "node.started", "e1", "refund", 1, NOW, "a", 1)
    value = written_with("LifecycleEvent", 2, LIFECYCLE_EVENT.to_avro(event))
    older = Record("lifecycle", 0, 0, b"e1", value, lifecycle_headers(event.id, b"e1"))
    feed = LifecycleFeed()
    feed.apply([record("e1", "workflow.started"), older, older, record("e1", "workflow.failed")])
    assert types(feed, "e1") == ["workflow.started", "node.started", "workflow.failed"]
    assert feed.of_execution("e1")[1].event == event
    assert feed.seq_of(event.id, "e1") == feed.of_execution("e1")[1].seq
    assert feed.ended("e1")


def test_an_event_id_that_does_not_begin_with_its_execution_is_told_apart() -> None:
    # Kept by what follows the execution's id: an id without it is kept whole.
    feed = LifecycleFeed()
    odd = record("e1", "workflow.started")._replace(key=b"e")
    feed.apply([record("e", "workflow.started"), odd, odd])
    assert [e.id for e in feed.of_execution("e")] == ["e/workflow.started", "e1/workflow.started"]
    assert feed.seq_of("e1/workflow.started", "e") == 2
    assert feed.seq_of("workflow.started", "e") is None


def _applied(records: list[Record]) -> list[FeedEvent]:
    feed = LifecycleFeed()
    feed.apply(records)
    return feed.tail(0)


def test_the_tail_is_every_event_after_a_position_decoded_with_its_tenant() -> None:
    feed = LifecycleFeed()
    feed.apply([record("e1", "workflow.started"), record("e2", "workflow.started", tenant="acme")])
    first = feed.seq_of("e1/workflow.started", "e1") or 0
    tail = feed.tail(first)
    assert [e.id for e in tail] == ["e2/workflow.started"]
    assert tail[0].event is not None and tail[0].event.tenant == "acme"
    assert feed.last_seq == first + 1
    assert [e.id for e in feed.tail(0, limit=1)] == ["e1/workflow.started"]


def test_a_record_that_is_no_lifecycle_event_is_skipped() -> None:
    feed = LifecycleFeed()
    bare = Record("lifecycle", 0, 0, b"e1", b"junk", [])
    assert feed.apply([bare]) == []
    assert not feed.holds("e1")


def test_an_undecodable_value_has_no_body() -> None:
    feed = LifecycleFeed()
    good = record("e1", "workflow.started")
    bad = good._replace(value=b"\xff")
    feed.apply([bad])
    (kept,) = feed.of_execution("e1")
    assert (kept.event, kept.body) == (None, None)


async def test_readers_are_woken_by_their_executions_events() -> None:
    feed = LifecycleFeed()
    mine, other, tail = (
        feed.execution_signal("e1"),
        feed.execution_signal("e2"),
        feed.tail_signal(),
    )
    touched = feed.apply([record("e1", "workflow.started")])
    assert not mine.is_set()  # applied, not yet announced
    feed.announce(touched)
    assert mine.is_set() and tail.is_set() and not other.is_set()
    assert not feed.execution_signal("e1").is_set() and not feed.tail_signal().is_set()
    feed.end_readers()
    assert other.is_set() and feed.execution_signal("e3").is_set()
    assert feed.tail_signal().is_set()


async def test_a_reader_among_many_executions_touched_is_woken_and_no_other() -> None:
    feed = LifecycleFeed()
    mine, idle = feed.execution_signal("e7"), feed.execution_signal("idle")
    touched = feed.apply([record(f"e{i}", "workflow.started") for i in range(50)])
    feed.announce(touched)
    assert mine.is_set() and not idle.is_set()
    assert not feed.execution_signal("e7").is_set()
    feed.announce([])  # nothing applied: no reader of the tail woken either
    assert not feed.tail_signal().is_set()


def test_a_signal_nobody_waits_on_is_not_kept() -> None:
    feed = LifecycleFeed()
    taken = feed.execution_signal("e1")
    assert feed.execution_signal("e1") is taken
    del taken
    feed.execution_signal("e1").set()  # dropped at once: a new one comes next
    assert not feed.execution_signal("e1").is_set()


def test_an_execution_has_ended_until_a_redrive_opens_it_again() -> None:
    feed = LifecycleFeed()
    assert not feed.ended("e1")
    feed.apply([record("e1", "workflow.started"), record("e1", "node.failed", "a")])
    assert not feed.ended("e1")
    feed.apply([record("e1", "workflow.failed")])
    assert feed.ended("e1")
    feed.apply([record("e1", "node.redriven", "a"), record("e1", "node.completed", "a")])
    assert not feed.ended("e1")
    feed.apply([record("e1", "workflow.parked")])
    assert not feed.ended("e1") and feed.ended("e1", frozenset({"workflow.parked"}))


def test_kept_events_share_their_execution_id_and_type_strings() -> None:
    # At the 100,000 events kept, a string of each per event cost about 12 MiB.
    feed = LifecycleFeed()
    feed.apply([record("e1", "workflow.started"), record("e1", "node.started", "nap")])
    feed.apply([record("e2", "workflow.started")])
    first, second = feed.of_execution("e1")
    (other,) = feed.of_execution("e2")
    assert first.execution_id is second.execution_id
    assert first.type is other.type
