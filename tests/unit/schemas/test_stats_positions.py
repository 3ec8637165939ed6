"""A bucket counts each lifecycle event once however often its observations are sent: it keeps
the offset of the last record counted from each lifecycle partition."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from braidflow.schemas.stats_figures import Observation, fold
from braidflow.schemas.stats_observations import StatsRecord
from braidflow.schemas.stats_positions import READ, unread

STARTED, DONE = Observation("started"), Observation("completed", None, 7)


def counted(bucket: dict, record: StatsRecord) -> tuple[dict, list[Observation]]:
    fresh, read = unread(bucket, record)
    return {**fold(bucket, fresh), READ: read}, fresh


def test_records_sent_again_after_a_crash_count_once() -> None:
    first = StatsRecord("w", None, (STARTED, DONE), ((0, 10), (1, 4)))
    bucket, fresh = counted({}, first)
    assert fresh == [STARTED, DONE] and bucket[READ] == {"0": 10, "1": 4}
    # Read again from an earlier commit, in other batches: the part counted is skipped.
    again = StatsRecord("w", None, (STARTED, DONE, STARTED), ((0, 9), (0, 10), (0, 11)))
    bucket, fresh = counted(bucket, again)
    assert fresh == [STARTED] and bucket[READ] == {"0": 11, "1": 4}
    assert bucket["counts"] == {"started": 2, "completed": 1}
    bucket, fresh = counted(bucket, first)
    assert fresh == [] and bucket["counts"] == {"started": 2, "completed": 1}


def test_one_event_that_says_several_things_counts_them_all() -> None:
    record = StatsRecord("w", None, (DONE, Observation("retries")), ((2, 5), (2, 5)))
    assert unread({}, record) == ([DONE, Observation("retries")], {"2": 5})


def test_a_record_without_sources_is_counted_whole() -> None:
    record = StatsRecord("w", None, (STARTED,))
    assert unread({READ: {"0": 99}}, record) == ([STARTED], {"0": 99})


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(st.integers(0, 3).map(str), st.integers(-1, 30), max_size=4),
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 30)), max_size=12),
)
def test_what_is_unread_is_what_lies_past_the_position_before_the_record(
    before: dict[str, int], sources: list[tuple[int, int]]
) -> None:
    said = tuple(Observation("started", str(i)) for i in range(len(sources)))
    fresh, read = unread({READ: before}, StatsRecord("w", None, said, tuple(sources)))
    past = [i for i, (p, o) in enumerate(sources) if o > before.get(str(p), -1)]
    assert fresh == [said[i] for i in past]
    expected = dict(before)
    for i in past:
        partition, offset = sources[i]
        expected[str(partition)] = max(offset, expected.get(str(partition), -1))
    assert read == expected
