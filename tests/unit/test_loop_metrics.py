"""The worker's counters and histograms count without prometheus_client's locks, and `/metrics`
shows them exactly as prometheus_client's own `Counter` and `Histogram` would have."""

from __future__ import annotations

import contextlib
import math
import re
from collections.abc import Iterator

import prometheus_client
import prometheus_client.metrics
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, generate_latest

from braidflow import metrics
from braidflow.loop_metrics import LoopCounter, LoopHistogram

CREATED = re.compile(r"^(\S+_created(?:\{[^}]*\})?) \S+$", re.M)

LOOP_METRICS = [m for m in vars(metrics).values() if isinstance(m, LoopCounter | LoopHistogram)]


def shown(registry: CollectorRegistry) -> str:
    """The registry's exposition with each `_created` time left out (they are clock reads)."""
    return CREATED.sub(r"\1 <time>", generate_latest(registry).decode())


def twins(metric: LoopCounter | LoopHistogram) -> tuple[CollectorRegistry, CollectorRegistry]:
    """A registry holding a copy of `metric`, and one holding prometheus_client's own."""
    ours, theirs = CollectorRegistry(), CollectorRegistry()
    if isinstance(metric, LoopCounter):
        LoopCounter(metric.name, metric.documentation, metric.labelnames, registry=ours)
        prometheus_client.Counter(
            metric.name, metric.documentation, metric.labelnames, registry=theirs
        )
    else:
        LoopHistogram(
            metric.name, metric.documentation, metric.labelnames, metric.bounds, registry=ours
        )
        prometheus_client.Histogram(
            metric.name,
            metric.documentation,
            metric.labelnames,
            registry=theirs,
            buckets=metric.bounds,
        )
    return ours, theirs


def only(registry: CollectorRegistry) -> prometheus_client.Counter | prometheus_client.Histogram:
    (metric,) = registry._collector_to_names
    return metric  # type: ignore[no-any-return]


def counted(
    metric: LoopCounter | LoopHistogram, amounts: list[float], label_sets: list[int]
) -> Iterator[tuple[tuple[str, ...], float]]:
    for amount, labels in zip(amounts, label_sets, strict=False):
        yield tuple(f"{name}-{labels}" for name in metric.labelnames), amount


def count_in(registry: CollectorRegistry, labels: tuple[str, ...], amount: float) -> None:
    metric = only(registry)
    series = metric.labels(*labels) if labels else metric
    if isinstance(metric, LoopCounter | prometheus_client.Counter):
        series.inc(amount)
    else:
        series.observe(amount)


@contextlib.contextmanager
def created_shown() -> Iterator[None]:
    was = prometheus_client.metrics._use_created
    prometheus_client.metrics.enable_created_metrics()
    try:
        yield
    finally:
        prometheus_client.metrics._use_created = was


@pytest.mark.parametrize("metric", LOOP_METRICS, ids=lambda m: m.name)
@settings(max_examples=25)
@given(
    amounts=st.lists(
        st.one_of(
            st.sampled_from([0.0, 0.005, 0.00005, 0.1, 1.0, 300.0, 301.0]),
            st.floats(min_value=0, max_value=1e6, allow_nan=False),
        ),
        max_size=30,
    ),
    label_sets=st.lists(st.integers(0, 2), max_size=30),
)
def test_every_counter_and_histogram_shows_as_prometheus_clients_own(
    metric: LoopCounter | LoopHistogram, amounts: list[float], label_sets: list[int]
) -> None:
    ours, theirs = twins(metric)
    with created_shown():
        assert shown(ours) == shown(theirs)
        for labels, amount in counted(metric, amounts, label_sets):
            count_in(ours, labels, amount)
            count_in(theirs, labels, amount)
        assert shown(ours) == shown(theirs)


def test_the_counts_of_every_step_and_task_are_loop_metrics() -> None:
    assert {metrics.TRANSITIONS, metrics.STEP_DURATION, metrics.TASKS_RUN} <= set(LOOP_METRICS)


def test_created_times_are_shown_and_hidden_as_prometheus_client_is_told() -> None:
    # Pins prometheus_client's private `_use_created`, which `loop_metrics` reads.
    with created_shown():
        for metric in LOOP_METRICS:
            _shown_alike_with_and_without_created(metric)


def _shown_alike_with_and_without_created(metric: LoopCounter | LoopHistogram) -> None:
    ours, theirs = twins(metric)
    labels = tuple("x" for _ in metric.labelnames)
    count_in(ours, labels, 1.0)
    count_in(theirs, labels, 1.0)
    prometheus_client.metrics.disable_created_metrics()
    assert "_created" not in shown(ours)
    assert shown(ours) == shown(theirs)
    prometheus_client.metrics.enable_created_metrics()
    assert "_created" in shown(ours)
    assert shown(ours) == shown(theirs)


def test_a_series_is_created_when_first_counted_and_its_time_is_shown() -> None:
    registry = CollectorRegistry()
    counter = LoopCounter("made_late", "Counted late.", ["kind"], registry=registry)
    assert registry.get_sample_value("made_late_created", {"kind": "a"}) is None
    counter.labels("a").inc()
    assert registry.get_sample_value("made_late_total", {"kind": "a"}) == 1.0
    assert registry.get_sample_value("made_late_created", {"kind": "a"}) == pytest.approx(
        counter.labels("a").created
    )


def test_label_values_are_taken_as_their_strings() -> None:
    registry = CollectorRegistry()
    counter = LoopCounter("by_number", "By number.", ["n"], registry=registry)
    counter.labels(1).inc()
    counter.labels("1").inc(2)
    assert registry.get_sample_value("by_number_total", {"n": "1"}) == 3.0


def test_misuse_is_refused_as_prometheus_client_refuses_it() -> None:
    registry = CollectorRegistry()
    labelled = LoopCounter("labelled", "Labelled.", ["kind"], registry=registry)
    alone = LoopCounter("alone", "Alone.", registry=registry)
    spread = LoopHistogram("spread", "Spread.", ["kind"], registry=registry)
    with pytest.raises(ValueError):
        labelled.inc()
    with pytest.raises(ValueError):
        labelled.labels("a", "b")
    with pytest.raises(ValueError):
        alone.inc(-1)
    with pytest.raises(ValueError):
        spread.observe(1.0)
    with pytest.raises(ValueError):
        LoopHistogram("unsorted", "Unsorted.", buckets=(2, 1), registry=registry)
    with pytest.raises(ValueError):
        LoopCounter("labelled", "Again.", registry=registry)


def test_a_histogram_counts_a_value_on_a_bound_in_that_bound_s_bucket() -> None:
    registry = CollectorRegistry()
    spread = LoopHistogram("bounded", "Bounded.", buckets=(1, 2), registry=registry)
    for amount in (1.0, 2.0, 2.5, math.inf):
        spread.observe(amount)
    assert [
        registry.get_sample_value("bounded_bucket", {"le": le}) for le in ("1.0", "2.0", "+Inf")
    ] == [1.0, 2.0, 4.0]
