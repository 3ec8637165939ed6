"""Durable timers: row keys, scans of real RocksDB partitions, and the scanner that fires them."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator, Iterator, Mapping, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from rocksdict import Options, Rdict, ReadOptions

from braidflow.streams.timers import (
    DueTimer,
    RowCursor,
    TimerRow,
    TimerScanner,
    TimerTable,
    due_in,
    parse_timer_key,
    timer_key,
)

FAUST_OFFSET_KEY = b"__faust\0offset__"
NOW = 1_750_000_000_000

execution_ids = st.text(st.characters(exclude_characters="\0", exclude_categories=("Cs",)))
timer_ids = st.text(st.characters(exclude_categories=("Cs",)))
dues = st.integers(0, 2**63)
timers = st.builds(DueTimer, dues, execution_ids, timer_ids)


def key_of(timer: DueTimer) -> bytes:
    return timer_key(timer.due_ms, timer.execution_id, timer.timer_id)


def open_partition(path: Path) -> Rdict:
    """A partition database opened as Faust opens them: raw bytes keys and values."""
    return Rdict(str(path), options=Options(raw_mode=True))


@pytest.fixture
def partitions(tmp_path: Path) -> Iterator[dict[int, Rdict]]:
    dbs = {p: open_partition(tmp_path / f"timers-{p}.db") for p in range(3)}
    for db in dbs.values():
        # Faust keeps its offset in every partition database.
        db[FAUST_OFFSET_KEY] = b"42"
    yield dbs
    for db in dbs.values():
        db.close()


class PartitionedTable(MutableMapping[bytes, bytes]):
    """The Faust table as the orchestrator sees it: a write lands in its execution's partition."""

    def __init__(self, dbs: Mapping[int, Rdict]) -> None:
        self.dbs = dbs
        self.deletes = 0
        self.reads = 0

    def _db(self, key: bytes) -> Rdict:
        execution_id = parse_timer_key(key).execution_id
        return self.dbs[zlib.crc32(execution_id.encode()) % len(self.dbs)]

    def __getitem__(self, key: bytes) -> bytes:
        self.reads += 1
        value = self._db(key).get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self._db(key)[key] = value

    def __delitem__(self, key: bytes) -> None:
        self.deletes += 1
        del self._db(key)[key]

    def __iter__(self) -> Iterator[bytes]:
        raise NotImplementedError("the timers never list the table")

    def __len__(self) -> int:
        raise NotImplementedError("the timers never count the table")


class CountingCursor:
    def __init__(self, cursor: RowCursor, counts: dict[str, int]) -> None:
        self._cursor = cursor
        self._counts = counts

    def seek_to_first(self) -> None:
        self._cursor.seek_to_first()

    def seek(self, key: bytes) -> None:
        self._cursor.seek(key)

    def valid(self) -> bool:
        return self._cursor.valid()

    def key(self) -> Any:
        self._counts["keys"] += 1
        return self._cursor.key()

    def value(self) -> Any:
        return self._cursor.value()

    def next(self) -> None:
        self._counts["steps"] += 1
        self._cursor.next()


class CountingPartition:
    """A real partition database that counts the rows a scan reads."""

    def __init__(self, db: Rdict) -> None:
        self._db = db
        self.counts = {"keys": 0, "steps": 0}

    def iter(self, read_opt: ReadOptions) -> RowCursor:
        return CountingCursor(self._db.iter(read_opt), self.counts)


class FakeClock:
    def __init__(self, now: int = NOW) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


class Fired:
    """What the scanner sent, in order, and the traceparent of each."""

    def __init__(self) -> None:
        self.timers: list[DueTimer] = []
        self.traceparents: list[str | None] = []

    async def __call__(self, timer: DueTimer, traceparent: str | None) -> None:
        self.timers.append(timer)
        self.traceparents.append(traceparent)


def table_on(dbs: Mapping[int, Rdict]) -> tuple[TimerTable, PartitionedTable]:
    faust_table = PartitionedTable(dbs)
    return TimerTable(faust_table, lambda: dbs), faust_table


# -- keys


