"""Durations (`500ms`, `10s`, `5m`, `24h`, `7d`) and timestamps as the format writes them."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

DURATION_PATTERN = r"^[0-9]+(ms|s|m|h|d)$"
_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION = re.compile(DURATION_PATTERN)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def parse_duration(text: str) -> int:
    """Milliseconds in a duration string; ValueError names the bad text."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration (use e.g. 500ms, 10s, 5m, 24h, 7d)")
    return int(text[: match.start(1)]) * _UNIT_MS[match.group(1)]


def parse_timestamp(text: str) -> int:
    """Epoch milliseconds of an ISO-8601 timestamp with an offset or `Z`; ValueError otherwise.

    A timestamp without an offset is refused: which zone it means would be a guess.
    """
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ValueError(f"{text!r} is not an ISO-8601 timestamp with an offset or Z")
    return (moment - _EPOCH) // timedelta(milliseconds=1)
