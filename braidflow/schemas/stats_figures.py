"""The figures of one stats bucket: counts, and a duration quantile sketch (DDSketch), for a
workflow or a department and for each of its nodes (docs/analytics.md). Pure.

A bucket is plain JSON, as the windowed tables keep it:
`{"counts": {name: n}, "durations": sketch, "nodes": {node: {"counts", "durations"}}}`.
A sketch is a DDSketch's positive bins, `{"zero": n, "offset": k, "counts": [n, ...]}` (the
count of bin k + i at i: a dense list, a third of the size of a JSON object of bins and three
times as fast to read and write), with a relative accuracy of 1%: never a list of durations,
a bucket stays small however many executions it counts (a sketch of durations from 1 ms to a
day holds at most about 900 bins); two buckets merge by adding bins, so the figures of a longer window, or of the same
window on several workers, are exact merges. The same bins give the same quantiles whatever
the order the durations came in, so an outside consumer with the `ddsketch` package and the
same accuracy computes the very same p50, p95 and p99 (docs/analytics.md).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from ddsketch.ddsketch import BaseDDSketch
from ddsketch.mapping import LogarithmicMapping
from ddsketch.store import DenseStore

from braidflow.engine.state import ExecutionStatus, iso_time

RELATIVE_ACCURACY = 0.01
"""A quantile read from a sketch is within 1% of the true one."""

COUNTS = (
    "started",
    # An execution's ends are named as its statuses are.
    ExecutionStatus.COMPLETED.value,
    ExecutionStatus.FAILED.value,
    ExecutionStatus.CANCELLED.value,
    "timed_out",
    "retries",
    "dead_letters",
    "sla_breached",
)
"""What a bucket counts, in the order the API shows them."""

NODE_COUNTS = COUNTS[:-1]
"""What a node counts: an SLA is the execution's."""

AMOUNTS = ("cost_micros", "tokens")
"""What a bucket adds up rather than counts, what model calls used (docs/analytics.md): money in
millionths of the connections' currency (whole numbers, so buckets merge exactly) and tokens.
An observation of these carries its amount where others carry a duration."""

_SPENT = ("retries", "dead_letters", *AMOUNTS)

QUANTILES = (("p50", 0.5), ("p95", 0.95), ("p99", 0.99))

_MAPPING = LogarithmicMapping(RELATIVE_ACCURACY)

Bucket = dict[str, Any]


class Observation(NamedTuple):
    """One thing a lifecycle event says for the stats: `kind` is one of COUNTS or AMOUNTS;
    `node` the node it is about (None: the execution); `duration_ms` what it took, when it
    ends something that had a start (for AMOUNTS: the amount). A named tuple: one is made per event and per record read,
    and a frozen dataclass takes twice as long to make."""

    kind: str
    node: str | None = None
    duration_ms: int | None = None


def empty() -> Bucket:
    return {"counts": {}, "durations": _empty_sketch(), "nodes": {}}


def fold(bucket: Mapping[str, Any] | None, observations: Iterable[Observation]) -> Bucket:
    """`bucket` (None or {}: empty) with `observations` counted in; a new dict, copying only
    the parts it changes (`bucket` itself is never changed).

    A node's retries and dead letters count for the execution too: the execution's
    figures hold every retry of any of its nodes.
    """
    source = bucket or empty()
    out: Bucket = {
        "counts": dict(source.get("counts", {})),
        "durations": source.get("durations") or _empty_sketch(),
        "nodes": dict(source.get("nodes", {})),
    }
    copied: set[int] = set()
    for seen in observations:
        if seen.kind in AMOUNTS:
            amount = seen.duration_ms or 0
            _count(out, seen.kind, amount)
            if seen.node is not None:
                _count(_node_part(out, seen.node, copied), seen.kind, amount)
            continue
        if seen.kind not in COUNTS:
            raise ValueError(f"unknown stats observation {seen.kind!r}")
        if seen.node is None or seen.kind in _SPENT:
            _count(out, seen.kind, 1)
        if seen.node is None:
            if seen.duration_ms is not None:
                out["durations"] = _writable(out["durations"], copied)
                _add(out["durations"], seen.duration_ms)
            continue
        node = _node_part(out, seen.node, copied)
        _count(node, seen.kind, 1)
        if seen.duration_ms is not None:
            node["durations"] = _writable(node["durations"], copied)
            _add(node["durations"], seen.duration_ms)
    return out


def _node_part(out: Bucket, name: str, copied: set[int]) -> Bucket:
    """The figures of node `name` in `out`, copied once (`copied`) before they change."""
    node = out["nodes"].get(name)
    if id(node) not in copied:
        node = (
            {"counts": dict(node["counts"]), "durations": node["durations"]}
            if node
            else _empty_node()
        )
        copied.add(id(node))
        out["nodes"][name] = node
    return node


def merge(a: Mapping[str, Any], b: Mapping[str, Any]) -> Bucket:
    """The figures of `a` and `b` together (a longer window, or the same one from two places)."""
    nodes = {name: _merge_part(_empty_node(), part) for name, part in a.get("nodes", {}).items()}
    for name, part in b.get("nodes", {}).items():
        nodes[name] = _merge_part(nodes.get(name, _empty_node()), part)
    return {**_merge_part(_merge_part(_empty_node(), a), b), "nodes": nodes}


def merge_all(buckets: Iterable[Mapping[str, Any]]) -> Bucket:
    """The figures of every one of `buckets` together ({} when none counted anything)."""
    merged: Bucket = {}
    for bucket in buckets:
        if bucket:
            merged = merge(merged or empty(), bucket)
    return merged


