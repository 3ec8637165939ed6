"""A record for a topic the producer knows goes straight into its partition's open batch.

Every record a worker sends (an outbox entry, a changelog row, a stats record, a result)
went through Faust's `Producer.send` and aiokafka's `AIOKafkaProducer.send`: three
coroutines, a `typing.Mapping` isinstance, and on every call aiokafka built the topic's
partitions afresh, twice as a set and twice as a list (`_wait_on_metadata`, then
`_partition` for all and for available partitions). That took about 4% of a loaded
worker's busy samples, for 4-5 records a transition (docs/performance-history.md, "The produce
path per record").

When the topic is in the producer's metadata and the partition's open batch has room,
aiokafka's `send` never suspends: it checks the size, picks the partition, appends to the
batch. `queued_now` does exactly that, with the partitions kept per topic until the
metadata changes (aiokafka replaces a topic's partition map on every update, so its
identity says when), and the size measured only where the batch's own bound does not hold
it under the request limit. Anything else (a topic not in the metadata yet, a full batch, a
transaction, a closed or failed producer) is left to aiokafka's own `send`, which waits or
raises as before. So records keep their order per partition, Faust's flush still waits for
every one of them, and errors surface where they did.

`sent_now` appends a record whose sender awaits no future of its own (the outbox, the changelog
rows): it is told of the acknowledgement from its batch's future, the one a flush waits on.
`OpenBatches` appends a run of such records with nothing else run between them (a step's
outbox), the producer checked and each topic's partitions looked up once for the run.
Each of these parts of aiokafka is pinned by tests/unit/streams/test_quick_send.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.producer.message_accumulator import BatchBuilder, MessageBatch
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.structs import TopicPartition
from faust.exceptions import ProducerSendError
from faust.transport.drivers import aiokafka as faust_aiokafka

log = logging.getLogger(__name__)

# The size `AIOKafkaProducer._serialize` checks against `max_request_size`, computed without
# its frame: records go without serializers here.
estimate_size_in_bytes = DefaultRecordBatchBuilder.estimate_size_in_bytes

Layout = tuple[Mapping[int, Any], Mapping[int, TopicPartition], list[int], list[int]]
"""A topic's partition map as the metadata held it, a `TopicPartition` for each of its ids,
all of them and the available ones, as lists in aiokafka's own order (what its partitioner is
given)."""


def topic_layout(producer: AIOKafkaProducer, topic: str) -> Layout | None:
    """The topic's partitions as the producer's metadata holds them, None when it holds none."""
    partitions = producer._metadata._partitions.get(topic)
    if partitions is None:
        return None
    layouts: dict[str, Layout] | None = producer.__dict__.get(_LAYOUTS)
    if layouts is None:
        layouts = producer.__dict__[_LAYOUTS] = {}
    layout = layouts.get(topic)
    if layout is None or layout[0] is not partitions:
        ids = set(partitions)
        available = {p for p, meta in partitions.items() if meta.leader != -1}
        named = {p: TopicPartition(topic, p) for p in ids}
        layout = (partitions, named, list(ids), list(available))
        layouts[topic] = layout
    return layout


_LAYOUTS = "_braidflow_layouts"
"""The attribute of an `AIOKafkaProducer` holding its topics' `Layout`s."""


def _refuses(producer: AIOKafkaProducer) -> bool:
    """Whether every record must go through `send`: a transaction, a serializer, a closed or
    failed producer."""
    accumulator = producer._message_accumulator
    return (
        producer._txn_manager is not None
        or producer._key_serializer is not None
        or producer._value_serializer is not None
        or accumulator._closed
        or accumulator._exception is not None
    )


def _open_batch(
    producer: AIOKafkaProducer,
    topic: str,
    value: bytes | None,
    key: bytes | None,
    partition: int | None,
    headers: Sequence[tuple[str, bytes]],
) -> MessageBatch | None:
    """The open batch `send` would append the record to without waiting, or None."""
    if _refuses(producer):
        return None
    layout = topic_layout(producer, topic)
    if layout is None:
        return None
    assert not (value is None and key is None), "Need at least one: key or value"
    if partition is None:
        partition = producer._partitioner(key, layout[2], layout[3])
    tp = layout[1].get(partition)
    if tp is None:
        return None
    return _last_batch(producer, tp, key, value, headers)


