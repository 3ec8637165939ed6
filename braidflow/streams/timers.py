"""Durable timers: one row per pending timer in RocksDB, fired by the partition's owner.

Everything that waits for time becomes a row of the `timers` table, written by
the orchestrator while it handles the execution, so the row lands in the
execution's partition. The key sorts rows by due time; the scanner reads each
owned partition from its first key and stops at the first row not yet due, so
a worker holding many pending timers keeps none of them in its Python heap.

Faust's table API has no range scan, so the scanner reads the partition
databases of Faust's RocksDB store directly (read only; writes go through the
table so they reach the changelog). With `key_type=bytes` and
`value_type=bytes` Faust stores keys and values as they are ("raw"
serializer), in one rocksdict `Rdict` per partition, opened in raw mode. Each
of those databases also holds Faust's own `__faust\\0offset__` row; it sorts
after every timer due before the year 200 million, so a scan never reaches it.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, MutableMapping
from itertools import islice
from typing import Any, Protocol

import faust
from faust.stores.rocksdb import Store as RocksDBStore
from faust.types import TP
from rocksdict import ReadOptions

from braidflow.engine.ids import (
    DueTimer,
    is_timer_key,
    parse_timer_key,
    timer_key,
    timer_keys_due_by,
)
from braidflow.engine.trace_context import valid_traceparent
from braidflow.metrics import TIMER_SCANS

log = logging.getLogger(__name__)


def _order(timer: DueTimer) -> bytes:
    return timer_key(timer.due_ms, timer.execution_id, timer.timer_id)


class RowCursor(Protocol):
    """The part of rocksdict's `RdictIter` a scan uses."""

    def seek_to_first(self) -> None: ...
    def seek(self, key: bytes) -> None: ...
    def valid(self) -> bool: ...
    def key(self) -> Any: ...
    def value(self) -> Any: ...
    def next(self) -> None: ...


class PartitionStore(Protocol):
    """One partition's database: a rocksdict `Rdict` opened in raw mode, as Faust opens them."""

    def iter(self, read_opt: ReadOptions) -> RowCursor: ...


TimerRow = tuple[bytes, bytes]
"""A row of the timers table as a scan reads it: its key, then its value."""


def row_traceparent(value: bytes) -> str | None:
    """The header a timer's row keeps for its TimerFired; None for a row without one."""
    return valid_traceparent(value.decode("latin-1"))


def due_rows_in(db: PartitionStore, now_ms: int, after: bytes | None = None) -> Iterator[TimerRow]:
    """The rows of one partition's timers due at or before `now_ms`, in key order, read as
    they are taken; only those past the key `after`, when given.

    The value comes with the key: read later through the table, it cost a lookup in every
    partition's database (Faust's store finds a key's partition by asking each), a tenth of
    the worker's CPU while firing.
    """
    if now_ms < 0:
        return
    # RocksDB ends the iteration at the first key past `now_ms` by itself, so a
    # scan costs the due rows, whatever is pending behind them.
    bound = ReadOptions()
    bound.set_iterate_upper_bound(timer_keys_due_by(now_ms))
    cursor = db.iter(bound)
    if after is None:
        cursor.seek_to_first()
    else:
        cursor.seek(after)
        if cursor.valid() and cursor.key() == after:
            cursor.next()
    while cursor.valid():
        key = cursor.key()
        if is_timer_key(key):
            yield key, cursor.value()
        else:
            # Only a bug writes such a row; skipping it keeps the partition's timers alive.
            log.warning("skipping a row of the timers table that is not a timer: %r", key)
        cursor.next()


def first_due_in(db: PartitionStore) -> int | None:
    """When the first timer of one partition is due; None when it holds none."""
    cursor = db.iter(ReadOptions())
    cursor.seek_to_first()
    # Faust's offset row sorts after every timer: a partition's first row is a timer if any is.
    if not cursor.valid() or not is_timer_key(cursor.key()):
        return None
    try:
        return parse_timer_key(cursor.key()).due_ms
    except ValueError:
        return None


def due_in(db: PartitionStore, now_ms: int, limit: int) -> list[DueTimer]:
    """The first `limit` timers of one partition due at or before `now_ms`, in key order."""
    return _parsed(islice(due_rows_in(db, now_ms), max(limit, 0)))


