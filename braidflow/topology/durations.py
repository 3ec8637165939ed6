"""Durations as the format writes them: `500ms`, `10s`, `5m`, `24h`, `7d`."""

from __future__ import annotations

import re

DURATION_PATTERN = r"^[0-9]+(ms|s|m|h|d)$"
_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
_DURATION = re.compile(DURATION_PATTERN)


def parse_duration(text: str) -> int:
    """Milliseconds in a duration string; ValueError names the bad text."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration (use e.g. 500ms, 10s, 5m, 24h, 7d)")
    return int(text[: match.start(1)]) * _UNIT_MS[match.group(1)]
