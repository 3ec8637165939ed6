"""A table whose changelog rows go straight into the producer's batch, not through Faust's buffer.

A table write is synchronous, so Faust queues its changelog row in the producer's buffer
(`Topic.send_soon`: a `FutureMessage`, a `PendingMessage`) and a task of its own sends it
later (`publish_message`, the sensors, a second callback on acknowledgement); a commit
then waits on that buffer one message at a time (`asyncio.wait_for` each). The
orchestrator writes a state row every step: the buffer's round took about 5% of a loaded
worker's busy samples (docs/performance-history.md, "The produce path per record").

aiokafka can take a record without waiting (`quick_send.sent_now`), so the row is appended
to its partition's batch as the table is written, in the order of the writes (a full batch
gets another behind it, as Faust's buffer would have held the row), and Faust's flush before
a commit waits for it as for any record. Whatever cannot go at once (no producer or metadata
yet, a transaction, a window, a serializer) takes Faust's path; and while any row of this
table is in Faust's buffer, the next ones follow it there, so the changelog keeps the order
of the writes. A row has no future of its own: once its batch is acknowledged, the store
notes the row's offset, as Faust's callback does (what a restart's recovery starts from).
Faust's monitor does not count these rows as sent.

The local write takes the same direct way as `OneReadTable.get`: into the database of the
event's partition (`event_database`), where Faust's store would put it, without its serializer
registry, its second look-up of the event or its key index. A delete goes to that one
database as well: Faust's store, for a key not in its index, deletes it from every
partition's database. Faust's monitor is not told of these writes either (see `OneReadTable`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition
from faust.types.enums import ProcessingGuarantee

from braidflow.streams.one_read_table import OneReadTable
from braidflow.streams.quick_send import sent_now

log = logging.getLogger(__name__)


class QuickChangelogTable(OneReadTable):
    """`OneReadTable`, its changelog rows appended to the producer's batch as they are written."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # This table's rows in Faust's buffer, not in the producer's batch yet.
        self._rows_in_buffer = 0
        # Set on the first row written (`_rows_go_now`).
        self._changelog_name: str | None = None
        self._rows_now = False
        # The last offset acknowledged per changelog partition, not noted in the store yet.
        self._offsets_to_note: dict[int, int] = {}

    async def on_start(self) -> None:
        await super().on_start()
        # A changelog made since the producer started is not in its metadata, and its rows would
        # take Faust's buffer (and the ones after them, to keep their order) until it is.
        producer = getattr(self.app.producer, "_producer", None)
        if producer is not None and self.window is None:
            try:
                await producer.partitions_for(self.changelog_topic_name)
            except KafkaError as exc:
                log.info("%s: the changelog's partitions are not known yet: %r", self.name, exc)

    def __setitem__(self, key: Any, value: Any) -> None:
        database = self.event_database(key) if type(value) is bytes else None
        if database is None:
            super().__setitem__(key, value)
            return
        if not self._row_now(key, value):
            super().on_key_set(key, value)
        database.put(key, value)

    def __delitem__(self, key: Any) -> None:
        database = self.event_database(key)
        if database is None:
            super().__delitem__(key)
            return
        if not self._row_now(key, None):
            super().on_key_del(key)
        database.delete(key)

    def on_key_set(self, key: Any, value: Any) -> None:
        if self._row_now(key, value):
            self._sensor_on_set(self, key, value)
        else:
            super().on_key_set(key, value)

    def on_key_del(self, key: Any) -> None:
        if self._row_now(key, None):
            self._sensor_on_del(self, key)
        else:
            super().on_key_del(key)

    def send_changelog(self, *args: Any, **kwargs: Any) -> Any:
        self._rows_in_buffer += 1
        return super().send_changelog(*args, **kwargs)

    def _new_changelog_topic(self, **kwargs: Any) -> Any:
        topic = super()._new_changelog_topic(**kwargs)
        publish = topic.publish_message

        async def publish_message(fut: Any, wait: bool = False) -> Any:
            # Faust's buffer hands this table's rows over here, one at a time in order; once
            # this returns, the row is in the producer's batch (or failed).
            try:
                return await publish(fut, wait=wait)
            finally:
                self._rows_in_buffer -= 1

        topic.publish_message = publish_message
        return topic

    def _row_now(self, key: Any, value: bytes | None) -> bool:
        """Append the changelog row of `key` to the producer's batch; False if it must go
        Faust's way."""
        if self._rows_in_buffer or not isinstance(key, bytes) or not self._rows_go_now():
            return False
        producer = getattr(self.app.producer, "_producer", None)
        if producer is None:
            return False
        partition = self.partition_for_key(key)
        try:
            return sent_now(
                producer, self._changelog_name, value, key, partition, None,
                self._row_acknowledged, None, new_batch_when_full=True,
            )  # fmt: skip
        except KafkaError:
            return False  # Faust's path raises or logs it as it always did

    def _rows_go_now(self) -> bool:
        """Whether this table's rows may skip Faust's buffer: raw rows of the event's
        partition, in no window, outside transactions (all fixed once the app is made)."""
        if self._changelog_name is None:
            guarantee = self.app.conf.processing_guarantee
            self._rows_now = not (
                self.use_partitioner
                or self.window is not None
                or self.key_serializer != "raw"
                or self.value_serializer != "raw"
                # Faust's transactions (`app.in_transaction`) come only with exactly once.
                or guarantee == ProcessingGuarantee.EXACTLY_ONCE
            )
            self._changelog_name = self.changelog_topic_name
        return self._rows_now

    def _row_acknowledged(self, _: None, partition: int, offset: int, timestamp_ms: int) -> None:
        if not self._offsets_to_note:
            # A batch's acknowledgements run in one turn of the loop; this runs after them.
            asyncio.get_running_loop().call_soon(self._note_offsets)
        noted = self._offsets_to_note.get(partition, -1)
        self._offsets_to_note[partition] = max(noted, offset)

    def _note_offsets(self) -> None:
        offsets, self._offsets_to_note = self._offsets_to_note, {}
        assert self._changelog_name is not None
        for partition, offset in offsets.items():
            self.data.set_persisted_offset(TopicPartition(self._changelog_name, partition), offset)