@given(st.lists(timers))
def test_keys_sort_by_due_time_then_execution_then_timer(items: list[DueTimer]) -> None:
    by_key = sorted(items, key=key_of)
    by_fields = sorted(items, key=lambda t: (t.due_ms, t.execution_id, t.timer_id))
    assert by_key == by_fields


def test_a_timer_due_earlier_sorts_first_whatever_its_execution() -> None:
    assert timer_key(999, "zzz", "t") < timer_key(1_000, "aaa", "t")
    assert timer_key(2**40, "a", "t") < timer_key(2**40 + 1, "a", "t")


def test_timers_due_together_sort_by_execution_id_even_when_one_id_extends_another() -> None:
    assert timer_key(NOW, "exec", "zzz") < timer_key(NOW, "exec-2", "aaa")
    assert timer_key(NOW, "exec-1", "b") < timer_key(NOW, "exec-2", "a")
    assert timer_key(NOW, "exec-1", "a") < timer_key(NOW, "exec-1", "b")


@given(timers)
def test_a_key_parses_back_to_its_timer(timer: DueTimer) -> None:
    assert parse_timer_key(key_of(timer)) == timer


def test_a_timer_id_may_hold_slashes_and_any_text() -> None:
    timer = DueTimer(NOW, "e-ü", "wait/1/timeout\0x")
    assert parse_timer_key(key_of(timer)) == timer


def test_keys_refuse_what_they_cannot_encode() -> None:
    with pytest.raises(ValueError, match="NUL"):
        timer_key(NOW, "a\0b", "t")
    with pytest.raises(ValueError, match="due time"):
        timer_key(-1, "a", "t")
    with pytest.raises(ValueError, match="due time"):
        timer_key(2**64, "a", "t")


@pytest.mark.parametrize("key", [b"", b"short", b"\0" * 8 + b"no separator", FAUST_OFFSET_KEY])
def test_a_row_that_is_not_a_timer_does_not_parse(key: bytes) -> None:
    with pytest.raises(ValueError, match="not a timer key"):
        parse_timer_key(key)


def test_a_key_with_invalid_utf8_does_not_parse() -> None:
    with pytest.raises(ValueError, match="not a timer key"):
        parse_timer_key(b"\0" * 8 + b"\xff\0t")


# -- scanning one partition


def test_a_scan_of_100_000_pending_timers_reads_only_the_10_due(
    partitions: dict[int, Rdict],
) -> None:
    db = partitions[0]
    due = [DueTimer(NOW - 10 + i, f"exec-{i}", "wait/1/timeout") for i in range(10)]
    pending = [
        DueTimer(NOW + 1 + i * 37, f"exec-{i % 5000}", f"wait/{i}/timeout")
        for i in range(100_000 - len(due))
    ]
    for timer in pending + due:
        db[key_of(timer)] = timer.timer_id.encode()
    counted = CountingPartition(db)

    assert due_in(counted, NOW, limit=500) == due
    assert counted.counts == {"keys": 10, "steps": 10}


def test_a_scan_stops_at_the_limit(partitions: dict[int, Rdict]) -> None:
    db = partitions[0]
    for i in range(20):
        db[timer_key(NOW - i, "exec", f"t{i}")] = b"t"
    counted = CountingPartition(db)

    found = due_in(counted, NOW, limit=5)

    assert [t.due_ms for t in found] == [NOW - 19, NOW - 18, NOW - 17, NOW - 16, NOW - 15]
    assert counted.counts["keys"] == 5


def test_a_timer_due_exactly_now_is_due(partitions: dict[int, Rdict]) -> None:
    db = partitions[0]
    db[timer_key(NOW, "exec", "now")] = b"now"
    db[timer_key(NOW + 1, "exec", "later")] = b"later"

    assert due_in(db, NOW, 10) == [DueTimer(NOW, "exec", "now")]
    assert due_in(db, NOW - 1, 10) == []


def test_a_scan_never_returns_faust_offset_row_even_far_in_the_future(
    partitions: dict[int, Rdict],
) -> None:
    db = partitions[0]
    db[timer_key(NOW, "exec", "t")] = b"t"

    assert due_in(db, 2**62, 10) == [DueTimer(NOW, "exec", "t")]