def _parsed(rows: Iterable[TimerRow]) -> list[DueTimer]:
    timers = []
    for key, _ in rows:
        try:
            timers.append(parse_timer_key(key))
        except ValueError:
            log.warning("skipping a row of the timers table that is not a timer: %r", key)
    return timers


class TimerTable:
    """The timers table: written by the orchestrator, read in due order by the scanner.

    `table` is the Faust table (writes go through it, so they reach the
    changelog); `partitions` gives the databases of the partitions this worker
    owns right now (`faust_partitions` in production).
    """

    def __init__(
        self,
        table: MutableMapping[bytes, bytes],
        partitions: Callable[[], Mapping[int, PartitionStore]],
    ) -> None:
        self._table = table
        self._partitions = partitions
        # Told the due time of every timer written: a scanner sleeping past it wakes.
        self.on_set: Callable[[int], None] = lambda due_ms: None
        # Told the key of every row deleted: a scanner stops waiting for it at once.
        self.on_delete: Callable[[bytes], None] = lambda key: None

    def set(self, timer: DueTimer, traceparent: str | None = None) -> None:
        """Add the row for `timer`, keeping `traceparent`, the header its TimerFired will
        carry. Only inside the orchestrator agent, for the execution at hand."""
        # The key holds the rest; the value is never empty (no changelog record may be):
        # the traceparent, or the timer id repeated (rows written before traces).
        value = timer.timer_id if traceparent is None else traceparent
        self._table[_order(timer)] = value.encode()
        self.on_set(timer.due_ms)

    def delete(self, timer: DueTimer) -> None:
        """Remove the row for `timer`, if there is one. Only inside the orchestrator agent."""
        key = _order(timer)
        # Reading first is not only to skip a pointless changelog tombstone: the
        # read tells Faust's store which partition holds the key, and without
        # that it writes the delete into the database of every partition it has.
        if self._table.get(key) is not None:
            del self._table[key]
            self.on_delete(key)

    def next_due_ms(self) -> int | None:
        """When the first timer of the owned partitions is due; None when there is none."""
        dues = [due for db in self._partitions().values() if (due := first_due_in(db)) is not None]
        return min(dues, default=None)

    def due(self, now_ms: int, limit: int) -> list[DueTimer]:
        """The first `limit` timers due at or before `now_ms` in the owned partitions, in due order."""
        return _parsed(self.due_rows(now_ms, limit))

    def due_rows(self, now_ms: int, limit: int) -> list[TimerRow]:
        """The rows of `due`, unparsed.

        The partitions are merged as they are read, so this reads about `limit`
        rows however many partitions there are: reading `limit` from each, then
        merging, made a worker with 32 partitions and 100,000 timers due read
        176,000 rows every 50 ms, and fire 50 timers/s.
        """
        return self.due_rows_after(now_ms, limit, None)

    def due_rows_after(self, now_ms: int, limit: int, after: bytes | None) -> list[TimerRow]:
        """The rows of `due` past the key `after` (all of them when None)."""
        if limit <= 0:
            return []
        partitions = self._partitions().values()
        # A key is in one partition only: the merge never compares values.
        per_partition = [due_rows_in(db, now_ms, after) for db in partitions]
        return list(islice(heapq.merge(*per_partition), limit))


def faust_partitions(
    app: faust.App, table: faust.Table
) -> Callable[[], Mapping[int, PartitionStore]]:
    """The databases of `table` for the partitions this worker actively owns, read when called.

    A partition counts when its database is open in the store (Faust opens it
    on assignment and drops it on revocation) and its changelog partition is
    among this worker's active assignments: a standby database, or one still
    open for a partition the last assignment moved away, is left out. A
    partition that is still being restored is not left out; pause the scanner
    while `app.rebalancing` (true until recovery ends) to cover that.
    """
    store = table.data
    if not isinstance(store, RocksDBStore) or not store.use_rocksdict:
        raise TypeError(f"timers need Faust's rocksdict store, not {type(store).__name__}")

    def partitions() -> Mapping[int, PartitionStore]:
        topic = table.changelog_topic_name
        actives = app.assignor.assigned_actives()
        # `_dbs` is private, but it is the only way to the per-partition databases.
        return {
            partition: db
            for partition, db in list(store._dbs.items())
            if TP(topic, partition) in actives
        }

    return partitions


