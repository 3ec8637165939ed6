"""The stall of a librdkafka consumer on the embedded broker, told from its reads."""

from __future__ import annotations

from braidflow.fetch_stall import MAX_WAIT_MS, StallWatch, behind, longer_wait


def test_behind_when_a_high_watermark_is_past_its_position() -> None:
    assert behind([(10, 10), (4, 7)])
    assert not behind([(10, 10), (7, 7)])
    assert not behind([])


def test_unknown_positions_and_watermarks_are_not_behind() -> None:
    # librdkafka's OFFSET_INVALID (-1001) before a record is read, -1 before a fetch answer.
    assert not behind([(-1001, 50), (3, -1)])


def test_a_stall_is_behind_and_empty_for_the_whole_stall_time() -> None:
    watch = StallWatch(stall_s=1.0)
    assert not watch.read(0.0, records=False, is_behind=True)
    assert not watch.read(0.6, records=False, is_behind=True)
    assert watch.read(1.0, records=False, is_behind=True)


def test_records_or_being_at_the_end_start_the_stall_time_again() -> None:
    watch = StallWatch(stall_s=1.0)
    watch.read(0.0, records=False, is_behind=True)
    assert not watch.read(0.9, records=True, is_behind=False)
    assert not watch.read(1.5, records=False, is_behind=True)
    assert not watch.read(2.0, records=False, is_behind=False)
    assert not watch.read(2.9, records=False, is_behind=True)
    assert watch.read(3.9, records=False, is_behind=True)


def test_after_a_stall_it_takes_the_whole_stall_time_again() -> None:
    watch = StallWatch(stall_s=1.0)
    watch.read(0.0, records=False, is_behind=True)
    assert watch.read(1.0, records=False, is_behind=True)
    assert not watch.read(1.5, records=False, is_behind=True)
    assert not watch.read(2.0, records=False, is_behind=True)
    assert watch.read(2.5, records=False, is_behind=True)


def test_the_wait_grows_to_the_most_and_no_further() -> None:
    waits = [5]
    while (wait := longer_wait(waits[-1])) is not None:
        waits.append(wait)
    assert waits == [5, 20, 80, 320, MAX_WAIT_MS]
    assert longer_wait(0) == 1
