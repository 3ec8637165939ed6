"""`braidflow backfill`: the times it takes and the line it prints."""

from __future__ import annotations

import pytest

from braidflow.client_cli import backfill_line, backfill_time

NOW = 1_796_500_000_000  # 2026-12-05T19:46:40Z


def test_a_time_ago_counts_back_from_now() -> None:
    assert backfill_time("-2h", NOW) == "2026-12-05T17:46:40.000Z"
    assert backfill_time("-90m", NOW) == "2026-12-05T18:16:40.000Z"
    assert backfill_time("-7d", NOW) == "2026-11-28T19:46:40.000Z"


def test_an_iso_time_goes_to_the_api_as_given() -> None:
    assert backfill_time("2026-12-05T09:00:00+01:00", NOW) == "2026-12-05T09:00:00+01:00"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("yesterday", "'yesterday' is not an ISO-8601 timestamp with an offset or Z"),
        ("2026-12-05T09:00:00", "is not an ISO-8601 timestamp with an offset or Z"),
        ("-2 hours", "'-2 hours' is not a time ago such as -30m, -2h or -7d"),
    ],
)
def test_other_times_are_refused_naming_them(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        backfill_time(text, NOW)


def test_the_report_line_says_what_matched_and_what_started() -> None:
    report = {
        "workflow_id": "triage",
        "from": "2026-12-05T17:00:00.000Z",
        "to": "2026-12-05T19:00:00.000Z",
        "read": 12,
        "matched": 4,
        "started": 3,
        "already_started": 1,
    }
    assert backfill_line(report) == (
        "triage: 4 events matched from 2026-12-05T17:00:00.000Z to 2026-12-05T19:00:00.000Z:"
        " 3 started, 1 already started (12 records read)"
    )


def test_starts_the_broker_refused_are_told() -> None:
    report = {"workflow_id": "w", "from": "a", "to": "b", "read": 2, "matched": 2}
    line = backfill_line({**report, "started": 1, "already_started": 0, "refused": 1})
    assert "1 started, 0 already started, 1 refused (the worker log says why)" in line
