"""From lifecycle events to stats observations, and the records that carry them. Pure.

Two stages (streams/stats.py). The first reads the lifecycle topic, keyed by execution id;
what an event says (`observe`) goes on as one record per stats key: the execution's
workflow, and its department when it has one. An end event carries when what ended started
(`LifecycleEvent.started_at`), so the first stage keeps nothing per execution. The second
stage, keyed by those keys, folds the records into windowed buckets (`stats_figures`).

Stats keys are `<tenant>/workflow/<id>` and `<tenant>/department/<name>` (ids, names and
tenants hold no `/`). The records on the stats topic are JSON: an internal topic, like the
changelogs, that only braidflow's own second stage reads:
`{"workflow", "department", "observations": [[kind, node, duration_ms, partition, offset],
...]}`, stamped with the lifecycle event's time, which decides the bucket it falls in. The
partition and offset are the lifecycle record's that said it (`Source`): a bucket counts an
event once however often it is sent (`schemas/stats_positions.py`). Records without them
(written before they were, or by hand) are always counted.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from braidflow.engine import LifecycleEvent
from braidflow.engine.cost import model_calls
from braidflow.engine.sla import SLA_BREACHED_EVENT
from braidflow.engine.state import ExecutionStatus
from braidflow.schemas.department_alerts import TIMEOUT_ERRORS
from braidflow.schemas.lifecycle_reading import LifecycleOutline
from braidflow.schemas.stats_figures import AMOUNTS, COUNTS, Observation
from braidflow.topology.model import Node

WORKFLOW_SCOPE = "workflow"
DEPARTMENT_SCOPE = "department"

Observed = LifecycleEvent | LifecycleOutline
"""An event as the stats read it: whole, or only its outline (the first stage)."""

_COMPLETED, _FAILED = ExecutionStatus.COMPLETED.value, ExecutionStatus.FAILED.value
_ENDS = {
    "workflow.completed": _COMPLETED,
    "workflow.failed": _FAILED,
    "workflow.cancelled": ExecutionStatus.CANCELLED.value,
}
_NODE_ENDS = {"node.completed": _COMPLETED, "node.failed": _FAILED, "node.retrying": "retries"}


def observe(event: Observed) -> list[Observation]:
    """What `event` says for the stats.

    A failure by a deadline counts as `timed_out`, not `failed` (as department alerts tell
    them apart); a retrying attempt counts in `retries` with its duration. An end times
    itself from its `started_at` (none: counted without a duration).
    """
    kind = event.type
    if kind == "workflow.started":
        return [Observation("started")]
    if kind in _ENDS:
        outcome = "timed_out" if _timed_out(event) else _ENDS[kind]
        return [Observation(outcome, None, _took(event))]
    if kind == SLA_BREACHED_EVENT:
        return [Observation("sla_breached")]
    node = event.node_id
    if node is None:
        return []
    if kind == "node.started":
        return [Observation("started", node)]
    if kind in _NODE_ENDS:
        outcome = "timed_out" if _timed_out(event) and kind == "node.failed" else _NODE_ENDS[kind]
        return [Observation(outcome, node, _took(event))]
    if kind == "node.dead_lettered":
        return [Observation("dead_letters", node)]
    return []


def used(event: LifecycleEvent, node: Node) -> list[Observation]:
    """What `node`'s model calls used, as its `node.completed` data says (its own, or a model
    foreach's items'): their `cost` (in millionths) and tokens. Only the events of nodes that
    call models are read whole for it (the first stage reads outlines, without data, for
    everything else)."""
    if event.type != "node.completed" or event.node_id is None:
        return []
    cost = tokens = 0
    for call in model_calls(node, event.data):
        spent = call.get("cost")
        if isinstance(spent, int | float) and not isinstance(spent, bool) and spent > 0:
            cost += round(spent * 1_000_000)
        usage = call.get("usage")
        total = usage.get("total_tokens") if isinstance(usage, Mapping) else None
        if type(total) is int and total > 0:
            tokens += total
    found: list[Observation] = []
    if cost:
        found.append(Observation("cost_micros", event.node_id, cost))
    if tokens:
        found.append(Observation("tokens", event.node_id, tokens))
    return found


def _took(event: Observed) -> int | None:
    return None if event.started_at is None else event.at - event.started_at


def _timed_out(event: Observed) -> bool:
    return event.error is not None and event.error.type in TIMEOUT_ERRORS


def stats_key(tenant: str, scope: str, name: str) -> str:
    """The key of a workflow's or a department's figures."""
    return f"{tenant}/{scope}/{name}"


def parse_stats_key(key: str) -> tuple[str, str, str]:
    """(tenant, scope, name) of a stats key."""
    tenant, scope, name = key.split("/", 2)
    return tenant, scope, name


Source = tuple[int, int]
"""The lifecycle record an observation comes from: (partition, offset)."""


@dataclass(frozen=True, slots=True)
class StatsRecord:
    """Lifecycle events' observations, for one stats key; `sources` holds each one's
    lifecycle record, in the same order (empty: not known)."""

    workflow: str
    department: str | None
    observations: tuple[Observation, ...]
    sources: tuple[Source, ...] = ()


class Gathering:
    """The stats records a batch of events makes, fewer than one per event.

    Each event's observations go to its workflow's key and, when it has a department, to the
    department's, whose nodes are named `<workflow>/<node>` (departments hold many workflows,
    whose node ids may be alike). Observations of one key that follow one another with the
    same workflow, department and span of `span_ms` (counted from the epoch) become one record,
    stamped with its first event's time, in the order given. A key's records stay in the order
    of their events, which is what lets a bucket tell an event it counted from one it has not
    (`stats_positions`). With `span_ms` a divisor of every window's size, each record lands in
    the buckets its events would have: one record, and one write per bucket, for many events.
    """

    def __init__(self, span_ms: int) -> None:
        self._span_ms = span_ms
        self._records: list[_Gathered] = []
        self._last: dict[str, _Gathered] = {}

    def add(
        self,
        event: Observed,
        department: str | None,
        observations: list[Observation],
        source: Source | None = None,
    ) -> None:
        """`observations` of `event`; `source`: the event's lifecycle record."""
        if not observations:
            return
        workflow, at = event.workflow_id, event.at
        sources = [] if source is None else [source] * len(observations)
        key = stats_key(event.tenant, WORKFLOW_SCOPE, workflow)
        self._take(key, at, workflow, department, observations, sources)
        if department is not None:
            named = [
                Observation(
                    o.kind, None if o.node is None else f"{workflow}/{o.node}", o.duration_ms
                )
                for o in observations
            ]
            key = stats_key(event.tenant, DEPARTMENT_SCOPE, department)
            self._take(key, at, workflow, department, named, sources)

    def _take(
        self,
        key: str,
        at: int,
        workflow: str,
        department: str | None,
        observations: list[Observation],
        sources: list[Source],
    ) -> None:
        span = at // self._span_ms
        last = self._last.get(key)
        if last is None or (last.workflow, last.department, last.span) != (
            workflow,
            department,
            span,
        ):
            last = self._last[key] = _Gathered(key, at, span, workflow, department)
            self._records.append(last)
        last.observations.extend(observations)
        last.sources.extend(sources)

    def records(self) -> list[tuple[str, int, StatsRecord]]:
        """(stats key, time in epoch ms, record) of what was added, first seen first."""
        return [
            (
                each.key,
                each.at,
                StatsRecord(
                    each.workflow, each.department, tuple(each.observations), tuple(each.sources)
                ),
            )
            for each in self._records
        ]


