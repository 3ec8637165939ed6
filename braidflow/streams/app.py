"""The Faust app: its settings, topics and tables (executions, timers, waits)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import faust
from faust.transport import consumer as faust_consumer
from faust.transport.drivers import aiokafka as faust_aiokafka

from braidflow.config import Settings
from braidflow.streams.changelog_fetch import patch_changelog_fetch
from braidflow.streams.loop_consumer import patch_loop_consumer
from braidflow.streams.partitioner import KeyPartitioner
from braidflow.streams.quick_changelog import QuickChangelogTable
from braidflow.streams.quick_send import patch_quick_send
from braidflow.streams.quick_start import patch_start_waits
from braidflow.streams.table_databases import patch_table_databases
from braidflow.streams.transitions_reader import patch_transitions_apart

_FETCH_MAX_WAIT_MS: dict[int, int] = {}


def _patch_fetch_wait() -> None:
    """Make Faust's consumer honour `Settings.agent_fetch_wait_ms`.

    faust-streaming 0.15 builds its aiokafka consumer with a hard-coded
    `fetch_max_wait_ms=1500`. A broker that answers a fetch only when the wait
    is over (the embedded one does) then adds up to 1.5 s to every hop. The
    consumer reads the value only when it starts, so setting it right after
    construction is enough.

    Not `fetch_max_wait_ms`: the transitions have a reader of their own
    (`transitions_reader.py`), and what this consumer still reads (admissions,
    awaited events, stats records, Faust's own topics) comes now and then and
    waits for nothing hop by hop. At dev mode's 5 ms it fetched some 90 times a
    second with nothing to read, a third of an idle worker's fetches
    (docs/performance-history.md, "Faust's consumer at the agents' wait").
    """
    thread_class = faust_aiokafka.AIOKafkaConsumerThread
    if getattr(thread_class, "_braidflow_patched", False):
        return
    original = thread_class._create_worker_consumer

    def create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        wait = _FETCH_MAX_WAIT_MS.get(id(self.app))
        if wait is not None:
            consumer._fetch_max_wait_ms = wait
        return consumer

    thread_class._create_worker_consumer = create_worker_consumer
    thread_class._braidflow_patched = True


def _patch_seek_to_committed() -> None:
    """Make Faust's "seek back to committed offsets" rewind a partition with none committed.

    At the end of recovery, and whenever records arrive while its flow is
    stopped, faust-streaming 0.15 drops what it fetched and seeks every partition
    back to its committed offset. aiokafka's `seek_to_committed` leaves a
    partition with no committed offset (or 0) where it is, past the dropped
    records, so they were never read: a worker killed before its first commit
    left the next one without the transitions it had produced (an execution
    stuck after its start). With nothing committed, the app's reset policy
    (`earliest`) says where to read from, and that is where this seeks.
    """
    thread_class = faust_aiokafka.AIOKafkaConsumerThread
    if getattr(thread_class, "_braidflow_seek_patched", False):
        return

    async def seek_to_committed(self: Any) -> Any:
        consumer = self._ensure_consumer()
        # Changelogs are read from offsets of Faust's own (recovery seeks them itself).
        changelogs = self.app.tables.changelog_topics

        async def seek() -> Any:
            committed = await consumer.seek_to_committed()
            unset = [
                tp
                for tp, offset in committed.items()
                if (not offset or offset < 0) and tp.topic not in changelogs
            ]
            if unset:
                await consumer.seek_to_beginning(*unset)
            return committed

        return await self.call_thread(seek)

    thread_class.seek_to_committed = seek_to_committed
    thread_class._braidflow_seek_patched = True


def _patch_perform_seek() -> None:
    """Stop the consumer's flow before Faust seeks its partitions back to committed offsets.

    faust-streaming 0.15 seeks the partitions one by one (a broker round trip each for the
    committed offset) while its fetcher may still be running: on a worker's first assignment
    nothing had stopped the flow. Records fetched from a partition already sought back went
    into the agents' queues, which are cleared when the flow control resumes after the seek;
    and the read offsets set at its end made Faust take the distance to the next record for a
    gap, acknowledged and committed. A SIGKILLed worker's successor so lost records on every
    partition it resumed (issue 16): mostly ones applied already or sent again, at times a
    task's result or an admission that nothing sends again. With the flow stopped first,
    nothing is fetched until the recovery resumes it after the seek; a fetch already under
    way comes back to a stopped flow, and Faust seeks back again.
    """
    consumer_class = faust_consumer.Consumer
    if getattr(consumer_class, "_braidflow_seek_stops_flow", False):
        return
    original = consumer_class.perform_seek

    async def perform_seek(self: Any) -> None:
        self.stop_flow()
        await original(self)

    consumer_class.perform_seek = perform_seek
    consumer_class._braidflow_seek_stops_flow = True


@dataclass(frozen=True)
class FaustParts:
    """The app and the Faust objects the agents and the API share."""

    app: faust.App
    transitions: faust.TopicT
    tasks: faust.TopicT
    dead_letters: faust.TopicT
    waits_topic: faust.TopicT
    admissions_topic: faust.TopicT
    executions: faust.Table
    timers: faust.Table
    waits: faust.Table
    admissions: faust.Table


PRODUCER_BATCH_BYTES = 256 * 1024
"""What one partition's batch in a produce request may hold (aiokafka's default: 16 KiB, about
15 of a fan-out's state rows). A send to a full batch waits until a request drains it, the
orchestrator's outbox and Faust's changelog rows alike; at 256 KiB the fan-out's worker CPU per
transition fell 17-19% and the broker's by half (docs/performance-history.md, "Fewer, fuller produce
requests")."""

MIN_PER_DATABASE = 256 * 1024
"""Block cache and write buffer of one partition's database, at least: a mebibyte each, 32
partitions' databases of 7 tables held 155 MiB for 100,000 parked executions."""


def rocksdb_options(settings: Settings) -> dict[str, int]:
    """The RocksDB options of every table: Faust's default is a 2 GiB block cache per
    partition; size it on purpose."""

    def per_partition(table_bytes: int) -> int:
        return max(table_bytes // settings.partitions, MIN_PER_DATABASE)

    return {
        "block_cache_size": per_partition(settings.rocksdb_block_cache_bytes),
        "block_cache_compressed_size": 0,
        "write_buffer_size": per_partition(settings.rocksdb_write_buffer_bytes),
        "max_write_buffer_number": 2,
        "max_open_files": 256,
    }


def create_app(settings: Settings) -> FaustParts:
    """A Faust app for `settings`. Agents are attached by the orchestrator module."""
    _patch_fetch_wait()
    _patch_seek_to_committed()
    _patch_perform_seek()
    patch_start_waits()
    patch_changelog_fetch()
    patch_loop_consumer()
    patch_transitions_apart()
    patch_quick_send()
    patch_table_databases()
    # Faust creates its data directory without parents.
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    topics = settings.topics
    app = faust.App(
        settings.prefix,
        # The broker URLs and their TLS/SASL credentials (`kafka_connection`).
        **settings.kafka.faust(),
        store="rocksdb://",
        datadir=str(settings.data_dir / "faust"),
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication,
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.session_timeout_s,
        broker_heartbeat_interval=max(settings.heartbeat_s, 0.25),
        broker_rebalance_timeout=settings.rebalance_timeout_s,
        broker_max_poll_interval=settings.max_poll_interval_s,
        table_standby_replicas=0,
        stream_wait_empty=False,
        # Our own aiohttp API serves HTTP; Faust only advertises its URL in the
        # group assignment, so any worker can find the owner of an execution.
        web_enabled=False,
        web_host=settings.api_host,
        web_port=settings.api_port,
        canonical_url=settings.api_url,
        producer_linger=0.0,
        producer_partitioner=KeyPartitioner(),
        producer_acks=-1,
        producer_max_request_size=settings.max_record_bytes,
        producer_max_batch_size=min(PRODUCER_BATCH_BYTES, settings.max_record_bytes),
        Table=QuickChangelogTable,
    )
    _FETCH_MAX_WAIT_MS[id(app)] = settings.agent_fetch_wait_ms

    def raw_topic(name: str, partitions: int = settings.partitions) -> faust.TopicT:
        return app.topic(
            name,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=partitions,
        )

    def table(name: str) -> faust.Table:
        return app.Table(
            name,
            key_type=bytes,
            value_type=bytes,
            partitions=settings.partitions,
            options=rocksdb_options(settings),
        )

    return FaustParts(
        app=app,
        transitions=raw_topic(topics.transitions),
        tasks=raw_topic(topics.tasks),
        dead_letters=raw_topic(topics.dead_letters, 1),
        waits_topic=raw_topic(topics.waits),
        admissions_topic=raw_topic(topics.admissions),
        executions=table("executions"),
        # Written by the orchestrator agent, so each row is co-partitioned with its execution.
        timers=table("timers"),
        # Keyed by event type, written by the waits agent (see streams/waits.py).
        waits=table("waits"),
        # Keyed by department, written by the admissions agent (see streams/admissions.py).
        admissions=table("admissions"),
    )
