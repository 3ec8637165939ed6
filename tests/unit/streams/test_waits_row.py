"""A waits row over the record limit drops its oldest kept events, never a registration."""

from __future__ import annotations

from braidflow.engine import AwaitEvent
from braidflow.engine.correlation import KeptEvent, Waits
from braidflow.streams.waits import decode_waits, encode_waits, fitted


def kept(n: int, size: int = 1_000) -> KeptEvent:
    return KeptEvent({"id": f"ev-{n}", "source": "/t", "data": "x" * size}, 10_000 + n)


def waiting(n: int) -> AwaitEvent:
    return AwaitEvent(f"w-{n}", f"ex-{n}", "flow", 1, "wait", "ticket.closed", 5_000, None, None)


def test_a_row_within_the_limit_is_stored_as_it_is() -> None:
    waits = Waits((waiting(1),), (kept(1), kept(2)))
    stored, row = fitted(waits, 100_000)
    assert stored == waits and row == encode_waits(waits)


def test_the_oldest_kept_events_go_first_until_the_row_fits() -> None:
    waits = Waits((waiting(1), waiting(2)), tuple(kept(n) for n in range(10)))
    limit = len(encode_waits(waits)) - 2_500
    stored, row = fitted(waits, limit)
    assert len(row) <= limit
    assert stored.waiting == waits.waiting
    assert [k.event["id"] for k in stored.kept] == [f"ev-{n}" for n in range(3, 10)]
    assert decode_waits(row) == stored


def test_registrations_alone_over_the_limit_are_left_to_the_caller() -> None:
    waits = Waits(tuple(waiting(n) for n in range(50)), (kept(1),))
    stored, row = fitted(waits, 1_000)
    assert stored.waiting == waits.waiting and stored.kept == ()
    assert len(row) > 1_000
