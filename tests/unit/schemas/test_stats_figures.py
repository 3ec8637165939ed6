"""Stats buckets on plain data: folding observations, merging buckets, reading quantiles."""

from __future__ import annotations

import json
import random

from braidflow.schemas.stats_figures import (
    RELATIVE_ACCURACY,
    WINDOWS,
    Observation,
    fold,
    merge,
    merge_all,
    quantiles,
    sample_count,
    view,
)


def test_an_empty_bucket_shows_zero_counts_and_no_quantiles() -> None:
    shown = view(fold(None, []))
    assert shown["started"] == shown["completed"] == shown["sla_breached"] == 0
    assert shown["duration_ms"] == {"p50": None, "p95": None, "p99": None}
    assert shown["nodes"] == {}


def test_folding_counts_executions_and_nodes_apart() -> None:
    bucket = fold(
        None,
        [
            Observation("started"),
            Observation("started", "pay"),
            Observation("retries", "pay", 40),
            Observation("started", "pay"),
            Observation("timed_out", "pay", 5000),
            Observation("dead_letters", "pay"),
            Observation("failed", None, 6000),
            Observation("sla_breached"),
        ],
    )
    shown = view(bucket)
    assert (shown["started"], shown["failed"], shown["completed"]) == (1, 1, 0)
    # A node's retries and dead letters are the execution's too.
    assert (shown["retries"], shown["dead_letters"], shown["sla_breached"]) == (1, 1, 1)
    pay = shown["nodes"]["pay"]
    assert (pay["started"], pay["retries"], pay["timed_out"], pay["dead_letters"]) == (2, 1, 1, 1)
    assert "sla_breached" not in pay
    assert shown["duration_ms"]["p50"] == sample(6000)


def sample(value: float) -> float:
    """Where a sketch of one value puts it: within the relative accuracy."""
    return quantiles(fold(None, [Observation("completed", None, int(value))])["durations"])["p50"]


def test_quantiles_are_within_one_percent_of_the_exact_ones() -> None:
    rng = random.Random(7)
    durations = [rng.randint(5, 20_000) for _ in range(2_000)]
    bucket = fold(None, [Observation("completed", None, d) for d in durations])
    assert sample_count(bucket["durations"]) == 2_000
    ordered = sorted(durations)
    for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        exact = ordered[int(q * (len(ordered) - 1))]
        got = quantiles(bucket["durations"])[name]
        assert got is not None and abs(got - exact) <= exact * RELATIVE_ACCURACY + 0.1


def test_a_bucket_keeps_bins_not_durations() -> None:
    bucket = fold(None, [Observation("completed", None, 1000 + i % 3) for i in range(10_000)])
    assert len(json.dumps(bucket)) < 300


def test_merging_buckets_is_folding_everything_into_one() -> None:
    rng = random.Random(3)
    seen = [
        Observation(
            rng.choice(["completed", "failed"]), rng.choice([None, "a", "b"]), rng.randint(0, 9000)
        )
        for _ in range(500)
    ]
    halves = merge(fold(None, seen[:200]), fold(None, seen[200:]))
    assert view(halves) == view(fold(None, seen))
    # Order does not matter either: an outside consumer reading in any order agrees.
    assert view(fold(None, list(reversed(seen)))) == view(fold(None, seen))


def test_a_bucket_survives_json() -> None:
    bucket = fold(None, [Observation("completed", "n", 12), Observation("completed", None, 0)])
    again = json.loads(json.dumps(bucket))
    assert view(fold(again, [])) == view(bucket)
    assert view(again)["duration_ms"]["p50"] == 0


def test_windows_list_the_buckets_that_overlap_a_range() -> None:
    minute, five = WINDOWS["1m"], WINDOWS["5m"]
    assert list(minute.starts(120_000, 240_000)) == [120, 180]
    assert list(minute.starts(150_000, 150_001)) == [120]
    # Hopping: every bucket of five minutes that holds a moment of the range.
    assert list(five.starts(600_000, 600_001)) == [360, 420, 480, 540, 600]


def test_folding_leaves_the_bucket_it_was_given_as_it_was() -> None:
    before = fold(None, [Observation("completed", "n", 12), Observation("completed", None, 30)])
    kept = json.dumps(before)
    after = fold(before, [Observation("completed", "n", 9000), Observation("failed", None, 1)])
    assert json.dumps(before) == kept
    assert view(after)["nodes"]["n"]["completed"] == 2 and view(after)["failed"] == 1


def test_merging_any_number_of_buckets_skips_the_empty_ones() -> None:
    a = fold(None, [Observation("completed", None, 10)])
    b = fold(None, [Observation("failed", None, 20)])
    assert merge_all([]) == {} and merge_all([{}, {}]) == {}
    assert view(merge_all([a, {}, b])) == view(merge(a, b))
