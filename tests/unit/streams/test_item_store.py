"""The foreach chunk rows in the executions table: written, collected in order, dropped, capped."""

from __future__ import annotations

import json

import pytest

from braidflow.engine import (
    CollectItems,
    DropItems,
    ItemError,
    ItemsChunk,
    ItemsCollected,
    LifecycleEvent,
)
from braidflow.streams.items import ChunkTooLarge, ItemStore, chunk_key

T0 = 1_795_000_000_000


def collect(chunks: int, total: int) -> CollectItems:
    return CollectItems("ex/each/1/collect", "ex", T0, "each", 1, total, chunks)


def test_chunks_are_rows_and_the_collection_reads_them_in_order() -> None:
    table: dict[bytes, bytes] = {}
    store = ItemStore()
    event = LifecycleEvent("ex/each/1/node.started", "node.started", "ex", "w", 1, T0, "each", 1)
    chunks = [
        ItemsChunk("ex", "each", 1, 1, (3, 4), (ItemError(5, "E", "no"),)),
        ItemsChunk("ex", "each", 1, 0, (1, 2), ()),
    ]
    assert store.apply([*chunks, event], table) == [event]
    assert json.loads(table[chunk_key("ex", "each", 1, 0)]) == {"results": [1, 2], "errors": []}
    [answer] = store.apply([collect(2, 5)], table)
    assert answer == ItemsCollected(
        "ex/each/1/collect/collected", "ex", T0, "each", 1, (1, 2, 3, 4), (ItemError(5, "E", "no"),)
    )
    assert store.apply([DropItems("ex", "each", 1, 2)], table) == []
    assert table == {}


def test_a_chunk_written_in_the_same_step_as_the_collection_is_collected() -> None:
    table: dict[bytes, bytes] = {}
    [answer] = ItemStore().apply([ItemsChunk("ex", "each", 1, 0, ("a",)), collect(1, 1)], table)
    assert isinstance(answer, ItemsCollected) and answer.results == ("a",)


def test_a_missing_chunk_gives_a_short_answer_for_the_engine_to_refuse() -> None:
    table: dict[bytes, bytes] = {}
    store = ItemStore()
    store.apply([ItemsChunk("ex", "each", 1, 1, ("b",))], table)
    [answer] = store.apply([collect(2, 2)], table)
    assert isinstance(answer, ItemsCollected) and answer.results == ("b",) and answer.error is None


def test_results_past_the_cap_fail_the_collection_with_a_reason() -> None:
    table: dict[bytes, bytes] = {}
    store = ItemStore(max_results_bytes=1000)
    store.apply([ItemsChunk("ex", "each", 1, k, ("x" * 300,)) for k in range(5)], table)
    [answer] = store.apply([collect(5, 5)], table)
    assert isinstance(answer, ItemsCollected) and answer.results == ()
    assert answer.error is not None and answer.error.type == "ResultsTooLarge"
    assert "1000 bytes" in answer.error.message and answer.error.node_id == "each"


def test_dropping_chunks_never_written_is_harmless() -> None:
    assert ItemStore().apply([DropItems("ex", "each", 2, 3)], {}) == []


def test_a_chunk_over_the_row_limit_is_refused_before_it_is_written() -> None:
    table: dict[bytes, bytes] = {}
    store = ItemStore(max_row_bytes=1000)
    store.apply([ItemsChunk("ex", "each", 1, 0, ("x" * 300,))], table)
    with pytest.raises(ChunkTooLarge) as refused:
        store.apply([ItemsChunk("ex", "each", 1, 1, ("x" * 600, "y" * 600))], table)
    assert refused.value.size > 1000
    assert list(table) == [chunk_key("ex", "each", 1, 0)]
