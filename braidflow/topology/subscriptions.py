"""Which deployed workflows an incoming CloudEvent starts, and which webhooks and schedules exist.

One `SubscriptionIndex` covers one tenant's deployed workflows (the latest
version of each): tenants never see each other's events. The catalog keeps it
up to date one workflow at a time as deployments and removals come in (a
rebuild per deployment made deploying n workflows cost O(n²)), and the event
router asks it about every event.

An event starts at most one execution per workflow: of a workflow's event
triggers, the first (in file order) that matches wins. `schedule_slots` (from
`schedules`) is here too, beside the `schedules()` it serves.
"""

from __future__ import annotations

import bisect
import fnmatch
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from braidflow.topology.expressions import Expression, ExpressionError
from braidflow.topology.model import EventTrigger, ScheduleTrigger, WebhookTrigger
from braidflow.topology.schedules import schedule_slots
from braidflow.topology.workflow import Workflow

__all__ = [
    "ConditionError",
    "EventMatch",
    "Subscription",
    "SubscriptionIndex",
    "schedule_slots",
]

_WILDCARDS = frozenset("*?[")
_REMEMBERED_TYPES = 10_000
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Subscription:
    """Event trigger number `trigger_index` (0-based, file order) of workflow `workflow_id`."""

    workflow_id: str
    trigger_index: int
    trigger: EventTrigger


@dataclass(frozen=True, slots=True)
class ConditionError:
    """A trigger's `when` that failed on an event, or gave something other than true/false."""

    workflow_id: str
    trigger_index: int
    message: str


@dataclass(frozen=True, slots=True)
class EventMatch:
    """What an event starts, and the conditions that could not be decided (counted as no match)."""

    subscriptions: tuple[Subscription, ...]
    errors: tuple[ConditionError, ...]


@dataclass(frozen=True, slots=True, eq=False)
class _Entry:
    subscription: Subscription
    department: str | None
    condition: Expression | None
    variables: Mapping[str, Any]


_Glob = tuple[Callable[[str], re.Match[str] | None], _Entry]