def test_a_row_that_is_not_a_timer_is_skipped_not_fatal(partitions: dict[int, Rdict]) -> None:
    db = partitions[0]
    db[(NOW - 5).to_bytes(8, "big") + b"garbage"] = b""
    db[timer_key(NOW, "exec", "t")] = b"t"

    assert due_in(db, NOW, 10) == [DueTimer(NOW, "exec", "t")]


# -- the table


def test_set_and_delete_write_rows_the_scan_reads(partitions: dict[int, Rdict]) -> None:
    timers, _ = table_on(partitions)
    first = DueTimer(NOW - 2, "exec-a", "wait/1/timeout")
    second = DueTimer(NOW - 1, "exec-b", "wait/1/timeout")
    timers.set(second)
    timers.set(first)

    assert timers.due(NOW, 10) == [first, second]

    timers.delete(first)
    assert timers.due(NOW, 10) == [second]


def test_deleting_a_timer_twice_sends_one_delete(partitions: dict[int, Rdict]) -> None:
    timers, faust_table = table_on(partitions)
    timer = DueTimer(NOW, "exec", "wait/1/timeout")
    timers.set(timer)

    timers.delete(timer)
    timers.delete(timer)

    assert faust_table.deletes == 1
    assert timers.due(NOW, 10) == []


def test_due_merges_partitions_in_due_order_up_to_the_limit(
    partitions: dict[int, Rdict],
) -> None:
    timers, _ = table_on(partitions)
    expected = [DueTimer(NOW - 100 + i, f"exec-{i}", "t") for i in range(30)]
    for timer in reversed(expected):
        timers.set(timer)
    assert len({p for p, db in partitions.items() if due_in(db, NOW, 1)}) == 3

    assert timers.due(NOW, 30) == expected
    assert timers.due(NOW, 7) == expected[:7]


def test_due_reads_about_the_limit_however_many_partitions(tmp_path: Path) -> None:
    dbs = {p: open_partition(tmp_path / f"many-{p}.db") for p in range(32)}
    try:
        timers, _ = table_on(dbs)
        for i in range(32 * 200):
            timers.set(DueTimer(NOW - i, f"exec-{i}", "t"))
        counted = {p: CountingPartition(db) for p, db in dbs.items()}
        read = TimerTable(PartitionedTable(dbs), lambda: counted)

        due = read.due_rows(NOW, 500)

        assert [parse_timer_key(k).due_ms for k, _ in due] == [
            NOW - 32 * 200 + 1 + i for i in range(500)
        ]
        # Merged as read: 500 rows and one look-ahead per partition, not 500 from each.
        assert sum(c.counts["keys"] for c in counted.values()) <= 500 + 32
    finally:
        for db in dbs.values():
            db.close()


def test_due_reads_only_the_partitions_owned_now(partitions: dict[int, Rdict]) -> None:
    owned = dict(partitions)
    timers = TimerTable(PartitionedTable(partitions), lambda: owned)
    for i in range(30):
        timers.set(DueTimer(NOW, f"exec-{i}", "t"))
    revoked = set(due_in(partitions[1], NOW, 100))
    assert revoked

    del owned[1]

    assert (
        set(timers.due(NOW, 100)) == {DueTimer(NOW, f"exec-{i}", "t") for i in range(30)} - revoked
    )


# -- the scanner


def scanner_on(timers: TimerTable, clock: FakeClock, fired: Fired, **options: Any) -> TimerScanner:
    return TimerScanner(timers, fired, clock, **options)


async def test_a_timer_fires_once_it_is_due_and_not_before(partitions: dict[int, Rdict]) -> None:
    timers, _ = table_on(partitions)
    clock, fired = FakeClock(), Fired()
    scanner = scanner_on(timers, clock, fired)
    timer = DueTimer(NOW + 1_000, "exec", "wait/1/timeout")
    timers.set(timer)

    assert await scanner.scan() == 0
    clock.now += 999
    assert await scanner.scan() == 0
    clock.now += 1
    assert await scanner.scan() == 1
    assert fired.timers == [timer]


