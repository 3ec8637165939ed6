"""Counters and histograms counted by the event loop's thread as plain numbers, read at scrape
time into the same families prometheus_client's `Counter` and `Histogram` show.

prometheus_client's take a lock at every `inc` and `observe`, and its histogram walks its
buckets in Python: at a few counts per transition that was about 3% of a loaded worker's
event loop (docs/performance-history.md). Everything braidflow counts is counted on the
event loop's thread, so it needs no lock; `/metrics` shows the same names, help, labels,
samples and `_created` times as before.
"""

from __future__ import annotations

import bisect
import itertools
import math
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Generic, TypeVar

import prometheus_client.metrics
from prometheus_client import REGISTRY
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

S = TypeVar("S")


def _shows_created() -> bool:
    # prometheus_client's own switch (`disable_created_metrics`, or the environment's
    # PROMETHEUS_DISABLE_CREATED_SERIES), so these follow its metrics; pinned by a test.
    return bool(prometheus_client.metrics._use_created)


class Count:
    """One labelled series of a `LoopCounter`."""

    __slots__ = ("created", "value")

    def __init__(self) -> None:
        self.value = 0.0
        self.created = time.time()

    def inc(self, amount: float = 1) -> None:
        """Add `amount` (not negative: a counter only goes up)."""
        if amount < 0:
            raise ValueError("Counters can only be incremented by non-negative amounts.")
        self.value += amount


class Spread:
    """One labelled series of a `LoopHistogram`: a count per bucket (not cumulative) and the
    sum."""

    __slots__ = ("_bounds", "counts", "created", "sum")

    def __init__(self, bounds: list[float]) -> None:
        self._bounds = bounds
        self.counts = [0.0] * len(bounds)
        self.sum = 0.0
        self.created = time.time()

    def observe(self, amount: float) -> None:
        """Count `amount` in the first bucket whose upper bound is at least it."""
        self.counts[bisect.bisect_left(self._bounds, amount)] += 1
        self.sum += amount


class _Labelled(Generic[S]):
    """Series by label values, made at their first use, as prometheus_client's `labels`."""

    def __init__(self, name: str, documentation: str, labelnames: Sequence[str]) -> None:
        self.name = name
        self.documentation = documentation
        self.labelnames = tuple(labelnames)
        self._series: dict[tuple[str, ...], S] = {}

    def _new_series(self) -> S:
        raise NotImplementedError

    def labels(self, *values: object) -> S:
        """The series of these label values (each taken as its `str`)."""
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name}: {len(self.labelnames)} label values expected")
        labels = tuple(str(v) for v in values)
        series = self._series.get(labels)
        if series is None:
            series = self._series[labels] = self._new_series()
        return series


class LoopCounter(_Labelled[Count], Collector):
    """A counter whose series are plain numbers, registered in `registry`."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        registry: CollectorRegistry | None = REGISTRY,
    ) -> None:
        super().__init__(name.removesuffix("_total"), documentation, labelnames)
        # A counter without labels shows from the start, at 0.
        self._alone = None if self.labelnames else self.labels()
        if registry is not None:
            registry.register(self)

    def _new_series(self) -> Count:
        return Count()

    def inc(self, amount: float = 1) -> None:
        """Add `amount` to a counter without labels."""
        if self._alone is None:
            raise ValueError(f"{self.name} has labels: count through labels()")
        self._alone.inc(amount)

    def describe(self) -> Iterable[Metric]:
        return [CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)]

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)
        created = _shows_created()
        # A copy first: a scrape from another thread must not see the dict grow under it.
        for labels, series in list(self._series.items()):
            family.add_metric(labels, series.value, series.created if created else None)
        yield family


class LoopHistogram(_Labelled[Spread], Collector):
    """A histogram whose series are plain numbers, registered in `registry`; `buckets` are the
    upper bounds, +Inf added when missing."""

    def __init__(
        self,
        name: str,
        documentation: str,
        labelnames: Sequence[str] = (),
        buckets: Sequence[float] = prometheus_client.Histogram.DEFAULT_BUCKETS,
        registry: CollectorRegistry | None = REGISTRY,
    ) -> None:
        super().__init__(name, documentation, labelnames)
        bounds = [float(b) for b in buckets]
        if bounds != sorted(bounds):
            raise ValueError("Buckets not in sorted order")
        if bounds[-1] != math.inf:
            bounds.append(math.inf)
        self.bounds = bounds
        self._les = [floatToGoString(b) for b in bounds]
        self._alone = None if self.labelnames else self.labels()
        if registry is not None:
            registry.register(self)

    def _new_series(self) -> Spread:
        return Spread(self.bounds)

    def observe(self, amount: float) -> None:
        """Count `amount` in a histogram without labels."""
        if self._alone is None:
            raise ValueError(f"{self.name} has labels: observe through labels()")
        self._alone.observe(amount)

    def describe(self) -> Iterable[Metric]:
        return [HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)]

    def collect(self) -> Iterator[Metric]:
        family = HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)
        created = _shows_created()
        for labels, series in list(self._series.items()):
            buckets = list(zip(self._les, itertools.accumulate(series.counts), strict=True))
            family.add_metric(labels, buckets, series.sum)
            if created:
                named = dict(zip(self.labelnames, labels, strict=True))
                family.add_sample(f"{self.name}_created", named, series.created)
        yield family