def _last_batch(
    producer: AIOKafkaProducer,
    tp: TopicPartition,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes]],
) -> MessageBatch:
    """The partition's open batch (a new one if it has none); MessageSizeTooLargeError for a
    record over the request limit."""
    accumulator = producer._message_accumulator
    batches = accumulator._batches.get(tp)
    batch: MessageBatch | None = batches[-1] if batches else None
    if not (
        batch is not None
        and batch._builder._relative_offset
        and accumulator._batch_size <= producer._max_request_size
    ):
        # A batch holding a record refuses one that would take it past its size, at most the
        # request's: a record it takes fits, unmeasured (`estimate_size_in_bytes` walks every
        # header: a tenth of the outbox's sends).
        _check_size(producer, key, value, headers)
    return batch if batch is not None else _new_batch(producer, tp)


def _check_size(
    producer: AIOKafkaProducer,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes]],
) -> None:
    """MessageSizeTooLargeError, as `send` raises it, for a record over the request limit."""
    if estimate_size_in_bytes(key, value, headers) > producer._max_request_size:
        producer._serialize(key, value, headers)  # raising as `send` does


def _new_batch(producer: AIOKafkaProducer, tp: TopicPartition) -> MessageBatch:
    accumulator = producer._message_accumulator
    return accumulator._append_batch(accumulator.create_builder(), tp)


def queued_now(
    producer: AIOKafkaProducer,
    topic: str,
    value: bytes | None,
    key: bytes | None,
    partition: int | None,
    timestamp_ms: int | None,
    headers: Sequence[tuple[str, bytes]] | None,
) -> asyncio.Future[Any] | None:
    """Append the record as `producer.send` would without waiting: its future (resolved on
    acknowledgement), or None when `send` itself must take it."""
    headers = headers or []
    batch = _open_batch(producer, topic, value, key, partition, headers)
    if batch is None:
        return None
    future: asyncio.Future[Any] | None = batch.append(key, value, timestamp_ms, headers=headers)
    return future


Acknowledgement = Callable[[Any, int, int, int], None]
"""Told (its argument, the partition, the offset, the timestamp in ms) once a record sent with
`sent_now` is acknowledged; never if its batch failed."""


def sent_now(
    producer: AIOKafkaProducer,
    topic: str,
    value: bytes | None,
    key: bytes | None,
    partition: int | None,
    headers: Sequence[tuple[str, bytes]] | None,
    acknowledged: Acknowledgement,
    argument: Any,
    *,
    new_batch_when_full: bool = False,
) -> bool:
    """Append the record as `queued_now` does, but with no future of its own: `acknowledged`
    is told of it when its batch's future resolves. False when `send` itself must take it.

    A future a record is a syscall (`asyncio.get_event_loop`, which checks `getpid` in
    Python 3.11), an object, and on acknowledgement a `RecordMetadata`, a loop callback and
    its run; a flush waits on the batch's future anyway. `new_batch_when_full`: when the
    partition's open batch is full, open another behind it instead of leaving the record to
    `send` (which waits until a request takes the full one).
    """
    headers = headers or []
    batch = _open_batch(producer, topic, value, key, partition, headers)
    if batch is None:
        return False
    metadata = _record_appended(batch._builder, key, value, headers)
    if metadata is None:
        if not new_batch_when_full:
            return False
        _check_size(producer, key, value, headers)
        batch = _new_batch(producer, batch.tp)
        metadata = _record_appended(batch._builder, key, value, headers)
        if metadata is None:
            return False
    _tell(batch, metadata, acknowledged, argument)
    return True


def open_batches(producer: AIOKafkaProducer) -> OpenBatches | None:
    """The producer's open batches, to append a run of records to with nothing else run
    between them; None when each must go through `send`."""
    return None if _refuses(producer) else OpenBatches(producer)


class OpenBatches:
    """`sent_now` for keyed records appended one after another with nothing else run between
    them (a step's outbox): the producer's state checked once, each topic's partitions looked
    up once.

    Good only until the loop runs something else (a batch may then be drained, the producer
    fail, the metadata change): after an `await`, take another (`open_batches`).
    """

    __slots__ = ("_layouts", "_producer")

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer
        self._layouts: dict[str, Layout] = {}

    def append(
        self,
        topic: str,
        key: bytes,
        value: bytes,
        headers: list[tuple[str, bytes]] | None,
        acknowledged: Acknowledgement,
        argument: Any,
    ) -> bool:
        """`sent_now` of the record to the partition of its key: False when `send` must take
        it (the topic not in the metadata, its batch full); MessageSizeTooLargeError, as
        `send` raises it, for a record over the request limit."""
        producer = self._producer
        layout = self._layouts.get(topic)
        if layout is None:
            layout = topic_layout(producer, topic)
            if layout is None:
                return False
            self._layouts[topic] = layout
        tp = layout[1].get(producer._partitioner(key, layout[2], layout[3]))
        if tp is None:
            return False
        if headers is None:
            headers = []
        batch = _last_batch(producer, tp, key, value, headers)
        metadata = _record_appended(batch._builder, key, value, headers)
        if metadata is None:
            return False
        _tell(batch, metadata, acknowledged, argument)
        return True


