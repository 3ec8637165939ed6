"""Which observations a stats bucket has counted already. Pure.

The stats' first stage commits its position on the lifecycle topic after it sends what a
batch said, so a worker killed in between sends those observations again; the second stage
reads the stats topic at least once too. So every bucket keeps, beside its figures and in the
same table row (one changelog record, written at once), the offset of the last lifecycle
record it counted from each lifecycle partition (`"read"`). A key's records reach its bucket
in the order of their lifecycle records (`stats_observations.Gathering`): an observation from
at or before that offset was counted, one after it was not. A SIGKILL anywhere then neither
loses an event (the first stage reads again from its last commit) nor counts one twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from braidflow.schemas.stats_figures import Observation
from braidflow.schemas.stats_observations import StatsRecord

READ = "read"
"""The bucket's field: lifecycle partition (as text: the bucket is JSON) to the offset of
the last record counted from it."""


def unread(
    bucket: Mapping[str, Any], record: StatsRecord
) -> tuple[list[Observation], dict[str, int]]:
    """The observations of `record` that `bucket` has not counted, and the bucket's `READ`
    after counting them (the record's last offset per partition where it goes further). A
    record without sources is counted whole."""
    before: Mapping[str, int] = bucket.get(READ) or {}
    read = dict(before)
    if not record.sources:
        return list(record.observations), read
    # The position before the record, and the record's furthest offset, once per partition:
    # a record holds up to a batch's observations, from a few partitions.
    floors: dict[int, int] = {}
    furthest: dict[int, int] = {}
    fresh = []
    for observation, (partition, offset) in zip(record.observations, record.sources, strict=True):
        floor = floors.get(partition)
        if floor is None:
            floor = floors[partition] = before.get(str(partition), -1)
        # Against the position before the record: one event may say several things.
        if offset > floor:
            fresh.append(observation)
            if offset > furthest.get(partition, -1):
                furthest[partition] = offset
    for partition, offset in furthest.items():
        read[str(partition)] = offset
    return fresh, read
