"""A worker's start skips Faust's second of sleep before the tables register, and a table's
rebalance collects garbage only when it closed a partition's database. Faust's own methods,
patched, are driven with plain objects standing in for the table manager and the store."""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from typing import Any

import pytest
from faust.stores.rocksdb import Store
from faust.tables.manager import TableManager
from faust.types import TP

from braidflow.streams.quick_start import patch_start_waits

CHANGELOG = "braidflow-executions-changelog"


@dataclass
class StartingTables:
    """What TableManager.on_start touches; notes what it was asked to do."""

    calls: list[str] = field(default_factory=list)
    should_stop: bool = False

    async def sleep(self, seconds: float) -> None:
        self.calls.append(f"sleep {seconds:g}")

    async def _update_channels(self) -> None:
        self.calls.append("register the tables")

    @property
    def recovery(self) -> StartingTables:
        return self

    async def start(self) -> None:
        self.calls.append("start the recovery")


async def test_the_tables_register_and_recover_without_a_sleep_first() -> None:
    patch_start_waits()
    tables = StartingTables()
    await TableManager.on_start(tables)  # type: ignore[arg-type]
    assert tables.calls == ["register the tables", "start the recovery"]


async def test_a_stopping_worker_registers_no_tables() -> None:
    patch_start_waits()
    tables = StartingTables(should_stop=True)
    await TableManager.on_start(tables)  # type: ignore[arg-type]
    assert tables.calls == []


@dataclass
class Changelog:
    topics: frozenset[str] = frozenset({CHANGELOG})


@dataclass
class Table:
    changelog_topic: Changelog = field(default_factory=Changelog)


@dataclass
class OpenStore:
    """The part of a RocksDB store `revoke_partitions` reads: its open databases."""

    _dbs: dict[int, Any]
    logger: Any = None

    def __post_init__(self) -> None:
        self.logger = self

    def info(self, *args: Any) -> None:
        pass


@pytest.fixture
def collections(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    made: list[int] = []
    monkeypatch.setattr(gc, "collect", lambda *args: made.append(1) or 0)
    return made


def test_an_assignment_that_revokes_nothing_collects_no_garbage(collections: list[int]) -> None:
    patch_start_waits()
    store = OpenStore({0: object()})
    Store.revoke_partitions(store, Table(), set())  # type: ignore[arg-type]
    # Partitions of another table's changelog, or not open here: nothing of this store closes.
    Store.revoke_partitions(  # type: ignore[arg-type]
        store, Table(), {TP("braidflow-timers-changelog", 0), TP(CHANGELOG, 3)}
    )
    assert collections == []
    assert list(store._dbs) == [0]


def test_a_revoked_open_partition_is_closed_and_collected(collections: list[int]) -> None:
    patch_start_waits()
    store = OpenStore({0: object(), 1: object()})
    Store.revoke_partitions(store, Table(), {TP(CHANGELOG, 1)})  # type: ignore[arg-type]
    assert list(store._dbs) == [0]
    assert collections == [1]
