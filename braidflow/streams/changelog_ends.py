"""Changelog ends as they are, for Faust's recovery on braidflow's embedded broker.

Tansu 0.6 answers ListOffsets(latest) with the base offset of a partition's last batch
plus one, not the offset past its last record (DESIGN.md). Faust's recovery reads a
changelog up to that "end": it then stops short of the last records of a batch, and a
worker whose store holds an offset past it stops with a ConsistencyError. A worker that
wrote more batches since the last settling (`connectors.broker.settle_changelogs`) meets
this at the next rebalance: two workers, one killed, took the survivor down too.

A fetch answers with the partition's true high watermark, on Tansu as on Apache Kafka.
So on the embedded broker only (its cluster id says so), each recovery's ends are read
from the high watermark of a fetch answer for each changelog partition. Other brokers keep
Faust's own.

The watermark is taken from the first answer, not from reading the records up to it: Tansu
0.6 lists every batch of a partition on each fetch, within the fetch's wait, and answers
without records when the listing does not get to the offset asked for (at a 5 ms wait, past
some 7,000 batches; sooner under load). Read to its end, a changelog of 100,000 parked
executions never answered, and the worker stopped in recovery. The watermark comes with
every answer, records or not: librdkafka keeps it (`get_watermark_offsets(cached=True)`).

Faust then reads the changelogs up to those ends with the worker's consumer, whose fetch wait
(5 ms in dev mode) is too short for that listing past some 7,000 batches: on the embedded
broker, while a recovery runs, that consumer fetches with `RECOVERY_FETCH_WAIT_MS`. Tansu
answers as soon as records come, so the longer wait costs nothing while a recovery reads;
the agents' streams are paused meanwhile, and the worker's own wait is back once it ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Collection
from typing import Any

from faust.tables.recovery import Recovery

from braidflow.kafka_connection import KafkaConnection
from braidflow.partition_ends import fetched_ends

log = logging.getLogger(__name__)

# The broker of each app whose recovery reads true ends, by id(app).
_TRUE_END_BROKERS: dict[int, KafkaConnection] = {}
# Tansu lists about a batch a microsecond, fewer under load: room for some 100,000s.
RECOVERY_FETCH_WAIT_MS = 500


def read_true_ends(app: Any, broker: KafkaConnection) -> None:
    """Make `app`'s table recovery take each changelog's end from a fetch."""
    _patch_recovery()
    _TRUE_END_BROKERS[id(app)] = broker


def _patch_recovery() -> None:
    if getattr(Recovery, "_braidflow_true_ends", False):
        return
    original = Recovery._build_highwaters

    async def build_highwaters(
        self: Any, consumer: Any, tps: Collection[Any], destination: Any, title: str
    ) -> None:
        await original(self, consumer, tps, destination, title)
        broker = _TRUE_END_BROKERS.get(id(self.app))
        if broker is None:
            return
        # Faust keeps the offset of the last record: the end less one.
        reported = {(tp.topic, tp.partition): destination[tp] + 1 for tp in tps}
        ends = await asyncio.to_thread(fetched_ends, broker, reported)
        for tp in tps:
            end = ends.get((tp.topic, tp.partition))
            if end is not None and end - 1 > destination[tp]:
                log.info(
                    "%s[%d] ends at %d, not %d", tp.topic, tp.partition, end, destination[tp] + 1
                )
                destination[tp] = end - 1

    started, ended = Recovery._set_recovery_started, Recovery._set_recovery_ended

    def set_recovery_started(self: Any) -> None:
        started(self)
        if id(self.app) in _TRUE_END_BROKERS:
            _set_fetch_wait(self.app, RECOVERY_FETCH_WAIT_MS)

    def set_recovery_ended(self: Any) -> None:
        ended(self)
        if id(self.app) in _TRUE_END_BROKERS:
            _set_fetch_wait(self.app, None)

    Recovery._build_highwaters = build_highwaters
    Recovery._set_recovery_started = set_recovery_started
    Recovery._set_recovery_ended = set_recovery_ended
    Recovery._braidflow_true_ends = True


# The fetch wait each app's consumer had before its recovery raised it, by id(app).
_OWN_FETCH_WAITS: dict[int, int] = {}


def _set_fetch_wait(app: Any, wait_ms: int | None) -> None:
    """Make `app`'s aiokafka consumer fetch with `wait_ms`; None: with its own wait again."""
    thread = getattr(app.consumer, "_thread", None)
    fetcher = getattr(getattr(thread, "_consumer", None), "_fetcher", None)
    if fetcher is None:
        # Not started: it fetches with its own wait when it starts.
        return
    own = _OWN_FETCH_WAITS.setdefault(id(app), fetcher._fetch_max_wait_ms)
    # An int the fetcher reads for each request it makes: no hand-over to its loop needed.
    wanted = own if wait_ms is None else max(own, wait_ms)
    if fetcher._fetch_max_wait_ms != wanted:
        log.info("the consumer's fetches wait up to %d ms", wanted)
        fetcher._fetch_max_wait_ms = wanted