async def test_a_fired_timer_carries_its_rows_traceparent_read_by_the_scan(
    partitions: dict[int, Rdict],
) -> None:
    # Read through the table, each fired timer's row cost a lookup in every partition's
    # database (Faust's store asks each which holds a key): a tenth of the worker's CPU.
    timers, faust_table = table_on(partitions)
    clock, fired = FakeClock(), Fired()
    traced = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    timers.set(DueTimer(NOW - 1, "traced", "t"), traced)
    timers.set(DueTimer(NOW, "untraced", "t"))

    await scanner_on(timers, clock, fired).scan()

    assert fired.traceparents == [traced, None]
    assert faust_table.reads == 0


async def test_timers_fire_in_due_order(partitions: dict[int, Rdict]) -> None:
    timers, _ = table_on(partitions)
    clock, fired = FakeClock(), Fired()
    expected = [DueTimer(NOW - 50 + i, f"exec-{i % 7}", f"t{i}") for i in range(50)]
    for timer in reversed(expected):
        timers.set(timer)

    await scanner_on(timers, clock, fired).scan()

    assert fired.timers == expected


async def test_a_fired_timer_is_not_fired_again_until_the_resend_delay(
    partitions: dict[int, Rdict],
) -> None:
    timers, _ = table_on(partitions)
    clock, fired = FakeClock(), Fired()
    scanner = scanner_on(timers, clock, fired, resend_after_ms=5_000)
    timer = DueTimer(NOW, "exec", "wait/1/timeout")
    timers.set(timer)

    await scanner.scan()
    for _ in range(10):
        clock.now += 499
        await scanner.scan()
    assert fired.timers == [timer]

    # The orchestrator never applied it (the record was lost): send it again.
    clock.now += 10
    await scanner.scan()
    assert fired.timers == [timer, timer]


async def test_no_timer_is_resent_while_the_orchestrator_works_through_the_fired_ones(
    partitions: dict[int, Rdict],
) -> None:
    timers, _ = table_on(partitions)
    clock, fired = FakeClock(), Fired()
    scanner = scanner_on(timers, clock, fired, resend_after_ms=5_000)
    for i in range(40):
        timers.set(DueTimer(NOW, f"exec-{i:02}", "t"))
    await scanner.scan()
    assert len(fired.timers) == 40

    # A slow orchestrator applies one fired timer a second, far behind the resend delay.
    for applied in fired.timers[:20]:
        clock.now += 1_000
        timers.delete(applied)
        await scanner.scan()
    assert len(fired.timers) == 40

    # Then nothing goes for the resend delay: the rest may have been lost, so they go again.
    clock.now += 5_000
    await scanner.scan()
    assert fired.timers[40:] == fired.timers[20:40]


async def test_the_rows_the_orchestrator_deletes_read_no_clock_and_hold_resends_off(
    partitions: dict[int, Rdict],
) -> None:
    # A clock read per deleted row was one per fired timer: 100,000 at once, each reading the
    # bench's offset file once the last reading was 50 ms old. The scan stamps the progress.
    timers, _ = table_on(partitions)
    reads = 0

    def clock() -> int:
        nonlocal reads
        reads += 1
        return now

    now = NOW
    fired = Fired()
    scanner = scanner_on(timers, clock, fired, resend_after_ms=5_000)  # type: ignore[arg-type]
    for i in range(10):
        timers.set(DueTimer(NOW, f"exec-{i}", "t"))
    await scanner.scan()
    read_before = reads

    now = NOW + 4_000
    timers.delete(fired.timers[0])
    assert reads == read_before

    # Progress was seen by the scan at 4 s: the rest wait 5 s from there, not from the start.
    await scanner.scan()
    now = NOW + 8_999
    await scanner.scan()
    assert len(fired.timers) == 10
    now = NOW + 9_000
    await scanner.scan()
    assert fired.timers[10:] == fired.timers[1:10]


async def test_a_timer_whose_row_is_deleted_is_forgotten(partitions: dict[int, Rdict]) -> None:
    timers, _ = table_on(partitions)
    clock, fired = FakeClock(), Fired()
    scanner = scanner_on(timers, clock, fired)
    for i in range(20):
        timers.set(DueTimer(NOW, f"exec-{i}", "t"))
    await scanner.scan()
    assert scanner.in_flight == 20

    for timer in fired.timers:
        timers.delete(timer)
    clock.now += 50
    await scanner.scan()

    assert scanner.in_flight == 0
    assert len(fired.timers) == 20


