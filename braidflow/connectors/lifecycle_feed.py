"""Each execution's lifecycle events, kept for readers who follow them: the read model
behind the event streams and `?wait=` (docs/api.md, "Live: streams and waits").

Every worker already follows the whole lifecycle topic (`ExecutionProjection`); with a
`LifecycleFeed` it also keeps each record, and wakes the readers waiting for more
(`execution_signal`, `tail_signal`). So any worker serves any execution's stream from what
it holds: no forwarding, no read of the orchestrator's tables per reader, no polling loop
per reader.

Cheap for the worker with nobody reading: a record is kept as it came (its value's bytes),
in memory, with no object of its own until a reader first asks for it: then it is decoded
and turned into JSON (`event_json`), once. Its id and type are read off its value's first
two fields (or its CloudEvents headers for an older schema's); of the id only what follows
the execution's id is kept, one string for a node's event in every execution of a workflow.
(Decoding and storing every event in SQLite cost about 190 µs per event on this machine,
several times what the projection spends on it otherwise.)

Bounded, and what a reader sees when cut:
- per execution, at most `per_execution` node events (1,000 by default); the events of the
  execution itself (started, completed, ...) are always kept. At the first node event left
  out, a `stream.cut` event takes its place, once: a reader sees it where the gap begins;
- in all, at most `total` events (100,000 by default) and about `total_bytes` of memory
  (`held_bytes`, `EXECUTION_OVERHEAD`): past either, the executions whose last event is
  oldest are forgotten whole. A reader of such an execution gets a `stream.cut` event (see
  live.py). The tail every execution's readers follow keeps as much;
- in memory, so refilled at each start: the execution index stores what it read (on disk,
  or shared in PostgreSQL), and `ExecutionProjection` reads the last `total` records of each
  partition before the index's stored position again, for the feed alone, before going on.
  Readers wait for that (`replayed`). Its cost is a fresh worker's (the topic read once),
  bounded by `total` records per partition. An execution whose first event kept is not its
  acceptance or start gets a `stream.cut` event before it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import weakref
from array import array
from bisect import bisect_left, bisect_right
from collections import OrderedDict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import IntEnum
from itertools import islice
from typing import Any

from braidflow.connectors.projection import Record
from braidflow.engine.messages import LifecycleEvent
from braidflow.schemas import CodecError, decode_event, event_heading
from braidflow.schemas.lifecycle_events import LIFECYCLE_SEGMENT, event_json

log = logging.getLogger(__name__)

PER_EXECUTION = 1_000
"""Node events kept per execution; the execution's own events are always kept."""
TOTAL = 100_000
"""Events kept in all; past it, the executions idle longest are forgotten whole."""
TOTAL_BYTES = 17 * 512 * 1024
"""Memory the kept events may take in all (`held_bytes`, `EXECUTION_OVERHEAD`); past it, as
past `TOTAL`: 8.5 MiB, some 27,000 events of parked executions (six each), as many as 16 MiB
held while each event was an object of its own. Sized by bytes, not events: 100,000 events
of parked executions take some 31 MiB."""
EVENT_OVERHEAD = 64
"""The bytes one kept event takes besides the text of its value, as tracemalloc counts
them: the value's object, its places in its execution's lists and in the tail."""
EXECUTION_OVERHEAD = 540
"""The bytes an execution with events kept takes besides them: its entry, its id, its
lists. Left out, a feed of parked executions (six events each) would hold 1.4 times its
`total_bytes`."""

STREAM_ENDS = frozenset({"workflow.completed", "workflow.failed", "workflow.cancelled"})
"""After these an execution's stream ends (a redrive may start it again: a new stream)."""
BEGINNINGS = frozenset({"workflow.accepted", "workflow.queued", "workflow.started"})
_REOPENS = frozenset({*BEGINNINGS, "node.redriven"})
CUT = "stream.cut"
"""The type of the event that stands where events were not kept."""
_TYPE_PREFIX = f"{LIFECYCLE_SEGMENT}."
REPLAY_WAIT_S = 30.0
"""How long a reader waits at most for a starting worker to read its events again."""
_BEFORE_REASON = "events from before this worker read the topic are not kept"


class Cut(IntEnum):
    """Where events of an execution are missing; the last segment of a cut's id."""

    BEFORE = 0  # events from before the worker read the topic
    BOUND = 1  # node events past the bound of one execution
    FORGOTTEN = 2  # the whole execution, past the bound of all


_CUT_IDS = {cut: sys.intern(f"{CUT}/{cut.value}") for cut in Cut}
"""A cut's id past its execution's, as kept."""