def _record_appended(
    builder: BatchBuilder,
    key: bytes | None,
    value: bytes | None,
    headers: Sequence[tuple[str, bytes]],
) -> Any:
    """`BatchBuilder.append` of a record stamped now, less its Python layer (serializers: a
    producer with any takes `send`): the record's metadata, None when the batch is closed
    or full (then closed)."""
    if builder._closed:
        return None
    metadata = builder._builder.append(builder._relative_offset, None, key, value, headers)
    if metadata is None:
        builder.close()
        return None
    builder._relative_offset += 1
    return metadata


def _tell(batch: MessageBatch, metadata: Any, acknowledged: Acknowledgement, argument: Any) -> None:
    """Tell `acknowledged` of the record once its batch is acknowledged."""
    told: list[tuple[Any, Acknowledgement, Any]] | None = batch.__dict__.get(_TOLD)
    if told is None:
        told = []
        setattr(batch, _TOLD, told)
        batch.future.add_done_callback(partial(_batch_done, batch.tp, told))
    told.append((metadata, acknowledged, argument))


_TOLD = "_braidflow_told"
"""The attribute of a `MessageBatch` listing who to tell of its records sent by `sent_now`."""


def _batch_done(
    tp: TopicPartition, told: list[tuple[Any, Acknowledgement, Any]], future: asyncio.Future[Any]
) -> None:
    # As `MessageBatch.done` resolves each record's future: the batch's offset plus the
    # record's own, and the broker's timestamp unless it kept the producer's (-1).
    if future.cancelled():
        return
    exc = future.exception()  # retrieved, so asyncio does not report it as never seen
    if exc is not None:
        log.warning("%d records to %s not acknowledged: %r", len(told), tp, exc)
        return
    sent = future.result()
    if sent is None:  # acks=0: no offsets
        return
    base, at, partition = sent.offset, sent.timestamp, tp.partition
    for metadata, acknowledged, argument in told:
        timestamp = metadata.timestamp if at == -1 else at
        acknowledged(argument, partition, base + metadata.offset, timestamp)


def patch_quick_send() -> None:
    """Send through `queued_now` first: aiokafka's producers, and Faust's outside transactions."""
    if getattr(AIOKafkaProducer, "_braidflow_quick_send", False):
        return
    aiokafka_send = AIOKafkaProducer.send

    async def send(
        self: AIOKafkaProducer,
        topic: str,
        value: Any = None,
        key: Any = None,
        partition: int | None = None,
        timestamp_ms: int | None = None,
        headers: Any = None,
    ) -> Any:
        future = queued_now(self, topic, value, key, partition, timestamp_ms, headers)
        if future is not None:
            return future
        return await aiokafka_send(self, topic, value, key, partition, timestamp_ms, headers)

    faust_producer = faust_aiokafka.Producer
    faust_send = faust_producer.send

    async def send_through_faust(
        self: Any,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        timestamp: float | None,
        headers: Any,
        *,
        transactional_id: str | None = None,
    ) -> Any:
        # Faust's own `send`, less its `typing.Mapping` isinstance (a generic alias's
        # __instancecheck__ per record); a transaction keeps Faust's path and its lock.
        if transactional_id:
            return await faust_send(
                self, topic, key, value, partition, timestamp, headers,
                transactional_id=transactional_id,
            )  # fmt: skip
        producer = self._ensure_producer()
        if headers is not None and isinstance(headers, Mapping):
            headers = list(headers.items())
        self._send_on_produce_message(
            key=key, value=value, partition=partition, timestamp=timestamp, headers=headers
        )
        if headers is not None and not self.allow_headers:
            headers = None
        timestamp_ms = int(timestamp * 1000.0) if timestamp else timestamp
        try:
            return await producer.send(
                topic, value, key=key, partition=partition, timestamp_ms=timestamp_ms,
                headers=headers,
            )  # fmt: skip
        except KafkaError as exc:
            raise ProducerSendError(f"Error while sending: {exc!r}") from exc

    AIOKafkaProducer.send = send  # type: ignore[method-assign]
    faust_producer.send = send_through_faust  # type: ignore[method-assign]
    AIOKafkaProducer._braidflow_quick_send = True  # type: ignore[attr-defined]