async def test_a_timer_the_orchestrator_deletes_stops_waiting_at_once(
    partitions: dict[int, Rdict],
) -> None:
    timers, _ = table_on(partitions)
    scanner = scanner_on(timers, FakeClock(), Fired())
    for i in range(20):
        timers.set(DueTimer(NOW, f"exec-{i}", "t"))
    await scanner.scan()

    timers.delete(DueTimer(NOW, "exec-3", "t"))

    assert scanner.in_flight == 19


async def test_a_backlog_scan_reads_on_past_the_fired_rows_not_from_the_first(
    tmp_path: Path,
) -> None:
    # At 100,000 timers due, each scan read the 5,000 fired rows still there first.
    dbs = {p: open_partition(tmp_path / f"backlog-{p}.db") for p in range(4)}
    try:
        timers, _ = table_on(dbs)
        for i in range(1_000):
            timers.set(DueTimer(NOW - 1_000 + i, f"exec-{i:04}", "t"))
        counted = {p: CountingPartition(db) for p, db in dbs.items()}
        read = TimerTable(PartitionedTable(dbs), lambda: counted)
        clock, fired = FakeClock(), Fired()
        scanner = scanner_on(read, clock, fired, batch=100)
        reads = []
        for _ in range(5):
            before = sum(c.counts["keys"] for c in counted.values())
            await scanner.scan()
            reads.append(sum(c.counts["keys"] for c in counted.values()) - before)
            clock.now += 50

        assert [t.execution_id for t in fired.timers] == [f"exec-{i:04}" for i in range(500)]
        # A batch and one look-ahead per partition (and the row it resumes from), each time.
        assert max(reads) <= 100 + 2 * 4
    finally:
        for db in dbs.values():
            db.close()


async def test_a_timer_set_behind_the_scans_reach_fires_at_the_next_rescan(
    partitions: dict[int, Rdict],
) -> None:
    timers, _ = table_on(partitions)
    clock, fired = FakeClock(), Fired()
    scanner = scanner_on(timers, clock, fired, batch=10, rescan_interval_s=1.0)
    for i in range(30):
        timers.set(DueTimer(NOW - 100 + i, f"exec-{i:02}", "t"))
    await scanner.scan()
    late = DueTimer(NOW - 500, "late", "t")
    timers.set(late)

    for _ in range(3):
        clock.now += 300
        await scanner.scan()
    clock.now += 100
    await scanner.scan()

    assert fired.timers.count(late) == 1 and len(fired.timers) == 31


async def test_with_many_waiting_a_rescan_comes_a_millisecond_apart_for_each(
    partitions: dict[int, Rdict],
) -> None:
    # A rescan reads every fired row still there: 2,000 waiting, at most one each 2 s.
    rescans = 0

    class CountedTimers(TimerTable):
        def due_rows(self, now_ms: int, limit: int) -> list[TimerRow]:
            nonlocal rescans
            rescans += 1
            return super().due_rows(now_ms, limit)

    timers = CountedTimers(PartitionedTable(partitions), lambda: partitions)
    clock, fired = FakeClock(), Fired()
    options = {"batch": 1_000, "max_in_flight": 2_000, "rescan_interval_s": 1.0}
    scanner = scanner_on(timers, clock, fired, **options)
    for i in range(3_000):
        timers.set(DueTimer(NOW, f"exec-{i:04}", "t"))
    assert [await scanner.scan() for _ in range(2)] == [1_000, 1_000]
    assert rescans == 1

    for _ in range(3):
        clock.now += 600
        await scanner.scan()
    assert rescans == 1  # 1.8 s on: past the second, not yet 2,000 ms
    clock.now += 200
    await scanner.scan()
    assert rescans == 2 and len(fired.timers) == 2_000


async def test_a_backlog_fires_a_batch_per_scan_without_repeating_the_first(
    partitions: dict[int, Rdict],
) -> None:
    timers, _ = table_on(partitions)
    clock, fired = FakeClock(), Fired()
    scanner = scanner_on(timers, clock, fired, batch=100)
    expected = [DueTimer(NOW - 1_000 + i, f"exec-{i}", "t") for i in range(250)]
    for timer in expected:
        timers.set(timer)

    assert [await scanner.scan() for _ in range(4)] == [100, 100, 50, 0]
    assert fired.timers == expected