def cut_event(execution_id: str, cut: Cut, reason: str, kept: int | None = None) -> dict[str, Any]:
    """The JSON of a `stream.cut` event: events of `execution_id` are missing here."""
    return {
        "id": f"{execution_id}/{CUT}/{cut.value}",
        "type": CUT,
        "execution_id": execution_id,
        "reason": reason,
        "kept": kept,
    }


@dataclass(eq=False, slots=True)
class FeedEvent:
    """One kept event, as read: made when a reader first asks for it, then kept in its
    place. `seq` orders all of them (never reused); the record's value is decoded when first
    read (`event`, `body`)."""

    seq: int
    id: str
    type: str
    execution_id: str
    value: bytes | None
    _event: LifecycleEvent | None = None
    _body: str | None = None
    _undecodable: bool = False
    # A cut's JSON, written as text when first read: a restarted worker firing parked
    # timers makes one for every execution it had forgotten, and few are ever read.
    _cut: dict[str, Any] | None = None

    @property
    def event(self) -> LifecycleEvent | None:
        """The decoded event; None for a cut, or a record that does not decode."""
        if self._event is None and self.value is not None and not self._undecodable:
            try:
                self._event = decode_event(self.value)
            except CodecError as exc:
                log.warning("a lifecycle record of %s does not decode: %s", self.execution_id, exc)
                self._undecodable = True
        return self._event

    @property
    def body(self) -> str | None:
        """The event as the API shows it (`event_json`), as JSON text; None if undecodable."""
        if self._body is None:
            if self._cut is not None:
                self._body = json.dumps(self._cut)
                return self._body
            event = self.event
            if event is not None:
                self._body = json.dumps(event_json(event))
        return self._body


Entry = bytes | Cut | FeedEvent
"""A kept event: its record's value until read (then its `FeedEvent`); a cut not yet read;
the `FeedEvent` of a record whose value does not begin with its id and type, from the start."""


def _held(value: bytes | None) -> int:
    return EVENT_OVERHEAD + (0 if value is None else len(value))


def held_bytes(event: FeedEvent) -> int:
    """About the memory `event` takes, as a feed counts it against its `total_bytes` (the
    same before and after it is read: what reading adds is the readers')."""
    return _held(event.value)


def _entry_bytes(entry: Entry) -> int:
    if type(entry) is bytes:
        return _held(entry)
    return _held(entry.value) if isinstance(entry, FeedEvent) else _held(None)


def _id_key(execution_id: str, event_id: str) -> str | tuple[str]:
    """What tells `event_id` apart among its execution's events: what follows the execution's
    id, or the id whole (as a 1-tuple: no suffix equals it) when it does not begin with it."""
    prefix = len(execution_id)
    if event_id.startswith(execution_id) and event_id.startswith("/", prefix):
        return event_id[prefix + 1 :]
    return (event_id,)


def _headed(record: Record) -> tuple[str | None, str | None]:
    """The id and type of `record`'s event from its CloudEvents headers: for values written
    with another schema than the current one, whose first fields are not read in place."""
    event_id = event_type = None
    for name, value in record.headers:
        if name == "ce_id":
            event_id = value.decode()
        elif name == "ce_type":
            event_type = sys.intern(value.decode().removeprefix(_TYPE_PREFIX))
    return event_id, event_type


def _cut(seq: int, execution_id: str, cut: Cut, reason: str, kept: int | None) -> FeedEvent:
    shown = cut_event(execution_id, cut, reason, kept)
    return FeedEvent(seq, shown["id"], CUT, execution_id, None, _cut=shown)


def _type_of(entry: Entry) -> str:
    if type(entry) is bytes:
        heading = event_heading(entry)
        assert heading is not None  # read when it was kept
        return heading[1]
    return entry.type if isinstance(entry, FeedEvent) else CUT


@dataclass(eq=False, slots=True)
class _Kept:
    """An execution's kept events, in order: an entry, an id key and a seq each, in lists of
    the execution's (no object per event until it is read)."""

    # Every event of the execution holds this one string: a decoded key per event cost
    # 8 MiB at the 100,000 kept.
    execution_id: str
    entries: list[Entry] = field(default_factory=list)
    # `_id_key`s, interned: a set of the whole ids took some 230 bytes an event of parked
    # executions.
    ids: list[str | tuple[str]] = field(default_factory=list)
    seqs: array[int] = field(default_factory=lambda: array("q"))
    node_events: int = 0
    held_bytes: int = 0
    # Forgotten by the feed: held by the tail alone, and emptied as its events leave it.
    forgotten: bool = False