class TimerScanner:
    """Fires due timers: every `interval_s`, sends each due timer to `fire`, in due order,
    with the traceparent its row keeps.

    A fired timer stays in the table until the orchestrator applies its
    `TimerFired` and deletes the row. Until then the scanner does not fire it
    again. The first send may be lost, so a timer is sent again once it has
    waited `resend_after_ms` and no fired timer's row has gone for as long:
    while rows keep going, the orchestrator is working through its queue and
    will reach the rest, and resending into a long queue only lengthened it
    (20,000 timers due at once slowed to a crawl). A resend after the row is
    gone is ignored by the engine. At most `max_in_flight` fired timers wait
    for the orchestrator at a time: more records would only lengthen its queue.
    While that many wait, the orchestrator has seconds of work queued and a
    scan, which reads past every fired row still there, could fire nothing:
    scans then come every `full_interval_s` (at 100,000 timers due, scanning
    every 50 ms took a third of the worker).

    A scan reads on past the last row the one before it reached, not from the
    first row: rows before it are fired and waiting, and the table tells the
    scanner of each row the orchestrator deletes (`TimerTable.on_delete`). At
    100,000 timers due, each scan read the 5,000 fired rows still there first.
    It reads from the first row again when nothing is in flight, when a resend
    may be due, and at least every `rescan_interval_s`: for rows that appear
    behind it (a partition newly assigned, a timer set due earlier) and rows
    deleted other than through the table. A rescan reads every fired row still
    there, so the rescans are also `rescan_ms_per_waiting` ms apart for each one
    waiting: once a second, rescans of 5,000 waiting rows (some 19 ms each) were
    most of the scanner's reading while 30,000 timers fired. A row behind the
    reach then waits seconds more, as long as the fired timers ahead of it keep
    the orchestrator busy anyway.

    With nothing in flight and nothing more due, the scanner sleeps until the
    first timer of the table is due, woken early when an earlier one is written
    (`TimerTable.on_set`), and for at most `idle_interval_s`: rows restored by a
    rebalance and a clock moved forward are not written through `set`. Scanning
    every 50 ms with nothing due took 5% of a busy worker.
    """

    def __init__(
        self,
        timers: TimerTable,
        fire: Callable[[DueTimer, str | None], Awaitable[None]],
        clock: Callable[[], int],
        interval_s: float = 0.05,
        batch: int = 500,
        resend_after_ms: int = 5_000,
        paused: Callable[[], bool] | None = None,
        max_in_flight: int = 5_000,
        full_interval_s: float = 0.5,
        idle_interval_s: float = 1.0,
        rescan_interval_s: float = 1.0,
        rescan_ms_per_waiting: float = 1.0,
    ) -> None:
        if batch < 1:
            raise ValueError(f"batch must be at least 1, not {batch}")
        self._timers = timers
        self._fire = fire
        self._clock = clock
        self._interval_s = interval_s
        self._batch = batch
        self._resend_after_ms = resend_after_ms
        self._paused = paused or (lambda: False)
        self._max_in_flight = max_in_flight
        self._full_interval_s = full_interval_s
        self._idle_interval_s = idle_interval_s
        self._rescan_ms = int(rescan_interval_s * 1000)
        self._rescan_ms_per_waiting = rescan_ms_per_waiting
        # The last row the scans reached, and when one last read from the first row.
        self._reached: bytes | None = None
        self._rescanned_at = 0
        # While idle: when the sleep ends (ms on `clock`), and what ends it sooner.
        self._wake_at_ms: int | None = None
        self._woken = asyncio.Event()
        timers.on_set = self._written
        timers.on_delete = self._deleted
        self.scans = 0
        # The rows of fired timers that may still be there, with when they were fired.
        self._in_flight: dict[bytes, int] = {}
        # When a fired timer's row was last seen gone (or firing began), and whether one has
        # gone through the table since the last scan: the scan stamps it with its own clock
        # reading, not one read per row deleted (at 100,000 timers due, a clock read per delete).
        self._progress_at = 0
        self._progressed = False
        self._task: asyncio.Task[None] | None = None

    @property
    def in_flight(self) -> int:
        """How many fired timers may still be waiting for the orchestrator."""
        return len(self._in_flight)

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="timer-scanner")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        while True:
            idle = False
            try:
                if not self._paused():
                    idle = await self.scan() < self._batch and not self._in_flight
            except Exception:
                log.exception("timer scan failed; the next one retries")
            if idle:
                await self._rest()
            else:
                full = len(self._in_flight) >= self._max_in_flight
                await asyncio.sleep(self._full_interval_s if full else self._interval_s)

    async def _rest(self) -> None:
        """Sleep until the first timer is due, an earlier one is written, or `idle_interval_s`."""
        now = self._clock()
        wake_at = now + int(self._idle_interval_s * 1000)
        try:
            due = self._timers.next_due_ms()
        except Exception:
            log.exception("reading the next timer failed; scanning again soon")
            due = now
        if due is not None:
            wake_at = max(min(wake_at, due), now)
        self._wake_at_ms = wake_at
        self._woken.clear()
        try:
            async with asyncio.timeout((wake_at - now) / 1000):
                await self._woken.wait()
        except TimeoutError:
            pass
        finally:
            self._wake_at_ms = None

    def _written(self, due_ms: int) -> None:
        if self._wake_at_ms is not None and due_ms < self._wake_at_ms:
            self._woken.set()

    def _deleted(self, key: bytes) -> None:
        if self._in_flight.pop(key, None) is not None:
            self._progressed = True

    def _rescan(self, now: int) -> bool:
        """Whether this scan reads from the first row (see the class docstring)."""
        if not self._in_flight or self._reached is None:
            return True
        spacing = max(self._rescan_ms, len(self._in_flight) * self._rescan_ms_per_waiting)
        if now - self._rescanned_at >= spacing:
            return True
        # The oldest fired first: a fired timer is added again only once forgotten.
        oldest = next(iter(self._in_flight.values()))
        resend = self._resend_after_ms
        return now - self._progress_at >= resend and now - oldest >= resend

    async def scan(self) -> int:
        """One pass: fire what is due now and not in flight; the number fired."""
        now = self._clock()
        self.scans += 1
        TIMER_SCANS.inc()
        if self._progressed or not self._in_flight:
            # Stamped a scan late at most: a resend waits that much longer, never less.
            self._progress_at = now
            self._progressed = False
        if self._rescan(now):
            # In-flight rows are still in the table, in the way: read past them.
            limit = self._batch + len(self._in_flight)
            due = self._timers.due_rows(now, limit)
            self._forget([key for key, _ in due], now, complete=len(due) < limit)
            self._rescanned_at = now
        else:
            due = self._timers.due_rows_after(now, self._batch, self._reached)
        # Rows are compared as keys; only those fired are parsed.
        fired = 0
        for key, value in due:
            if fired == self._batch or len(self._in_flight) >= self._max_in_flight:
                break
            if key in self._in_flight:
                self._reached = key
                continue
            if self._paused():
                break
            try:
                timer = parse_timer_key(key)
            except ValueError:
                # Counted as in flight, so that it is warned about once a resend, not a scan.
                self._in_flight[key] = now
                self._reached = key
                log.warning("skipping a row of the timers table that is not a timer: %r", key)
                continue
            await self._fire(timer, row_traceparent(value))
            self._in_flight[key] = now
            self._reached = key
            fired += 1
        return fired

    def _forget(self, due: list[bytes], now: int, complete: bool) -> None:
        """Drop in-flight timers whose row is gone, and those due for a resend.

        `due` is every due row when `complete`, otherwise every due row up to
        its last one; an in-flight timer that should be in it and is not has
        been deleted.
        """
        listed = set(due)
        horizon = None if complete else due[-1]
        for key in list(self._in_flight):
            if key not in listed and (horizon is None or key < horizon):
                del self._in_flight[key]
                self._progress_at = now
        if now - self._progress_at < self._resend_after_ms:
            return
        for key, fired_at in list(self._in_flight.items()):
            if now - fired_at >= self._resend_after_ms:
                del self._in_flight[key]