async def test_deleted_rows_are_forgotten_even_when_the_scan_is_cut_at_its_limit(
    partitions: dict[int, Rdict],
) -> None:
    timers, _ = table_on(partitions)
    clock, fired = FakeClock(), Fired()
    scanner = scanner_on(timers, clock, fired, batch=10)
    for i in range(100):
        timers.set(DueTimer(NOW - 1_000 + i, f"exec-{i}", "t"))
    await scanner.scan()
    first = list(fired.timers)
    for timer in first[:5]:
        timers.delete(timer)

    await scanner.scan()

    assert scanner.in_flight == 15
    assert fired.timers[:10] == first


async def test_the_scanner_stops_firing_while_too_many_wait_for_the_orchestrator(
    partitions: dict[int, Rdict],
) -> None:
    timers, _ = table_on(partitions)
    clock, fired = FakeClock(), Fired()
    scanner = scanner_on(timers, clock, fired, batch=10, max_in_flight=25)
    for i in range(100):
        timers.set(DueTimer(NOW, f"exec-{i:03}", "t"))

    assert [await scanner.scan() for _ in range(4)] == [10, 10, 5, 0]

    for timer in fired.timers[:10]:
        timers.delete(timer)
    assert await scanner.scan() == 10


async def test_while_too_many_wait_the_scanner_scans_seldom(
    partitions: dict[int, Rdict],
) -> None:
    # Each scan reads past every fired row still there, for nothing while none may fire.
    scans = 0

    class CountedTimers(TimerTable):
        def due_rows(self, now_ms: int, limit: int) -> list[TimerRow]:
            nonlocal scans
            scans += 1
            return super().due_rows(now_ms, limit)

    timers = CountedTimers(PartitionedTable(partitions), lambda: partitions)
    clock, fired = FakeClock(), Fired()
    options = {"batch": 10, "max_in_flight": 10, "interval_s": 0.001, "full_interval_s": 60}
    scanner = scanner_on(timers, clock, fired, **options)
    for i in range(100):
        timers.set(DueTimer(NOW, f"exec-{i:03}", "t"))

    await scanner.start()
    try:
        await _until(lambda: len(fired.timers) == 10)
        await asyncio.sleep(0.1)
    finally:
        await scanner.stop()
    assert scans == 1 and len(fired.timers) == 10


async def test_a_paused_scanner_fires_nothing(partitions: dict[int, Rdict]) -> None:
    timers, _ = table_on(partitions)
    clock, fired = FakeClock(), Fired()
    rebalancing = True
    scanner = scanner_on(timers, clock, fired, paused=lambda: rebalancing, interval_s=0.001)
    timers.set(DueTimer(NOW, "exec", "t"))

    await scanner.start()
    try:
        await asyncio.sleep(0.02)
        assert fired.timers == []
        rebalancing = False
        await _until(lambda: bool(fired.timers))
    finally:
        await scanner.stop()
    assert fired.timers == [DueTimer(NOW, "exec", "t")]


async def test_the_scanner_carries_on_after_a_failed_send(
    partitions: dict[int, Rdict], caplog: pytest.LogCaptureFixture
) -> None:
    timers, _ = table_on(partitions)
    clock = FakeClock()
    attempts: list[DueTimer] = []
    sent: list[DueTimer] = []

    async def flaky_fire(timer: DueTimer, traceparent: str | None) -> None:
        attempts.append(timer)
        if len(attempts) == 1:
            raise ConnectionError("broker unavailable")
        sent.append(timer)

    scanner = TimerScanner(timers, flaky_fire, clock, interval_s=0.001)
    timers.set(DueTimer(NOW, "exec", "t"))

    await scanner.start()
    try:
        await _until(lambda: bool(sent))
    finally:
        await scanner.stop()
    assert sent == [DueTimer(NOW, "exec", "t")]
    assert "timer scan failed" in caplog.text


