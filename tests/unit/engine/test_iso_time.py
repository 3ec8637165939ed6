"""The times the engine writes into events and outputs: ISO-8601 UTC, to the millisecond."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from braidflow.engine.state import iso_time

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Year 1 to the last millisecond of year 9999, in epoch milliseconds.
FIRST_MS = -62_135_596_800_000
LAST_MS = 253_402_300_799_999


@given(st.integers(FIRST_MS, LAST_MS))
def test_a_time_is_its_utc_date_and_time_to_the_millisecond(ms: int) -> None:
    exact = (EPOCH + timedelta(milliseconds=ms)).isoformat(timespec="milliseconds")
    assert iso_time(ms) == exact.replace("+00:00", "Z")


def test_times_of_one_second_differ_in_their_milliseconds_only() -> None:
    assert [iso_time(1_763_774_042_000 + ms) for ms in (0, 7, 123, 999)] == [
        "2025-11-22T01:14:02.000Z",
        "2025-11-22T01:14:02.007Z",
        "2025-11-22T01:14:02.123Z",
        "2025-11-22T01:14:02.999Z",
    ]
    assert iso_time(1_763_774_043_000) == "2025-11-22T01:14:03.000Z"


def test_a_time_before_1970_counts_back_from_it() -> None:
    assert iso_time(-1) == "1969-12-31T23:59:59.999Z"


@pytest.mark.parametrize("ms", [LAST_MS + 1, FIRST_MS - 1, 10**30])
def test_a_time_past_the_years_iso_8601_holds_is_refused(ms: int) -> None:
    with pytest.raises((ValueError, OverflowError, OSError)):
        iso_time(ms)
