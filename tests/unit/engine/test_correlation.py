"""Correlation of domain events with waits: `register` and `occur` on the row of one event type."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from braidflow.engine import AwaitEvent, EventArrived
from braidflow.engine.correlation import KEPT_EVENTS_LIMIT, KeptEvent, Waits, occur, register

NOW = 1_750_000_000_000
KEEP_MS = 60_000


def wait(
    execution_id: str, ticket: str, *, expires_at: int | None = None, node_id: str = "wait"
) -> AwaitEvent:
    return AwaitEvent(
        f"{execution_id}/{node_id}/1/await",
        execution_id,
        "support",
        1,
        node_id,
        "ticket.answered",
        NOW,
        expires_at,
        {"input": {"ticket": ticket}},
    )


def ticket_event(event_id: str, ticket: str, source: str = "/crm") -> dict[str, Any]:
    return {"id": event_id, "type": "ticket.answered", "source": source, "data": {"ticket": ticket}}


def same_ticket(registration: AwaitEvent, event: Mapping[str, Any]) -> bool:
    """The correlate `event.data.ticket == input.ticket`, read from the registration's context."""
    assert registration.context is not None
    return event["data"]["ticket"] == registration.context["input"]["ticket"]


def arrival(registration: AwaitEvent, event: Mapping[str, Any], at: int) -> EventArrived:
    return EventArrived(
        f"{registration.id}/arrived", registration.execution_id, at, registration.node_id, event
    )


def test_a_wait_with_no_matching_event_is_added_to_the_waiting() -> None:
    w = wait("ex-1", "T-1")
    waits, delivered = register(Waits(), w, NOW, same_ticket)
    assert waits == Waits(waiting=(w,))
    assert delivered == []


def test_an_event_is_delivered_to_a_waiting_registration_and_the_wait_ends() -> None:
    w = wait("ex-1", "T-1")
    waits, _ = register(Waits(), w, NOW, same_ticket)
    event = ticket_event("e1", "T-1")
    waits, delivered = occur(waits, event, NOW + 5, KEEP_MS, same_ticket)
    assert delivered == [arrival(w, event, NOW + 5)]
    assert waits.waiting == ()
    assert waits.kept == (KeptEvent(event, NOW + 5 + KEEP_MS),)


def test_an_early_event_is_kept_and_delivered_to_a_wait_that_registers_later() -> None:
    event = ticket_event("e1", "T-1")
    waits, delivered = occur(Waits(), event, NOW, KEEP_MS, same_ticket)
    assert delivered == []
    assert waits == Waits(kept=(KeptEvent(event, NOW + KEEP_MS),))

    w = wait("ex-1", "T-1")
    after, delivered = register(waits, w, NOW + KEEP_MS - 1, same_ticket)
    assert delivered == [arrival(w, event, NOW + KEEP_MS - 1)]
    assert after.waiting == (), "a wait that got its event is not added to the waiting"
    assert after.kept == waits.kept, "the event stays kept for other waits"


def test_a_kept_event_is_not_delivered_once_kept_until_has_passed() -> None:
    event = ticket_event("e1", "T-1")
    waits, _ = occur(Waits(), event, NOW, KEEP_MS, same_ticket)
    w = wait("ex-1", "T-1")
    after, delivered = register(waits, w, NOW + KEEP_MS, same_ticket)
    assert delivered == []
    assert after == Waits(waiting=(w,)), "the expired event is pruned"


def test_a_registration_gets_the_oldest_kept_event_it_matches() -> None:
    events = [ticket_event("e1", "T-2"), ticket_event("e2", "T-1"), ticket_event("e3", "T-1")]
    waits = Waits()
    for i, event in enumerate(events):
        waits, _ = occur(waits, event, NOW + i, KEEP_MS, same_ticket)
    w = wait("ex-1", "T-1")
    _, delivered = register(waits, w, NOW + 10, same_ticket)
    assert delivered == [arrival(w, events[1], NOW + 10)]


def test_a_registration_that_matches_no_kept_event_waits() -> None:
    waits, _ = occur(Waits(), ticket_event("e1", "T-2"), NOW, KEEP_MS, same_ticket)
    w = wait("ex-1", "T-1")
    after, delivered = register(waits, w, NOW + 1, same_ticket)
    assert delivered == []
    assert after.waiting == (w,)
    assert after.kept == waits.kept


