"""The caching partitioner must place every key where Kafka's default partitioner does."""

from __future__ import annotations

import tracemalloc

import pytest
from aiokafka.partitioner import DefaultPartitioner
from aiokafka.partitioner import murmur2 as aiokafka_murmur2
from hypothesis import given
from hypothesis import strategies as st

from braidflow.streams import partitioner
from braidflow.streams.partitioner import KeyPartitioner, murmur2

_MASK = 0xFFFFFFFF


@given(st.binary(max_size=200))
def test_the_hash_is_aiokafkas_murmur2(key: bytes) -> None:
    assert murmur2(key) == aiokafka_murmur2(key)


def test_the_hash_of_known_keys_is_the_java_clients() -> None:
    # Utils.murmur2 of Kafka's Java client, as its own tests give them (signed ints there).
    assert murmur2(b"21") & _MASK == -973932308 & _MASK
    assert murmur2(b"foobar") & _MASK == -790332482 & _MASK
    assert murmur2(b"a-little-bit-long-string") & _MASK == -985981536 & _MASK
    assert murmur2(b"a-little-bit-longer-string") & _MASK == -1486304829 & _MASK


@given(st.lists(st.binary(min_size=0, max_size=64), min_size=1, max_size=50), st.integers(1, 64))
def test_same_partition_as_the_default_partitioner(keys: list[bytes], count: int) -> None:
    partitions = list(range(count))
    ours = KeyPartitioner(capacity=8)
    for key in keys * 2:  # the second round is answered from the remembered hashes
        assert ours(key, partitions, partitions) == DefaultPartitioner()(
            key, partitions, partitions
        )


def test_keeps_at_most_its_capacity_and_stays_right_after_forgetting() -> None:
    partitions = list(range(7))
    ours = KeyPartitioner(capacity=3)
    keys = [f"execution-{i}".encode() for i in range(10)]
    for key in keys:
        ours(key, partitions, partitions)
        assert len(ours._hashes) <= 3
    for key in keys:
        assert ours(key, partitions, partitions) == DefaultPartitioner()(
            key, partitions, partitions
        )


def test_the_kept_hashes_of_many_executions_take_a_few_mib_at_most() -> None:
    # 100,000 parked executions fire once each: their keys are not worth 14.5 MiB.
    partitions = list(range(32))
    tracemalloc.start()
    try:
        ours = KeyPartitioner()
        for n in range(100_000):
            ours(f"{n:036d}".encode(), partitions, partitions)
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held < 4 * 1024 * 1024


def test_no_key_picks_an_available_partition() -> None:
    assert KeyPartitioner()(None, [0, 1, 2], [2]) == 2
    assert KeyPartitioner()(None, [5], []) == 5


def test_a_key_is_hashed_once_for_every_partitioner_of_the_worker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The worker's producer, its executor and its results' producer partition the same ids.
    hashed: list[bytes] = []

    def counting(data: bytes) -> int:
        hashed.append(data)
        return murmur2(data)

    monkeypatch.setattr(partitioner, "murmur2", counting)
    key = b"a-key-no-other-test-hashes"
    placed = {KeyPartitioner()(key, list(range(8)), []) for _ in range(3)}
    assert hashed == [key]
    assert placed == {DefaultPartitioner()(key, list(range(8)), list(range(8)))}
