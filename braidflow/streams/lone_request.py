"""A record sent in a produce request of its own, written to the broker from the sending task.

aiokafka's `send` appends a record to its partition's batch and wakes the producer's sender,
a task of its own, which drains the batches into a request in yet another task: the request
is written three turns of the event loop after the append, each turn behind whatever else
the loop has ready, and the answer reaches the caller two turns after it is read. On a
worker's busy loop a task's result waited 0.4 - 0.8 ms to be sent that way, on every task of
a chain (docs/performance-history.md, "The 3-node chain, stage by stage from the bench").

`LoneRequests.send` builds the one-record batch and its request itself, writes it at once
and reads the answer from the connection's future, but only when the producer has nothing
else to send: nothing queued, no request of its sender in flight, none of its own. Under load
the sender's batching stays, and every record goes through `send` as before. Anything out of
the ordinary (no metadata or leader yet, a record too large, a transaction, an error answer
or a broken connection) leaves the record to the caller's `send`, which retries and fails as
it always did; a record that reached the broker before its error is then sent twice, which
the transitions topic allows (a step already applied ignores its copy).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from aiokafka import AIOKafkaProducer
from aiokafka import errors as kafka_errors
from aiokafka.errors import KafkaError
from aiokafka.protocol.produce import ProduceRequest
from aiokafka.structs import TopicPartition

from braidflow.streams.quick_send import topic_layout


class Sent(NamedTuple):
    """Where the broker put a record, and its timestamp (ms)."""

    partition: int
    offset: int
    timestamp: int


class LoneRequests:
    """Sends a record of `producer` in a request of its own while the producer is idle."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer
        self._in_flight = False

    def _idle(self) -> bool:
        producer = self._producer
        accumulator = producer._message_accumulator
        return not (
            self._in_flight
            or accumulator._batches
            or accumulator._pending_batches
            or producer._sender._in_flight
            or accumulator._closed
            or producer._txn_manager is not None
            or producer._key_serializer is not None
            or producer._value_serializer is not None
        )

    async def send(
        self, topic: str, key: bytes, value: bytes, headers: Sequence[tuple[str, bytes]] | None
    ) -> Sent | None:
        """Send the record alone and return where it went once acknowledged; None when it
        is the caller's to `send` (the producer busy, or anything out of the ordinary)."""
        producer = self._producer
        if not self._idle():
            return None
        layout = topic_layout(producer, topic)
        if layout is None:
            return None
        partition = producer._partitioner(key, layout[2], layout[3])
        node_id = producer.client.cluster.leader_for_partition(TopicPartition(topic, partition))
        if node_id is None or node_id == -1:
            return None
        headers = list(headers or ())
        try:
            producer._serialize(key, value, headers)  # the size check `send` makes
        except KafkaError:
            return None
        batch = producer.create_batch()
        record = batch.append(timestamp=None, key=key, value=value, headers=headers)
        sender = producer._sender
        request = ProduceRequest(
            required_acks=sender._acks,
            timeout=sender._request_timeout_ms,
            topics=[(topic, [(partition, batch._build())])],
            transactional_id=None,
        )
        self._in_flight = True
        try:
            response = await producer.client.send(node_id, request)
        except KafkaError as exc:
            _refresh_if_stale(producer, exc)
            return None
        finally:
            self._in_flight = False
        for _, partitions in response.topics:
            for answer in partitions:
                error = kafka_errors.for_code(answer[1])
                if error is not kafka_errors.NoError:
                    _refresh_if_stale(producer, error)
                    return None
                # Given when the topic stamps records as it appends them; else ours.
                appended_at = answer[3] if response.API_VERSION >= 2 else -1
                return Sent(
                    partition, answer[2], record.timestamp if appended_at == -1 else appended_at
                )
        return None


def _refresh_if_stale(producer: AIOKafkaProducer, error: object) -> None:
    if getattr(error, "invalid_metadata", False):
        producer.client.force_metadata_update()
