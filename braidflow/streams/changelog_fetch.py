"""Faust's consumer fetches a table's changelog only while it reads it (recovery, standbys).

faust-streaming 0.15 pauses a changelog partition once its table is recovered, but only in
its own books: the aiokafka consumer underneath goes on fetching it. A batch it brings is
never taken (Faust reads only its active partitions), so aiokafka holds every fetch to that
broker for up to its prefetch backoff (0.1 s) and then leaves the partition out; the others
stay in. A worker's fetches named 39-49 partitions where its agents read 21, and the
embedded broker answers a fetch later the more partitions it names (a lone consumer, a
record produced to one partition: 0.7-1.2 ms for 4 partitions, 1.3-2.8 ms for 16-21,
2.9-4.2 ms for 48; docs/performance-history.md, "The 3-node chain, per hop").

Here aiokafka is told too: after each of Faust's pauses and resumes (it pauses a whole new
assignment first), every changelog partition Faust is not reading is paused in aiokafka, and
resumed when Faust reads it again (a recovery). Positions are kept while paused, so a
recovery reads on from where the table stands, as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiokafka import TopicPartition
from faust.transport import consumer as faust_consumer

from braidflow.streams.transitions_reader import apart_topics


def _sync(consumer: Any) -> None:
    """Pause in aiokafka the changelog partitions Faust is not reading; resume the others."""
    thread = getattr(consumer, "_thread", None)
    client = getattr(thread, "_consumer", None)
    if thread is None or client is None or thread.thread_loop.is_closed():
        # Not started yet, or stopped: there is no fetching to change.
        return
    # The transitions topic too: its own reader fetches it (`transitions_reader`).
    changelogs = consumer.app.tables.changelog_topics | apart_topics(consumer.app)
    active = consumer._get_active_partitions()
    reading = frozenset(
        TopicPartition(tp.topic, tp.partition)
        for tp in consumer.assignment()
        if tp.topic in changelogs and tp in active
    )

    def apply() -> None:
        # On the consumer's own thread: aiokafka's state is that loop's alone.
        assigned = [tp for tp in client.assignment() if tp.topic in changelogs]
        paused = client.paused()
        stop = [tp for tp in assigned if tp not in reading and tp not in paused]
        go = [tp for tp in assigned if tp in reading and tp in paused]
        if stop:
            client.pause(*stop)
        if go:
            client.resume(*go)

    thread.thread_loop.call_soon_threadsafe(apply)


def patch_changelog_fetch() -> None:
    """Mirror Faust's pauses of changelog partitions into aiokafka (idempotent)."""
    consumer_class = faust_consumer.Consumer
    if getattr(consumer_class, "_braidflow_changelog_fetch", False):
        return
    pause, resume = consumer_class.pause_partitions, consumer_class.resume_partitions

    def pause_partitions(self: Any, tps: Iterable[Any]) -> None:
        pause(self, tps)
        _sync(self)

    def resume_partitions(self: Any, tps: Iterable[Any]) -> None:
        resume(self, tps)
        _sync(self)

    consumer_class.pause_partitions = pause_partitions
    consumer_class.resume_partitions = resume_partitions
    consumer_class._braidflow_changelog_fetch = True
