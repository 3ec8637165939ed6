"""Correlation of domain events with waiting executions, for one event type. Pure.

The waits of one event type and the recent events of that type live together in
one row keyed by the type, so an arriving event meets only the executions that
wait for its type, never a scan of all executions. An event that arrives before
the wait begins is kept for a while and delivered when the wait registers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from braidflow.engine import ids
from braidflow.engine.messages import AwaitEvent, EventArrived

Matches = Callable[[AwaitEvent, Mapping[str, Any]], bool]
"""Whether a registration's correlate expression holds for an event (its CloudEvent scope)."""

KEPT_EVENTS_LIMIT = 1_000
"""Events kept per type for waits that begin later; the oldest go first beyond it."""


@dataclass(frozen=True, slots=True)
class KeptEvent:
    """An event kept for waits that have not begun yet, until `kept_until` (epoch ms)."""

    event: Mapping[str, Any]
    kept_until: int


@dataclass(frozen=True, slots=True)
class Waits:
    """The waits registered for one event type and the events of that type still kept."""

    waiting: tuple[AwaitEvent, ...] = ()
    kept: tuple[KeptEvent, ...] = ()


def _arrival(registration: AwaitEvent, event: Mapping[str, Any], now: int) -> EventArrived:
    return EventArrived(
        ids.arrived_id(registration.id),
        registration.execution_id,
        now,
        registration.node_id,
        event,
    )


def _live(waits: Waits, now: int) -> Waits:
    """Without lapsed waits and expired events."""
    return Waits(
        tuple(w for w in waits.waiting if w.expires_at is None or w.expires_at > now),
        tuple(k for k in waits.kept if k.kept_until > now),
    )


def register(
    waits: Waits, registration: AwaitEvent, now: int, matches: Matches
) -> tuple[Waits, list[EventArrived]]:
    """A wait begins: deliver the oldest kept event it matches, or keep waiting."""
    waits = _live(waits, now)
    if any(w.id == registration.id for w in waits.waiting):
        return waits, []
    for kept in waits.kept:
        if matches(registration, kept.event):
            return waits, [_arrival(registration, kept.event, now)]
    return Waits((*waits.waiting, registration), waits.kept), []


def occur(
    waits: Waits, event: Mapping[str, Any], now: int, keep_ms: int, matches: Matches
) -> tuple[Waits, list[EventArrived]]:
    """An event arrives: deliver it to every wait it matches, and keep it for later waits."""
    waits = _live(waits, now)
    if any(
        k.event.get("id") == event.get("id") and k.event.get("source") == event.get("source")
        for k in waits.kept
    ):
        # The same event again (a redelivery): it was delivered when it first came.
        return waits, []
    delivered, still = [], []
    for registration in waits.waiting:
        if matches(registration, event):
            delivered.append(_arrival(registration, event, now))
        else:
            still.append(registration)
    kept = (*waits.kept, KeptEvent(event, now + keep_ms))[-KEPT_EVENTS_LIMIT:]
    return Waits(tuple(still), kept), delivered