class LifecycleFeed:
    """Lifecycle records by execution, in memory, and the readers waiting for more.

    Not thread-safe: use it from the worker's event loop, which also applies the records.
    """

    def __init__(
        self,
        *,
        per_execution: int = PER_EXECUTION,
        total: int = TOTAL,
        total_bytes: int = TOTAL_BYTES,
    ) -> None:
        self._per_execution = per_execution
        self._total = total
        self._total_bytes = total_bytes
        # Least recently added to first: what a prune forgets.
        self._executions: OrderedDict[str, _Kept] = OrderedDict()
        # Each event's execution, oldest first: their seqs run on to `_seq` without a gap.
        self._tail: deque[_Kept] = deque()
        self._count = 0
        # `held_bytes` of the events kept by execution, and of those in the tail.
        self._bytes = 0
        self._tail_bytes = 0
        self._seq = 0
        # Weak: a reader that stopped waiting (its execution ended, or it hung up) leaves
        # nothing behind for an execution that never gets another event.
        self._signals: weakref.WeakValueDictionary[str, asyncio.Event] = (
            weakref.WeakValueDictionary()
        )
        self._tail_signal = asyncio.Event()
        self._replayed = asyncio.Event()
        self._replayed.set()
        self.closed = False

    @property
    def total(self) -> int:
        """Events kept in all: what is worth reading again at a start, per partition."""
        return self._total

    # -- writing (the projection) ---------------------------------------------------------

    def apply(self, records: Iterable[Record]) -> list[str]:
        """Keep `records` (each event once), within the bounds; the executions they are of.
        Readers are woken by `announce`."""
        touched = []
        for record in records:
            execution_id = self._keep(record)
            if execution_id is not None:
                touched.append(execution_id)
        while (self._count > self._total or self._bytes > self._total_bytes) and self._executions:
            _, forgotten = self._executions.popitem(last=False)
            forgotten.forgotten = True
            self._count -= len(forgotten.entries)
            self._bytes -= forgotten.held_bytes
        # The tail keeps as much: its events take their executions' entries' room too.
        tail_room = self._total_bytes - EXECUTION_OVERHEAD * len(self._executions)
        while len(self._tail) > self._total or self._tail_bytes > tail_room:
            self._tail_bytes -= self._leave_tail()
        return touched

    def _keep(self, record: Record) -> str | None:
        heading = None if record.value is None else event_heading(record.value)
        if heading is None:
            event_id, event_type = _headed(record)
        else:
            event_id, event_type = heading
        if event_id is None or event_type is None or record.key is None:
            return None  # not a lifecycle event as the engine writes them
        execution_id = record.key.decode(errors="replace")
        kept = self._executions.get(execution_id)
        if kept is None:
            kept = self._executions[execution_id] = _Kept(
                execution_id, held_bytes=EXECUTION_OVERHEAD
            )
            self._bytes += EXECUTION_OVERHEAD
            if event_type not in BEGINNINGS:
                self._add(kept, self._next(), Cut.BEFORE, _CUT_IDS[Cut.BEFORE])
        else:
            execution_id = kept.execution_id
            self._executions.move_to_end(execution_id)
        key = _id_key(execution_id, event_id)
        if key in kept.ids:
            return None  # a redelivery
        if event_type.startswith("node."):
            if kept.node_events >= self._per_execution:
                if _CUT_IDS[Cut.BOUND] not in kept.ids:
                    self._add(kept, self._next(), Cut.BOUND, _CUT_IDS[Cut.BOUND])
                return None
            kept.node_events += 1
        seq = self._next()
        if heading is None:
            # Read from its headers: no reading its value for them again.
            entry: Entry = FeedEvent(seq, event_id, event_type, execution_id, record.value)
        else:
            entry = record.value
        self._add(kept, seq, entry, sys.intern(key) if type(key) is str else key)
        return execution_id

    def _next(self) -> int:
        self._seq += 1
        return self._seq

    def _add(self, kept: _Kept, seq: int, entry: Entry, key: str | tuple[str]) -> None:
        # Each seq taken is added here at once: the tail's run on without a gap.
        kept.entries.append(entry)
        kept.ids.append(key)
        kept.seqs.append(seq)
        self._tail.append(kept)
        self._count += 1
        size = _entry_bytes(entry)
        kept.held_bytes += size
        self._bytes += size
        self._tail_bytes += size

    def _leave_tail(self) -> int:
        """Drop the tail's oldest event; the bytes it was counted for."""
        seq = self._seq - len(self._tail) + 1
        kept = self._tail.popleft()
        at = bisect_left(kept.seqs, seq)
        size = _entry_bytes(kept.entries[at])
        if kept.forgotten:
            # Only the tail held it: what is older than the tail goes.
            del kept.entries[: at + 1], kept.ids[: at + 1], kept.seqs[: at + 1]
        return size

    def _event(self, kept: _Kept, at: int) -> FeedEvent:
        """The `at`th event kept of `kept`, made when first read and kept in its place."""
        entry = kept.entries[at]
        if isinstance(entry, FeedEvent):
            return entry
        seq = kept.seqs[at]
        execution_id = kept.execution_id
        if type(entry) is bytes:
            heading = event_heading(entry)
            assert heading is not None  # read when it was kept
            event_id, event_type = heading
            event = FeedEvent(seq, event_id, sys.intern(event_type), execution_id, entry)
        elif entry is Cut.BOUND:
            reason = f"at most {self._per_execution} node events are kept"
            event = _cut(seq, execution_id, Cut.BOUND, reason, self._per_execution)
        else:
            event = _cut(seq, execution_id, Cut.BEFORE, _BEFORE_REASON, None)
        kept.entries[at] = event
        return event

    def announce(self, execution_ids: Iterable[str]) -> None:
        """Wake the readers of `execution_ids` and of every tail (applied by now)."""
        touched = set(execution_ids)
        if not touched:
            return
        signals = self._signals
        if signals:
            # A batch touches hundreds of executions, few of them waited on: look up the
            # waited ones (a miss in a WeakValueDictionary costs a KeyError caught).
            for execution_id in touched.intersection(list(signals.keys())):
                signal = signals.pop(execution_id, None)
                if signal is not None:
                    signal.set()
        self._tail_signal.set()
        self._tail_signal = asyncio.Event()

    def reset(self) -> None:
        """Forget everything kept (the topic is read again from its start)."""
        self._executions.clear()
        self._tail.clear()
        self._count = self._bytes = self._tail_bytes = 0

    def replay_begins(self) -> None:
        """Events from before this worker started are being read again: readers wait."""
        self._replayed.clear()

    def replay_ends(self) -> None:
        """Everything read again: readers go on."""
        self._replayed.set()

    def end_readers(self) -> None:
        """Wake every reader for good: the worker stops, streams end and waits answer."""
        self.closed = True
        self._replayed.set()
        for signal in list(self._signals.values()):
            signal.set()
        self._signals.clear()
        self._tail_signal.set()

    # -- reading (the API) ----------------------------------------------------------------

    def execution_signal(self, execution_id: str) -> asyncio.Event:
        """Set once events of `execution_id` are applied after this call: take it before
        reading, then wait on it, and nothing applied in between is missed."""
        signal = self._signals.get(execution_id)
        if signal is None:
            signal = asyncio.Event()
            if self.closed:
                signal.set()
            else:
                self._signals[execution_id] = signal
        return signal

    async def replayed(self, timeout_s: float = REPLAY_WAIT_S) -> None:
        """Return once the events from before this worker started are read again (see
        `replay_begins`), or after `timeout_s`: then serve what is kept."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                await self._replayed.wait()

    def tail_signal(self) -> asyncio.Event:
        """Set once any events are applied after this call (see `execution_signal`)."""
        return self._tail_signal

    def of_execution(self, execution_id: str, after_seq: int = 0) -> list[FeedEvent]:
        """The events of `execution_id` kept after `after_seq`, in order."""
        kept = self._executions.get(execution_id)
        if kept is None:
            return []
        start = bisect_right(kept.seqs, after_seq)
        return [self._event(kept, at) for at in range(start, len(kept.entries))]

    def tail(self, after_seq: int, limit: int = 500) -> list[FeedEvent]:
        """Every execution's events after `after_seq`, in order, at most `limit` (the
        oldest of them first). Callers pick their tenant's: see `FeedEvent.event`."""
        first = max(after_seq + 1, self._seq - len(self._tail) + 1)
        after = self._seq + 1 - first
        if after <= 0:
            return []
        # From the end: a reader follows close behind the newest.
        keeps = list(islice(reversed(self._tail), after))
        keeps.reverse()
        return [
            self._event(kept, bisect_left(kept.seqs, seq))
            for seq, kept in enumerate(keeps[:limit], first)
        ]

    def seq_of(self, event_id: str, execution_id: str) -> int | None:
        """Where event `event_id` of `execution_id` is kept; None when it is not."""
        kept = self._executions.get(execution_id)
        if kept is None:
            return None
        try:
            return kept.seqs[kept.ids.index(_id_key(kept.execution_id, event_id))]
        except ValueError:
            return None

    def ended(self, execution_id: str, ends: frozenset[str] = STREAM_ENDS) -> bool:
        """Whether the last of the events kept of `execution_id` that open or end it is one
        of `ends` (a redrive opens it again); False when none is kept."""
        kept = self._executions.get(execution_id)
        for entry in reversed(kept.entries if kept is not None else ()):
            event_type = _type_of(entry)
            if event_type in ends:
                return True
            if event_type in _REOPENS:
                return False
        return False

    def holds(self, execution_id: str) -> bool:
        """Whether any event of `execution_id` is kept."""
        return execution_id in self._executions

    @property
    def last_seq(self) -> int:
        """The position of the newest event kept: a live stream from now reads after it."""
        return self._seq
