"""Commits never pass a record still running, whatever order records finish in."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from braidflow.streams.offsets import OffsetTracker, PartitionOffsets


def test_nothing_to_commit_before_any_record() -> None:
    assert PartitionOffsets().safe is None
    assert OffsetTracker[str]().to_commit() == {}


def test_the_commit_stops_at_the_first_record_still_running() -> None:
    offsets = PartitionOffsets()
    for offset in (10, 11, 12):
        offsets.start(offset)
    offsets.finish(11)
    offsets.finish(12)
    assert offsets.safe == 10
    offsets.finish(10)
    assert offsets.safe == 13


def test_gaps_in_offsets_are_fine() -> None:
    offsets = PartitionOffsets()
    offsets.start(3)
    offsets.start(7)
    offsets.finish(3)
    assert offsets.safe == 7
    offsets.finish(7)
    assert offsets.safe == 8


def test_a_partition_is_committed_again_only_when_its_safe_offset_moves() -> None:
    tracker: OffsetTracker[str] = OffsetTracker()
    tracker.partition("a").start(0)
    tracker.partition("b").start(0)
    tracker.partition("b").finish(0)
    assert tracker.to_commit() == {"a": 0, "b": 1}
    tracker.mark_committed({"a": 0, "b": 1})
    assert tracker.to_commit() == {}
    tracker.partition("a").finish(0)
    assert tracker.to_commit() == {"a": 1}


def test_commits_can_be_asked_for_some_partitions_only() -> None:
    tracker: OffsetTracker[str] = OffsetTracker()
    for key in ("a", "b"):
        tracker.partition(key).start(5)
        tracker.partition(key).finish(5)
    assert tracker.to_commit(["b", "unknown"]) == {"b": 6}


def test_a_forgotten_partition_ignores_tasks_that_finish_later() -> None:
    tracker: OffsetTracker[str] = OffsetTracker()
    old = tracker.partition("a")
    old.start(4)
    tracker.forget(["a"])
    old.finish(4)
    assert tracker.to_commit() == {}
    assert tracker.partition("a") is not old
    assert tracker.in_flight == 0


def test_a_reread_record_never_moves_the_commit_backwards_once_done() -> None:
    offsets = PartitionOffsets()
    offsets.start(8)
    offsets.finish(8)
    offsets.start(5)  # the consumer was reset to an earlier position
    assert offsets.safe == 5
    offsets.finish(5)
    assert offsets.safe == 9


@given(st.data(), st.integers(min_value=1, max_value=40))
def test_the_safe_offset_is_never_past_an_unfinished_record(
    data: st.DataObject, count: int
) -> None:
    gaps = data.draw(st.lists(st.integers(1, 3), min_size=count, max_size=count))
    started = [sum(gaps[: i + 1]) for i in range(count)]
    finish_order = data.draw(st.permutations(started))
    finished_count = data.draw(st.integers(0, count))
    offsets = PartitionOffsets()
    for offset in started:
        offsets.start(offset)
    finished = set(finish_order[:finished_count])
    for offset in finished:
        offsets.finish(offset)
    unfinished = [o for o in started if o not in finished]
    safe = offsets.safe
    assert safe is not None
    if unfinished:
        assert safe == min(unfinished)
    else:
        assert safe == started[-1] + 1
    # Every record below the safe offset is finished: a restart from there loses nothing.
    assert all(o in finished for o in started if o < safe)