def quantiles(sketch: Mapping[str, Any]) -> dict[str, float | None]:
    """p50, p95 and p99 of a sketch, in its unit (ms), to 0.1; None each when it is empty."""
    store = DenseStore()
    offset = sketch.get("offset", 0)
    for i, n in enumerate(sketch.get("counts", ())):
        if n:
            store.add(offset + i, n)
    read = BaseDDSketch(_MAPPING, store, DenseStore(), sketch.get("zero", 0))
    if read.count == 0:
        return {name: None for name, _ in QUANTILES}
    figures: dict[str, float | None] = {}
    for name, q in QUANTILES:
        # ddsketch types a quantile float | None: None is an empty sketch's, returned above.
        value = read.get_quantile_value(q)
        figures[name] = None if value is None else round(value, 1)
    return figures


def view(bucket: Mapping[str, Any]) -> dict[str, Any]:
    """A bucket as the API shows it: every count, `duration_ms` quantiles, and its nodes'."""
    return {
        **_part_view(bucket, COUNTS),
        "nodes": {
            name: _part_view(part, NODE_COUNTS)
            for name, part in sorted(bucket.get("nodes", {}).items())
        },
    }


def sample_count(sketch: Mapping[str, Any]) -> int:
    """How many durations a sketch holds."""
    return int(sketch.get("zero", 0) + sum(sketch.get("counts", ())))


def _part_view(part: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    counts = part.get("counts", {})
    return {
        **{name: counts.get(name, 0) for name in names},
        "cost": counts.get("cost_micros", 0) / 1_000_000,
        "tokens": counts.get("tokens", 0),
        "duration_ms": quantiles(part.get("durations", {})),
    }


def _empty_sketch() -> Bucket:
    return {"zero": 0, "offset": 0, "counts": []}


def _empty_node() -> Bucket:
    return {"counts": {}, "durations": _empty_sketch()}


def _writable(sketch: Bucket, copied: set[int]) -> Bucket:
    """`sketch`, copied once per fold before its first change."""
    if id(sketch) in copied:
        return sketch
    own = {"zero": sketch["zero"], "offset": sketch["offset"], "counts": list(sketch["counts"])}
    copied.add(id(own))
    return own


def _merge_part(into: Bucket, part: Mapping[str, Any]) -> Bucket:
    for name, n in part.get("counts", {}).items():
        _count(into, name, n)
    theirs = part.get("durations") or _empty_sketch()
    ours = into["durations"]
    ours["zero"] += theirs["zero"]
    for i, n in enumerate(theirs["counts"]):
        if n:
            _add_bin(ours, theirs["offset"] + i, n)
    return into


def _count(part: Bucket, name: str, n: int) -> None:
    part["counts"][name] = part["counts"].get(name, 0) + n


def _add(sketch: Bucket, duration_ms: int) -> None:
    if duration_ms <= _MAPPING.min_possible:
        sketch["zero"] += 1
    else:
        _add_bin(sketch, _bin(duration_ms), 1)


@functools.lru_cache(maxsize=4096)
def _bin(duration_ms: int) -> int:
    # The same durations come again and again (a task's few ms), and the logarithm was a
    # fifth of folding one.
    return int(_MAPPING.key(float(duration_ms)))


def _add_bin(sketch: Bucket, key: int, n: int) -> None:
    counts: list[int] = sketch["counts"]
    if not counts:
        sketch["offset"] = key
    elif key < sketch["offset"]:
        counts[:0] = [0] * (sketch["offset"] - key)
        sketch["offset"] = key
    index = key - sketch["offset"]
    if index >= len(counts):
        counts.extend([0] * (index + 1 - len(counts)))
    counts[index] += n


@dataclass(frozen=True, slots=True)
class Window:
    """A kind of bucket the stats show: `size_s` long, one starting every `step_s` (equal:
    tumbling; less: hopping, each moment in several buckets), kept `kept_s` after it ends.
    `made_of`: None for a window a table keeps; else the name of the tumbling window whose
    buckets it merges when read (a hopping window kept as such costs a write per bucket a
    moment is in, for figures a merge gives exactly)."""

    name: str
    size_s: int
    step_s: int
    kept_s: int
    made_of: str | None = None

    def starts(self, from_ms: int, to_ms: int) -> range:
        """Starts (epoch s) of the buckets that overlap [from_ms, to_ms), oldest first; a
        range, so counting the buckets of a span of millennia costs nothing."""
        first = (from_ms // 1000 - self.size_s + self.step_s) // self.step_s * self.step_s
        last = (max(to_ms - 1, from_ms) // 1000) // self.step_s * self.step_s
        return range(max(first, 0), last + 1, self.step_s)


DAY_S = 86_400
WINDOWS = {
    w.name: w
    for w in (
        Window("1m", 60, 60, DAY_S),
        # Hopping: the last five minutes, every minute, merged from the minutes.
        Window("5m", 300, 60, DAY_S, made_of="1m"),
        Window("1h", 3600, 3600, 30 * DAY_S),
    )
}
"""The windows `GET /api/v1/stats?window=` takes."""


def bucket_view(
    field: str, name: str, start_s: int, window: Window, bucket: Bucket
) -> dict[str, Any]:
    """One bucket as `GET /api/v1/stats` shows it: its time span, whose figures (`field`,
    `workflow_id` or `department`, is `name`), and the figures."""
    return {
        "start": iso_time(start_s * 1000),
        "end": iso_time((start_s + window.size_s) * 1000),
        field: name,
        **view(bucket),
    }
