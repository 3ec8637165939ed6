"""What lifecycle events say for the stats, on plain events: starts, ends and durations (from
the start an end carries), retries, dead letters, timeouts, SLA breaches, and the records per
workflow and department."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from braidflow.engine import LifecycleEvent, NodeError
from braidflow.schemas.stats_figures import COUNTS, Observation, fold, view
from braidflow.schemas.stats_observations import (
    Gathering,
    StatsRecord,
    decode_record,
    encode_record,
    observe,
    used,
)
from braidflow.topology.model import Node

T0 = 1_750_000_000_000


def event(
    type_: str,
    at: int,
    node: str | None = None,
    attempt: int | None = None,
    error: str | None = None,
    started_at: int | None = None,
) -> LifecycleEvent:
    return LifecycleEvent(
        f"e1/{type_}/{at}",
        type_,
        "e1",
        "orders",
        1,
        at,
        node,
        attempt,
        None,
        None if error is None else NodeError(error, "it broke", node),
        "acme",
        started_at,
    )


def run_through(*events: LifecycleEvent) -> list[Observation]:
    return [seen for e in events for seen in observe(e)]


def test_an_execution_that_completes_says_its_duration_and_its_nodes() -> None:
    seen = run_through(
        event("workflow.accepted", T0 - 5),
        event("workflow.started", T0),
        event("node.started", T0 + 10, "pay", 1),
        event("node.completed", T0 + 250, "pay", 1, started_at=T0 + 10),
        event("workflow.completed", T0 + 300, started_at=T0),
    )
    assert seen == [
        Observation("started"),
        Observation("started", "pay"),
        Observation("completed", "pay", 240),
        Observation("completed", None, 300),
    ]


def test_retries_dead_letters_and_timeouts() -> None:
    seen = run_through(
        event("workflow.started", T0),
        event("node.started", T0 + 1, "pay", 1),
        event("node.retrying", T0 + 21, "pay", 1, "E", started_at=T0 + 1),
        event("node.started", T0 + 100, "pay", 2),
        event("node.failed", T0 + 5100, "pay", 2, "Timeout", started_at=T0 + 100),
        event("node.dead_lettered", T0 + 5100, "pay", 2, "Timeout"),
        event("workflow.failed", T0 + 5100, error="Timeout", started_at=T0),
    )
    assert seen[1:] == [
        Observation("started", "pay"),
        Observation("retries", "pay", 20),
        Observation("started", "pay"),
        Observation("timed_out", "pay", 5000),
        Observation("dead_letters", "pay"),
        Observation("timed_out", None, 5100),
    ]


def test_a_failure_and_a_cancellation_are_told_apart_from_timeouts() -> None:
    failed = observe(event("workflow.failed", T0 + 9, error="E", started_at=T0))
    cancelled = observe(event("workflow.cancelled", T0 + 7, started_at=T0))
    assert failed == [Observation("failed", None, 9)]
    assert cancelled == [Observation("cancelled", None, 7)]


def test_an_end_without_a_start_counts_without_a_duration() -> None:
    # Written before ends carried their start, or an end whose start is not timed.
    seen = run_through(event("node.completed", T0, "pay", 3), event("workflow.completed", T0 + 1))
    assert seen == [Observation("completed", "pay", None), Observation("completed", None, None)]


def test_an_sla_breach_counts() -> None:
    assert observe(event("workflow.sla_breached", T0 + 60_000)) == [Observation("sla_breached")]


def gathered(
    *said: tuple[LifecycleEvent, str | None, list[Observation]]
    | tuple[LifecycleEvent, str | None, list[Observation], tuple[int, int]],
    span_ms: int = 60_000,
) -> list[tuple[str, int, StatsRecord]]:
    gathering = Gathering(span_ms)
    for each in said:
        gathering.add(*each)
    return gathering.records()


def test_records_go_to_the_workflow_and_its_department_with_nodes_named_by_workflow() -> None:
    said = [Observation("completed", "pay", 5), Observation("started")]
    records = gathered((event("node.completed", T0, "pay", 1), "sales", said))
    assert [key for key, _, _ in records] == ["acme/workflow/orders", "acme/department/sales"]
    assert records[0][2].observations == tuple(said)
    assert records[1][2].observations[0] == Observation("completed", "orders/pay", 5)
    assert [key for key, _, _ in gathered((event("node.completed", T0, "pay", 1), None, said))] == [
        "acme/workflow/orders"
    ]
    assert gathered((event("workflow.paused", T0), "sales", [])) == []


def test_records_survive_their_encoding() -> None:
    [(_, _, record)] = gathered((event("workflow.started", T0), None, [Observation("started")]))
    assert decode_record(encode_record(record)) == record


def test_a_record_that_counts_what_the_stats_do_not_know_is_not_a_record() -> None:
    # The fold agent folds a batch at once: one such record must be skipped, not fail it.
    bogus = b'{"workflow": "w", "department": null, "observations": [["bogus", null, null]]}'
    with pytest.raises(ValueError, match="bogus"):
        decode_record(bogus)


def test_records_of_one_key_and_minute_are_gathered_into_one_in_order() -> None:
    minute = 60_000
    start = T0 - T0 % minute
    orders, sales = "acme/workflow/orders", "acme/department/sales"
    started, done = Observation("started"), Observation("completed", None, 5)
    node = Observation("started", "a")
    records = gathered(
        (event("workflow.started", start + 10), "sales", [started]),
        (event("node.started", start + 20, "a", 1), "sales", [node, done]),
        (event("workflow.completed", start + minute), "sales", [done]),
        (event("workflow.completed", start + 30), None, [done]),
        span_ms=minute,
    )

    assert records == [
        (orders, start + 10, StatsRecord("orders", "sales", (started, node, done))),
        (
            sales,
            start + 10,
            StatsRecord("orders", "sales", (started, node._replace(node="orders/a"), done)),
        ),
        (orders, start + minute, StatsRecord("orders", "sales", (done,))),
        (sales, start + minute, StatsRecord("orders", "sales", (done,))),
        (orders, start + 30, StatsRecord("orders", None, (done,))),
    ]


def test_a_keys_records_stay_in_the_order_of_their_events() -> None:
    # A bucket tells the events it counted by their offsets: a record of a key must not
    # take in events that came after those of the key's next record.
    minute = 60_000
    start = T0 - T0 % minute
    orders = "acme/workflow/orders"
    started, done = Observation("started"), Observation("completed", None, 5)
    records = gathered(
        (event("workflow.started", start + 10), None, [started], (0, 1)),
        (event("workflow.started", start + minute), None, [started], (0, 2)),
        (event("workflow.completed", start + 20), None, [done], (0, 3)),
        span_ms=minute,
    )
    assert records == [
        (orders, start + 10, StatsRecord("orders", None, (started,), ((0, 1),))),
        (orders, start + minute, StatsRecord("orders", None, (started,), ((0, 2),))),
        (orders, start + 20, StatsRecord("orders", None, (done,), ((0, 3),))),
    ]


def test_records_carry_the_lifecycle_record_of_each_observation() -> None:
    said = [Observation("completed", "pay", 5)]
    completed = event("node.completed", T0, "pay", 1)
    records = gathered((completed, "sales", said, (3, 41)))
    assert [record.sources for _, _, record in records] == [((3, 41),), ((3, 41),)]
    [(_, _, merged)] = gathered((completed, None, said, (3, 41)), (completed, None, said, (3, 41)))
    assert merged.sources == ((3, 41), (3, 41))
    assert decode_record(encode_record(merged)) == merged
    # Written before records had sources: counted whole.
    old = b'{"workflow": "w", "department": null, "observations": [["started", null, null]]}'
    assert decode_record(old) == StatsRecord("w", None, (Observation("started"),))


OBSERVATIONS = st.builds(
    Observation,
    st.sampled_from(COUNTS),
    st.none() | st.text(max_size=5),
    st.none() | st.integers(0, 10**7),
)
SOURCES = st.tuples(st.integers(0, 63), st.integers(0, 2**40))


@st.composite
def records(draw: st.DrawFn) -> StatsRecord:
    observations = draw(st.lists(OBSERVATIONS, max_size=8))
    sourced = draw(st.booleans())
    sources = draw(st.lists(SOURCES, min_size=len(observations), max_size=len(observations)))
    return StatsRecord(
        draw(st.text(max_size=5)),
        draw(st.none() | st.text(max_size=5)),
        tuple(observations),
        tuple(sources) if sourced else (),
    )


@settings(max_examples=300, deadline=None)
@given(records())
def test_any_record_reads_back_as_written(record: StatsRecord) -> None:
    decoded = decode_record(encode_record(record))
    assert decoded == record
    assert all(type(o) is Observation for o in decoded.observations)


@pytest.mark.parametrize(
    "bogus",
    [
        b'{"workflow": "w", "department": null, "observations": [["started", null]]}',
        b'{"workflow": "w", "department": null, "observations": [[["started"], null, null]]}',
        b'{"workflow": "w", "department": null, "observations": [["started", null, null, 0]]}',
        b'{"workflow": "w", "department": null, "observations": [["started", null, null, "x", 1]]}',
        b'{"workflow": "w", "department": null, "observations": [7]}',
        b'{"workflow": "w", "observations": []}',
    ],
)
def test_a_malformed_record_is_a_value_error(bogus: bytes) -> None:
    with pytest.raises(ValueError, match="not a stats record"):
        decode_record(bogus)


SUMMARIZE = Node("sum", "summarize", {"connection": "m", "model": "small", "text": "t"})


def test_a_model_calls_cost_and_tokens_are_added_up_for_its_node_and_execution() -> None:
    data = {"summary": "s", "usage": {"total_tokens": 120}, "cost": 0.0042}
    completed = LifecycleEvent("e1/done", "node.completed", "e1", "orders", 1, T0, "sum", 1, data)
    said = used(completed, SUMMARIZE)
    assert said == [Observation("cost_micros", "sum", 4200), Observation("tokens", "sum", 120)]
    assert used(event("node.completed", T0, "sum", 1), SUMMARIZE) == []
    # Another kind's `cost` is its author's data, not a model call's.
    task = Node("call", "task", {"handler": "orders.price"})
    assert (
        used(LifecycleEvent("e1/c", "node.completed", "e1", "orders", 1, T0, "call", 1, data), task)
        == []
    )
    again = decode_record(encode_record(StatsRecord("orders", None, tuple(said))))
    bucket = fold(fold(None, again.observations), again.observations)
    shown = view(bucket)
    assert (shown["cost"], shown["tokens"]) == (0.0084, 240)
    assert (shown["nodes"]["sum"]["cost"], shown["nodes"]["sum"]["tokens"]) == (0.0084, 240)
    # Amounts are not executions: no count moves.
    assert all(shown[name] == 0 for name in COUNTS)


def test_a_foreach_of_model_calls_adds_up_its_items_cost_and_tokens_at_its_end() -> None:
    each = Node(
        "each",
        "foreach",
        {"items": [1, 2], "do": {"type": "classify", "params": {"labels": ["a", "b"]}}},
    )
    item = {"label": "a", "usage": {"total_tokens": 30}, "cost": 0.001}
    results = [item, item, "not a call"]
    completed = LifecycleEvent("e1/d", "node.completed", "e1", "orders", 1, T0, "each", 1, results)
    assert used(completed, each) == [
        Observation("cost_micros", "each", 2000),
        Observation("tokens", "each", 60),
    ]
