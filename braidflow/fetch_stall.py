"""On the embedded broker, a librdkafka consumer that stopped getting records gets a longer wait.

Tansu 0.6 lists every batch of a partition on each fetch, within the fetch's wait, and
answers without records when the listing does not end in time (`streams/fetch_wait.py`): at
dev mode's 5 ms wait, past some 7,500 batches of a partition. librdkafka's `fetch.wait.max.ms`
cannot change while a consumer runs, so the worker's librdkafka consumers (the event router,
the lifecycle reader, the read models' projections) watch for the stall: a partition whose cached high watermark (every
fetch answer carries it, with or without records) is past the consumer's position while
reads come back empty for `STALL_S`. The consumer is then closed, its work committed as its
own rules say, and made again with `FETCH_GROWTH` times the wait, up to `MAX_WAIT_MS`; it
keeps that wait (a partition only grows on a dev broker). The cost of a longer wait: Tansu
holds a fetch at the end for its whole wait, so a new record waits half of it on average.

Only on the embedded broker (`watch_stalls`): elsewhere a position behind the high
watermark may be a transaction marker, with nothing to read.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import confluent_kafka

# Reads behind the high watermark that came back empty for this long: a stall. librdkafka
# fetches all the while (every 5 ms at dev's wait), so a second is hundreds of misses.
STALL_S = 1.0
FETCH_GROWTH = 4
# As `fetch_wait.MAX_WAIT_MS`: room for Tansu to list some 100,000s of batches.
MAX_WAIT_MS = 500

_watching = False


def watch_stalls() -> None:
    """Watch the stalls of this process's librdkafka consumers (the embedded broker's)."""
    global _watching
    _watching = True


def longer_wait(wait_ms: int) -> int | None:
    """The wait after a stall at `wait_ms`; None when it is at the most already."""
    if wait_ms >= MAX_WAIT_MS:
        return None
    return min(max(wait_ms * FETCH_GROWTH, wait_ms + 1), MAX_WAIT_MS)


def behind(positions: Iterable[tuple[int, int]]) -> bool:
    """Whether some partition's high watermark is past its position, from (position, high
    watermark) pairs; negative ones are unknown (nothing read yet, no fetch answer yet)."""
    return any(0 <= position < high for position, high in positions)


class StallWatch:
    """Tells a stall from the reads of one consumer: behind, and nothing read, for `STALL_S`."""

    def __init__(self, stall_s: float = STALL_S) -> None:
        self._stall_s = stall_s
        self._empty_since: float | None = None

    def read(self, now: float, records: bool, is_behind: bool) -> bool:
        """A read at `now` that brought `records` or not; True when the consumer stalled."""
        if records or not is_behind:
            self._empty_since = None
            return False
        if self._empty_since is None:
            self._empty_since = now
        if now - self._empty_since >= self._stall_s:
            self._empty_since = None
            return True
        return False


def consumer_behind(consumer: confluent_kafka.Consumer) -> bool:
    """Whether a partition assigned to `consumer` has records past its position, by the
    high watermarks of its last fetch answers (no request to the broker)."""
    positions = consumer.position(consumer.assignment())
    pairs: list[tuple[int, int]] = []
    for tp in positions:
        _, high = consumer.get_watermark_offsets(tp, cached=True)
        pairs.append((tp.offset, high))
    return behind(pairs)


def stalled(watch: StallWatch, consumer: Any, now: float, records: bool) -> bool:
    """`watch.read` for a read of `consumer`; never a stall unless `watch_stalls` ran."""
    if not _watching:
        return False
    return watch.read(now, records, not records and consumer_behind(consumer))