async def test_stop_ends_the_loop_and_start_again_resumes(partitions: dict[int, Rdict]) -> None:
    timers, _ = table_on(partitions)
    clock, fired = FakeClock(), Fired()
    scanner = scanner_on(timers, clock, fired, interval_s=0.001)
    await scanner.start()
    await scanner.stop()
    timers.set(DueTimer(NOW, "exec", "t"))
    await asyncio.sleep(0.01)
    assert fired.timers == []

    await scanner.start()
    try:
        await _until(lambda: bool(fired.timers))
    finally:
        await scanner.stop()


def test_a_scanner_needs_a_positive_batch(partitions: dict[int, Rdict]) -> None:
    timers, _ = table_on(partitions)
    with pytest.raises(ValueError, match="batch"):
        TimerScanner(timers, Fired(), FakeClock(), batch=0)


async def _until(condition: Any, timeout_s: float = 2.0) -> None:
    async with asyncio.timeout(timeout_s):
        while not condition():
            await asyncio.sleep(0.001)


def test_next_due_is_the_first_timer_of_the_owned_partitions(
    partitions: dict[int, Rdict],
) -> None:
    timers, _ = table_on(partitions)
    assert timers.next_due_ms() is None

    timers.set(DueTimer(NOW + 500, "late", "t"))
    timers.set(DueTimer(NOW + 20, "early", "t"))
    assert timers.next_due_ms() == NOW + 20


@dataclass(frozen=True)
class IdleScanning:
    """A running scanner of `timers` (rows of `faust_table`) on `clock`, sending to `fired`."""

    timers: TimerTable
    faust_table: PartitionedTable
    clock: FakeClock
    fired: Fired
    scanner: TimerScanner


@asynccontextmanager
async def idle_scanning(
    partitions: dict[int, Rdict], idle_interval_s: float, *written: DueTimer
) -> AsyncIterator[IdleScanning]:
    """A scanner that scans every `idle_interval_s` while nothing is due, with `written` in its
    table, started and through its first scan; stopped on the way out."""
    timers, faust_table = table_on(partitions)
    clock, fired = FakeClock(), Fired()
    scanner = scanner_on(timers, clock, fired, interval_s=0.001, idle_interval_s=idle_interval_s)
    for timer in written:
        timers.set(timer)

    await scanner.start()
    try:
        await _until(lambda: scanner.scans == 1)
        yield IdleScanning(timers, faust_table, clock, fired, scanner)
    finally:
        await scanner.stop()


async def test_an_idle_scanner_does_not_scan_while_nothing_is_due(
    partitions: dict[int, Rdict],
) -> None:
    # Scanning every `interval_s` with nothing due took 5% of a busy worker.
    async with idle_scanning(partitions, 60, DueTimer(NOW + 3_600_000, "later", "t")) as idle:
        await asyncio.sleep(0.2)
    assert idle.scanner.scans == 1 and idle.fired.timers == []


async def test_an_idle_scanner_wakes_when_an_earlier_timer_is_written(
    partitions: dict[int, Rdict],
) -> None:
    async with idle_scanning(partitions, 60, DueTimer(NOW + 3_600_000, "later", "t")) as idle:
        idle.timers.set(DueTimer(NOW, "now", "t"))
        await _until(lambda: bool(idle.fired.timers))
    assert idle.fired.timers == [DueTimer(NOW, "now", "t")]


async def test_an_idle_scanner_wakes_when_its_first_timer_comes_due(
    partitions: dict[int, Rdict],
) -> None:
    async with idle_scanning(partitions, 60, DueTimer(NOW + 30, "soon", "t")) as idle:
        idle.clock.now = NOW + 30
        await _until(lambda: bool(idle.fired.timers))
    assert idle.fired.timers == [DueTimer(NOW + 30, "soon", "t")]


async def test_an_idle_scanner_still_scans_every_idle_interval(
    partitions: dict[int, Rdict],
) -> None:
    # A row restored by a rebalance, or a clock moved forward, wakes no one.
    async with idle_scanning(partitions, 0.05) as idle:
        idle.faust_table[key_of(DueTimer(NOW, "restored", "t"))] = b"t"
        await _until(lambda: bool(idle.fired.timers))
    assert idle.fired.timers == [DueTimer(NOW, "restored", "t")]
