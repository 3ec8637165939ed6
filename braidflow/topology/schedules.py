"""Cron schedules: checking a `schedule` trigger, and the slots it fires at.

A cron has 5 fields (minute hour day-of-month month day-of-week) or 6, where
the sixth is the second (croniter's `second_at_beginning=False`):
`* * * * * */2` fires every two seconds. Aliases (`@daily`), a year field and
croniter's random/hashed `R`/`H` fields are refused: a schedule must fire at
the same slots on every worker.

Slots are read on the wall clock of the trigger's time zone. Where a
daylight-saving change skips local times, a slot in the gap fires as if the
clock had not moved yet (02:30 on a spring-forward night in Berlin fires at
03:30 CEST); where local times repeat, a slot fires once, on its first
occurrence. So a daily job runs exactly once every day.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadDateError, croniter

from braidflow.topology.model import ScheduleTrigger

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RANDOM_FIELD = re.compile(r"^[HR](\(|/|$)", re.IGNORECASE)
# croniter's messages start by echoing the expression: `[61 * * * *] is not acceptable, out of range`.
_ECHO = re.compile(r"^\[[^\]]*\]\s*(is not acceptable)?[,\s]*")
# Far enough back to cover the longest skip of local time in the tz database (a day).
_GAP_LOOKBACK = timedelta(days=1)


def cron_problem(cron: str) -> str | None:
    """Why `cron` cannot be a schedule, or None when it can."""
    fields = cron.split()
    if len(fields) not in (5, 6):
        counted = f"{len(fields)} field{'' if len(fields) == 1 else 's'}"
        return (
            f"{cron!r} has {counted}; use 5 (minute hour day-of-month month day-of-week)"
            " or 6 (the same, then the second)"
        )
    if any(_RANDOM_FIELD.match(f) for f in fields):
        return f"{cron!r}: random (R) and hashed (H) fields are not supported"
    try:
        # A fixed start keeps validation pure; it also finds crons that never fire (`0 0 31 2 *`).
        croniter(cron, datetime(2000, 1, 1), second_at_beginning=False).get_next(datetime)
    except CroniterBadDateError:
        return f"{cron!r} never matches a date"
    except (ValueError, KeyError) as exc:
        reason = _ECHO.sub("", str(exc))
        return f"{cron!r} is not a valid cron expression" + (f" ({reason})" if reason else "")
    return None


def timezone_problem(name: str) -> str | None:
    """Why `name` is not a time zone, or None when it is one."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return f"unknown time zone {name!r} (use an IANA name such as Europe/Berlin)"
    return None


def schedule_slots(
    trigger: ScheduleTrigger, after_ms: int, until_ms: int, limit: int = 1000
) -> list[int]:
    """The first `limit` slots of `trigger` in (after_ms, until_ms], as epoch milliseconds.

    A caller that gets `limit` slots back asks again from the last one.
    """
    zone = ZoneInfo(trigger.timezone)
    after = _EPOCH + timedelta(milliseconds=after_ms)
    # Slots in a spring-forward gap fire later than their wall-clock reading, so
    # the walk starts on the wall clock as it read before a change in the last day;
    # and a second early, as croniter gives the slots strictly after its start.
    offset = min(_offset(after, zone), _offset(after - _GAP_LOOKBACK, zone))
    start = (after + offset).replace(tzinfo=None) - timedelta(seconds=1)
    walk = croniter(trigger.cron, start, second_at_beginning=False)
    found: set[int] = set()
    while True:
        try:
            wall = walk.get_next(datetime)
        except CroniterBadDateError:
            break
        local = wall.replace(tzinfo=zone)  # fold=0: first occurrence, or before a gap
        slot = (local - _EPOCH) // timedelta(milliseconds=1)
        in_gap = local.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != wall
        if after_ms < slot <= until_ms:
            found.add(slot)
        # Past a gap, slots come in time order again: none later can be earlier than this one.
        if not in_gap and (
            slot > until_ms or (len(found) >= limit and sum(s <= slot for s in found) >= limit)
        ):
            break
    return sorted(found)[:limit]


def _offset(moment: datetime, zone: ZoneInfo) -> timedelta:
    return moment.astimezone(zone).utcoffset() or timedelta(0)