def test_a_lapsed_wait_is_pruned_and_gets_no_event() -> None:
    lapsing = wait("ex-1", "T-1", expires_at=NOW + 100)
    lasting = wait("ex-2", "T-1", expires_at=NOW + 1_000)
    forever = wait("ex-3", "T-1")
    waits = Waits()
    for w in (lapsing, lasting, forever):
        waits, _ = register(waits, w, NOW, same_ticket)

    event = ticket_event("e1", "T-1")
    after, delivered = occur(waits, event, NOW + 100, KEEP_MS, same_ticket)
    assert delivered == [arrival(lasting, event, NOW + 100), arrival(forever, event, NOW + 100)]
    assert after.waiting == ()


def test_registering_prunes_lapsed_waits_and_expired_events() -> None:
    lapsed = wait("ex-1", "T-1", expires_at=NOW + 10)
    old = KeptEvent(ticket_event("e1", "T-9"), NOW + 10)
    fresh = KeptEvent(ticket_event("e2", "T-9"), NOW + 11)
    waits = Waits(waiting=(lapsed,), kept=(old, fresh))
    w = wait("ex-2", "T-2")
    after, delivered = register(waits, w, NOW + 10, same_ticket)
    assert delivered == []
    assert after == Waits(waiting=(w,), kept=(fresh,))


def test_an_event_goes_to_every_matching_wait_and_the_others_keep_waiting() -> None:
    first, second = wait("ex-1", "T-1"), wait("ex-2", "T-1")
    other = wait("ex-3", "T-2")
    waits = Waits()
    for w in (first, other, second):
        waits, _ = register(waits, w, NOW, same_ticket)

    event = ticket_event("e1", "T-1")
    waits, delivered = occur(waits, event, NOW + 1, KEEP_MS, same_ticket)
    assert delivered == [arrival(first, event, NOW + 1), arrival(second, event, NOW + 1)]
    assert waits.waiting == (other,)

    # A later event for the same ticket finds no one: the waits it would match have ended.
    waits, delivered = occur(waits, ticket_event("e2", "T-1"), NOW + 2, KEEP_MS, same_ticket)
    assert delivered == []
    assert waits.waiting == (other,)


def test_a_redelivered_event_delivers_nothing_new() -> None:
    w = wait("ex-1", "T-1")
    waits, _ = register(Waits(), w, NOW, same_ticket)
    event = ticket_event("e1", "T-1")
    once, delivered = occur(waits, event, NOW + 1, KEEP_MS, same_ticket)
    assert len(delivered) == 1

    # A wait that began since, matching the event, got it from the kept list then.
    later = wait("ex-2", "T-1")
    twice, delivered = register(once, later, NOW + 2, same_ticket)
    assert delivered == [arrival(later, event, NOW + 2)]

    again, delivered = occur(twice, {**event}, NOW + 3, KEEP_MS, same_ticket)
    assert delivered == []
    assert again == twice, "the redelivery is not kept a second time"


def test_the_same_id_from_another_source_is_another_event() -> None:
    waits, _ = occur(Waits(), ticket_event("e1", "T-9", "/crm"), NOW, KEEP_MS, same_ticket)
    w = wait("ex-1", "T-1")
    waits, _ = register(waits, w, NOW, same_ticket)
    event = ticket_event("e1", "T-1", "/erp")
    after, delivered = occur(waits, event, NOW + 1, KEEP_MS, same_ticket)
    assert delivered == [arrival(w, event, NOW + 1)]
    assert len(after.kept) == 2


def test_the_kept_events_are_capped_and_the_oldest_go_first() -> None:
    full = Waits(
        kept=tuple(
            KeptEvent(ticket_event(f"e{i}", "T-0"), NOW + KEEP_MS) for i in range(KEPT_EVENTS_LIMIT)
        )
    )
    newest = ticket_event("newest", "T-0")
    after, _ = occur(full, newest, NOW, KEEP_MS, same_ticket)
    assert len(after.kept) == KEPT_EVENTS_LIMIT
    assert after.kept[0].event["id"] == "e1"
    assert after.kept[-1] == KeptEvent(newest, NOW + KEEP_MS)


def test_the_same_registration_twice_registers_once() -> None:
    w = wait("ex-1", "T-1")
    waits, _ = register(Waits(), w, NOW, same_ticket)
    again, delivered = register(waits, w, NOW + 1, same_ticket)
    assert delivered == []
    assert again.waiting == (w,)