class SubscriptionIndex:
    """Event triggers indexed by type, so that an event meets only the globs that could match it.

    Exact types are a dict lookup. Globs whose first segment (before the first
    `.`) is literal, like `ticket.*`, are grouped by it and tried only on events
    of that first segment. Only globs whose first segment holds a wildcard, like
    `*.created` or `tick*`, are tried on every event. What the globs gave for
    a type is remembered until the next deployment or removal: events come in
    few types, and trying 200 globs took 27 µs of the router's 150 per event.
    """

    def __init__(self) -> None:
        self._exact: dict[str, list[_Entry]] = {}
        self._by_segment: dict[str, list[_Glob]] = {}
        self._unanchored: list[_Glob] = []
        self._webhooks: dict[str, list[str]] = {}
        self._schedules: list[tuple[str, int, ScheduleTrigger]] = []
        self._listening: dict[tuple[str, frozenset[str]], bool] = {}
        self._candidates: dict[str, tuple[_Entry, ...]] = {}
        # Where each workflow's triggers are filed: (kind, key) pairs.
        self._keys_of: dict[str, set[tuple[str, str]]] = {}

    @classmethod
    def build(cls, workflows: Iterable[Workflow]) -> SubscriptionIndex:
        """Index the triggers of `workflows`; ValueError if two share an id."""
        index = cls()
        seen: set[str] = set()
        for workflow in workflows:
            if workflow.id in seen:
                raise ValueError(
                    f"workflow {workflow.id!r} is given twice; index its latest version"
                )
            seen.add(workflow.id)
            index._add(workflow)
        return index

    def add(self, workflow: Workflow) -> None:
        """Index the triggers of `workflow`, in place of those of any earlier version."""
        self.remove(workflow.id)
        self._add(workflow)

    def remove(self, workflow_id: str) -> None:
        """Forget the triggers of `workflow_id` (nothing to forget is fine)."""
        for kind, key in self._keys_of.pop(workflow_id, ()):
            if kind == "webhook":
                _keep(self._webhooks, key, lambda w: w != workflow_id)
            elif kind == "exact":
                _keep(self._exact, key, lambda e: _of(e) != workflow_id)
            elif kind == "segment":
                _keep(self._by_segment, key, lambda g: _of(g[1]) != workflow_id)
            elif kind == "unanchored":
                self._unanchored = [g for g in self._unanchored if _of(g[1]) != workflow_id]
            else:
                self._schedules = [s for s in self._schedules if s[0] != workflow_id]
        self._forget_lookups()

    def _forget_lookups(self) -> None:
        self._listening.clear()
        self._candidates.clear()

    def _add(self, workflow: Workflow) -> None:
        self._forget_lookups()
        keys = self._keys_of.setdefault(workflow.id, set())
        for i, trigger in enumerate(workflow.triggers):
            if isinstance(trigger, WebhookTrigger):
                bisect.insort(self._webhooks.setdefault(trigger.name, []), workflow.id)
                keys.add(("webhook", trigger.name))
            elif isinstance(trigger, ScheduleTrigger):
                bisect.insort(self._schedules, (workflow.id, i, trigger), key=lambda s: s[:2])
                keys.add(("schedule", ""))
            else:
                entry = _Entry(
                    Subscription(workflow.id, i, trigger),
                    trigger.department or workflow.definition.department,
                    workflow.trigger_conditions.get(i),
                    workflow.definition.variables,
                )
                for glob in dict.fromkeys(trigger.types):
                    keys.add(self._add_glob(glob, entry))

    def _add_glob(self, glob: str, entry: _Entry) -> tuple[str, str]:
        """File `entry` under `glob`; where it went, for `remove`."""
        if not _WILDCARDS & set(glob):
            self._exact.setdefault(glob, []).append(entry)
            return "exact", glob
        matcher = re.compile(fnmatch.translate(glob)).match
        segment, dot, _ = glob.partition(".")
        if dot and not _WILDCARDS & set(segment):
            self._by_segment.setdefault(segment, []).append((matcher, entry))
            return "segment", segment
        self._unanchored.append((matcher, entry))
        return "unanchored", ""

    def match(self, event: Mapping[str, Any]) -> list[Subscription]:
        """The subscriptions `event` starts, one per workflow at most, ordered by workflow id."""
        return list(self.match_with_errors(event).subscriptions)

    def match_with_errors(self, event: Mapping[str, Any]) -> EventMatch:
        """As `match`, with the `when` conditions that failed or were not boolean.

        `event` is the CloudEvent as expressions see it: `id`, `type`, `source`,
        `subject`, `time`, `data`, `specversion`, and extension attributes such
        as `department` at the top level.
        """
        event_type = event.get("type")
        if not isinstance(event_type, str):
            return EventMatch((), ())
        candidates = self._candidates_for(event_type)
        started: list[Subscription] = []
        errors: list[ConditionError] = []
        for entry in candidates:
            sub = entry.subscription
            if started and started[-1].workflow_id == sub.workflow_id:
                continue
            if entry.department is not None and event.get("department") != entry.department:
                continue
            if entry.condition is None:
                started.append(sub)
                continue
            holds, error = _holds(entry.condition, event, entry.variables)
            if error is not None:
                errors.append(ConditionError(sub.workflow_id, sub.trigger_index, error))
            elif holds:
                started.append(sub)
        return EventMatch(tuple(started), tuple(errors))

    def may_match(self, event_type: str) -> bool:
        """Whether some event trigger's `types` match `event_type`, before department and `when`.

        Cheap: a router can skip decoding an event that no workflow listens to.
        """
        return bool(self._candidates_for(event_type))

    def _candidates_for(self, event_type: str) -> tuple[_Entry, ...]:
        """The entries whose types match `event_type`, by workflow id and trigger order."""
        known = self._candidates.get(event_type)
        if known is not None:
            return known
        segment = event_type.partition(".")[0]
        # A trigger whose two globs both match is one candidate.
        found = dict.fromkeys(
            [
                *self._exact.get(event_type, ()),
                *(e for m, e in self._by_segment.get(segment, ()) if m(event_type)),
                *(e for m, e in self._unanchored if m(event_type)),
            ]
        )
        # Within a workflow, trigger order decides which trigger wins.
        candidates = tuple(
            sorted(found, key=lambda e: (e.subscription.workflow_id, e.subscription.trigger_index))
        )
        if len(self._candidates) >= _REMEMBERED_TYPES:
            # Types come from the events themselves: an endless variety must not grow the heap.
            self._candidates.clear()
        self._candidates[event_type] = candidates
        return candidates

    def listens_under(self, segment: str, besides: frozenset[str] = frozenset()) -> bool:
        """Whether some event trigger may match a type whose first segment is `segment`,
        other than the exact types `besides`.

        Errs towards yes: a glob with a wildcard in its first segment counts.
        Remembered per segment: the router asks before every batch.
        """
        known = self._listening.get((segment, besides))
        if known is None:
            prefix = f"{segment}."
            known = (
                segment in self._by_segment
                or bool(self._unanchored)
                or any(
                    (t == segment or t.startswith(prefix)) and t not in besides for t in self._exact
                )
            )
            self._listening[(segment, besides)] = known
        return known

    def webhooks(self, name: str) -> list[str]:
        """Ids of the workflows that a call of webhook `name` starts, sorted."""
        return list(self._webhooks.get(name, ()))

    def schedules(self) -> list[tuple[str, int, ScheduleTrigger]]:
        """Every schedule trigger as (workflow id, trigger index, trigger), by workflow id."""
        return list(self._schedules)


def _of(entry: _Entry) -> str:
    return entry.subscription.workflow_id


def _keep(table: dict[str, list[T]], key: str, keep: Callable[[T], bool]) -> None:
    """Keep the items under `key` that `keep` accepts; a key left with none goes, since
    `may_match` and `listens_under` read the keys."""
    kept = [item for item in table[key] if keep(item)]
    if kept:
        table[key] = kept
    else:
        del table[key]


def _holds(
    condition: Expression, event: Mapping[str, Any], variables: Mapping[str, Any]
) -> tuple[bool, str | None]:
    """Whether `condition` holds, or why it could not be decided."""
    try:
        value = condition.evaluate({"event": event, "vars": variables})
    except ExpressionError as exc:
        return False, str(exc)
    if not isinstance(value, bool):
        return False, f"`{condition.source}` gave {value!r}, not true or false"
    return value, None
