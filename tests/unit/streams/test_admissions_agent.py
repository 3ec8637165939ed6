"""The admissions agent: each admission carries the trace its request named, rows written
before traces admit without one, and once given its partitions after a crash it admits every
slot holder again."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import cast

from braidflow.engine import AdmissionRequested, AdmitExecution, Transition, ids
from braidflow.engine.admission import AdmissionRow, Claim
from braidflow.schemas.codec import encode_admission
from braidflow.schemas.dead_letters import DeadLetter
from braidflow.streams.admissions import (
    Admissions,
    decode_row,
    decode_segment,
    encode_row,
    segment_key,
)
from braidflow.streams.catalog import Catalog
from braidflow.streams.orchestrator import Record

TRACE_A = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
TRACE_X = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


async def no_dead_letter(letter: DeadLetter) -> None:
    raise AssertionError(letter)


def uncapped() -> Catalog:
    """A catalog whose departments are not deployed: no cap, every request admitted."""
    departments = SimpleNamespace(definition=lambda name: None)
    return cast(Catalog, SimpleNamespace(departments_of=lambda tenant: departments))


def test_an_admission_carries_the_traceparent_its_request_named() -> None:
    sent: list[tuple[Transition, str | None]] = []

    async def send(transition: Transition, traceparent: str | None) -> None:
        sent.append((transition, traceparent))

    agent = Admissions(uncapped(), send, no_dead_letter, lambda: 7)
    key = b"default/support"
    request = AdmissionRequested("a/queued", "a", 1, key.decode(), TRACE_A)
    table: dict[bytes, bytes] = {}
    record = Record("admissions", 0, 0, key, encode_admission(request))
    asyncio.run(agent.handle(record, table))
    assert sent == [(AdmitExecution(ids.admit_id("a"), "a", 7), TRACE_A)]
    assert decode_row(table[key]).holding == (Claim("a", TRACE_A),)


def test_rows_keep_each_executions_trace_and_rows_from_before_traces_read_with_none() -> None:
    row = AdmissionRow(3, (Claim("a", TRACE_A), Claim("b")), (Claim("c"),), (Claim("d", TRACE_X),))
    assert decode_row(encode_row(row)) == row
    before = b'{"offset":3,"holding":["a","b"],"front":["c"],"back":["d"],"first":0,"next":1}'
    assert decode_row(before) == AdmissionRow(
        3, (Claim("a"), Claim("b")), (Claim("c"),), (Claim("d"),), 0, 1
    )
    assert decode_segment(b'["e","f"]') == (Claim("e"), Claim("f"))


def test_an_agent_given_its_partitions_admits_every_slot_holder_of_every_department_again() -> None:
    # The last record of each department was applied before the crash: no record of theirs
    # comes to the new agent, yet an admission sent last may never have been applied.
    sent: list[tuple[Transition, str | None]] = []
    failures = [RuntimeError("broker away")]

    async def send(transition: Transition, traceparent: str | None) -> None:
        if failures:
            raise failures.pop()
        sent.append((transition, traceparent))

    agent = Admissions(cast(Catalog, None), send, no_dead_letter, lambda: 7)
    support = b"default/support"
    holding = (Claim("a", TRACE_A), Claim("b"))
    rows = [
        (support, encode_row(AdmissionRow(offset=9, holding=holding, front=(Claim("c"),)))),
        (segment_key(support, 0), b'["d"]'),
        (b"acme/sales", encode_row(AdmissionRow(offset=3, holding=(Claim("x", TRACE_X),)))),
        (b"acme/idle", encode_row(AdmissionRow(offset=5))),
    ]
    assert asyncio.run(agent.admit_holders_again(rows)) == 3
    # Each with the header its first admission carried; b's request came before traces.
    assert sent == [
        (AdmitExecution(ids.admit_id(e), e, 7), traceparent)
        for e, traceparent in (("a", TRACE_A), ("b", None), ("x", TRACE_X))
    ]


def test_a_row_keeps_the_day_and_what_it_spent_and_one_written_before_spent_nothing() -> None:
    row = AdmissionRow(7, (Claim("a", TRACE_A),), day=20_000, spent=0.75)
    assert decode_row(encode_row(row)) == row
    before = b'{"offset":7,"holding":[],"front":[],"back":[],"first":0,"next":0}'
    assert decode_row(before) == AdmissionRow(7)