@dataclass(slots=True)
class _Gathered:
    key: str
    at: int
    span: int
    workflow: str
    department: str | None
    observations: list[Observation] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)


def encode_record(record: StatsRecord) -> bytes:
    return json.dumps(
        {
            "workflow": record.workflow,
            "department": record.department,
            "observations": [
                [o.kind, o.node, o.duration_ms, *source]
                for o, source in zip(record.observations, _sources_of(record), strict=True)
            ],
        },
        separators=(",", ":"),
    ).encode()


def decode_record(data: bytes) -> StatsRecord:
    """The record in `data`; ValueError when it is not one."""
    # Read with maps, not a generator each: a record holds up to a batch's observations,
    # and the second stage reads every one (docs/performance-history.md, "Stats").
    try:
        doc: Any = json.loads(data)
        said = doc["observations"]
        lengths = set(map(len, said))
        if not lengths <= {3, 5}:
            raise ValueError("an observation is [kind, node, duration_ms(, partition, offset)]")
        record = StatsRecord(
            str(doc["workflow"]),
            doc["department"],
            tuple(map(_observation, map(_said, said))),
            tuple(zip(map(int, map(_partition, said)), map(int, map(_offset, said)), strict=True))
            if lengths <= {5}
            else (),
        )
        unknown = set(map(_kind, said)) - _KINDS
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"not a stats record: {exc}") from None
    if unknown:
        # Folded, it would fail the whole batch it came in.
        raise ValueError(f"not a stats record: unknown observations {sorted(unknown)}")
    return record


# An observation's fields in a stats record, and its named tuple made without its Python
# `__new__`, which only passes them on.
_said, _kind = itemgetter(slice(0, 3)), itemgetter(0)
_partition, _offset = itemgetter(3), itemgetter(4)
_observation = functools.partial(tuple.__new__, Observation)
_KINDS = frozenset(COUNTS) | frozenset(AMOUNTS)


def _sources_of(record: StatsRecord) -> Iterable[tuple[int, ...]]:
    return record.sources or [()] * len(record.observations)
