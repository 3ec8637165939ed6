"""Timestamps read to epoch milliseconds."""

from __future__ import annotations

import pytest

from braidflow.topology.durations import parse_timestamp

# Timestamps


def test_timestamps_are_read_to_epoch_milliseconds() -> None:
    assert parse_timestamp("1970-01-01T00:00:01.5Z") == 1_500
    assert parse_timestamp("2027-01-04T09:00:00+01:00") == parse_timestamp("2027-01-04T08:00:00Z")
    with pytest.raises(ValueError, match="with an offset or Z"):
        parse_timestamp("2027-01-04")
