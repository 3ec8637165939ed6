"""An event starts a workflow only when the version carrying its trigger was deployed first."""

from __future__ import annotations

from braidflow.topology.deployed_before import carried_since, happened_after, waited_for
from braidflow.topology.model import EventTrigger, WebhookTrigger

OPENED = EventTrigger(("ticket.opened",))
CLOSED = EventTrigger(("ticket.closed",))


def test_an_event_from_before_the_deployment_starts_nothing() -> None:
    assert not happened_after(9_000, 10_000, tolerance_ms=0)


def test_an_event_from_after_the_deployment_or_at_its_instant_starts_it() -> None:
    assert happened_after(10_001, 10_000, tolerance_ms=0)
    assert happened_after(10_000, 10_000, tolerance_ms=0)


def test_a_producer_clock_lagging_within_the_tolerance_still_starts_it() -> None:
    assert happened_after(8_000, 10_000, tolerance_ms=2_000)
    assert not happened_after(7_999, 10_000, tolerance_ms=2_000)


def test_an_event_without_a_time_starts_it() -> None:
    assert happened_after(None, 10_000, tolerance_ms=0)


def test_a_trigger_carried_by_every_version_counts_from_the_first() -> None:
    assert carried_since([(OPENED,), (OPENED, CLOSED), (CLOSED, OPENED)], OPENED) == 0


def test_a_trigger_added_by_a_redeploy_counts_from_that_version() -> None:
    assert carried_since([(CLOSED,), (CLOSED, OPENED)], OPENED) == 1


def test_a_trigger_dropped_and_added_again_counts_from_its_return() -> None:
    versions = [(OPENED,), (WebhookTrigger("x"),), (OPENED,), (OPENED,)]
    assert carried_since(versions, OPENED) == 2


def test_a_trigger_whose_filter_changed_is_another_trigger() -> None:
    filtered = EventTrigger(("ticket.opened",), when="event.data.priority == 'high'")
    assert carried_since([(OPENED,), (filtered,)], filtered) == 1


def test_a_trigger_the_latest_version_lacks_is_carried_by_none() -> None:
    assert carried_since([(OPENED,), (CLOSED,)], OPENED) is None
    assert carried_since([], OPENED) is None


def test_a_wait_sees_events_kept_from_before_the_first_version_that_waits() -> None:
    hour = 3_600_000
    deployed = 100 * hour
    assert waited_for(deployed - hour + 1, deployed, keep_ms=hour, tolerance_ms=0)
    assert waited_for(deployed + 5, deployed, keep_ms=hour, tolerance_ms=0)
    assert not waited_for(deployed - 2 * hour, deployed, keep_ms=hour, tolerance_ms=0)
