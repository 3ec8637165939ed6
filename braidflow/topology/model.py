"""The typed model of a workflow definition (FORMAT.md v1)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# The node kinds and their lists are in `braidflow.topology.kinds`.
# What an approval offers when its params give no `choices`.
DEFAULT_CHOICES = ("approve", "reject")


@dataclass(frozen=True, slots=True)
class Retry:
    max_attempts: int = 1
    backoff: str = "fixed"
    initial_ms: int = 1_000
    max_ms: int | None = None
    jitter: bool = False
    on: tuple[str, ...] | None = None  # the error types that are retried; None: every error


@dataclass(frozen=True, slots=True)
class Node:
    id: str
    type: str
    params: Mapping[str, Any] = field(default_factory=dict)
    name: str | None = None
    timeout_ms: int | None = None
    retry: Retry | None = None


@dataclass(frozen=True, slots=True)
class Edge:
    source: str
    target: str
    when: str | None = None
    default: bool = False
    timeout: bool = False  # taken when the source node times out, instead of failing
    on_error: bool = False  # taken when the source node fails for good, instead of the execution
    label: str | None = None  # out of a classify node: taken when the node chose this label


@dataclass(frozen=True, slots=True)
class EventTrigger:
    """Start an execution for each CloudEvent whose type matches one of the `types` globs."""

    types: tuple[str, ...]
    when: str | None = None
    department: str | None = None


@dataclass(frozen=True, slots=True)
class WebhookTrigger:
    """Start an execution for each call of the webhook `name`."""

    name: str


@dataclass(frozen=True, slots=True)
class ScheduleTrigger:
    """Start an execution at each slot of `cron`, read in `timezone` (an IANA zone name)."""

    cron: str
    timezone: str = "UTC"


Trigger = EventTrigger | WebhookTrigger | ScheduleTrigger


@dataclass(frozen=True, slots=True)
class Definition:
    id: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    name: str | None = None
    description: str | None = None
    department: str | None = None
    input_schema: Mapping[str, Any] | None = None
    variables: Mapping[str, Any] = field(default_factory=dict)
    timeout_ms: int | None = None
    triggers: tuple[Trigger, ...] = ()
    on_failure: str = "fail"  # `settings.on_failure`: `fail` the execution, or `park` it
    # `settings.sla`: an execution still running this long after its start has breached it.
    sla_ms: int | None = None
    # What one execution may spend: its department's `settings.budget.per_execution`.
    budget: float | None = None
    # Its department's `settings.budget.per_day`: a queued start looks again each UTC day.
    budget_per_day: float | None = None
