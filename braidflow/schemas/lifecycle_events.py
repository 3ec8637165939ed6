"""Lifecycle events as CloudEvents: binary-mode headers on the lifecycle topic, and their scope.

Every record on the lifecycle topic carries `ce_*` headers (CloudEvents Kafka
binding, binary content mode) with the Avro record as its data, so stock
CloudEvents consumers see `braidflow.workflow.completed` and the like, and the
event router can hand them to workflows that trigger on another's lifecycle.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

from braidflow.engine import LifecycleEvent, NodeError, StartExecution, ids
from braidflow.engine.state import iso_time

AVRO_CONTENT_TYPE = b"application/avro"


LIFECYCLE_SEGMENT = "braidflow"
"""The first segment of the CloudEvent type of every lifecycle event."""


def lifecycle_type(event_type: str) -> str:
    """The CloudEvent type of a lifecycle event type: `workflow.completed` -> `braidflow.workflow.completed`."""
    return f"{LIFECYCLE_SEGMENT}.{event_type}"


NODE_TYPE_HEADER = "ce_nodetype"
"""A CloudEvents extension on node events: the node's type, so readers can filter undecoded."""


lifecycle_event_type = ids.event_type_of
"""The event type an event id ends with (see `ids.node_event_id`, `ids.workflow_event_id`)."""


def lifecycle_headers(
    event_id: str, execution_id: bytes, node_types: Mapping[str, str] | None = None
) -> list[tuple[str, bytes]]:
    """The binary-mode headers of a lifecycle record, from its id alone (no decoding).

    The id is what lets a resent outbox entry get its headers back. With the
    workflow's `node_types` (node id to type), node events also carry
    `ce_nodetype`.
    """
    event_type = lifecycle_event_type(event_id)
    headers = [
        ("ce_specversion", b"1.0"),
        ("ce_id", event_id.encode()),
        ("ce_source", b"/braidflow"),
        ("ce_type", _ce_type(event_type)),
        ("ce_subject", execution_id),
        ("content-type", AVRO_CONTENT_TYPE),
    ]
    if node_types is not None and event_type.startswith("node."):
        # The header is a courtesy: an id that names no node just goes without it. Parsing
        # the id with `ids.parse_event_id` was two thirds of the headers' cost.
        node_type = node_types.get(ids.node_of_event_id(event_id) or "")
        if node_type is not None:
            headers.append((NODE_TYPE_HEADER, node_type.encode()))
    return headers


# The types are a few dozen; each record sent asks for its own again.
@functools.lru_cache(maxsize=128)
def _ce_type(event_type: str) -> bytes:
    return lifecycle_type(event_type).encode()


def lifecycle_scope(event: LifecycleEvent) -> dict[str, Any]:
    """What a workflow triggered by a lifecycle event sees as `event`."""
    return {
        "specversion": "1.0",
        "id": event.id,
        "source": "/braidflow",
        "type": lifecycle_type(event.type),
        "subject": event.execution_id,
        "time": iso_time(event.at),
        "datacontenttype": "application/json",
        "data": {
            "execution_id": event.execution_id,
            "workflow_id": event.workflow_id,
            "workflow_version": event.workflow_version,
            "node_id": event.node_id,
            "attempt": event.attempt,
            "data": event.data,
            "error": None
            if event.error is None
            else {"type": event.error.type, "message": event.error.message},
        },
    }


def event_json(event: LifecycleEvent) -> dict[str, Any]:
    """A lifecycle event as the API shows it (streams, dashboards): plain JSON, times as
    ISO 8601 UTC as execution views show them, the error with the node it names."""
    return {
        "id": event.id,
        "type": event.type,
        "execution_id": event.execution_id,
        "workflow_id": event.workflow_id,
        "workflow_version": event.workflow_version,
        "at": iso_time(event.at),
        "node_id": event.node_id,
        "attempt": event.attempt,
        "data": event.data,
        "error": None
        if event.error is None
        else {
            "type": event.error.type,
            "message": event.error.message,
            "node_id": event.error.node_id,
        },
    }


def accepted_event(start: StartExecution) -> LifecycleEvent:
    """`workflow.accepted`: a start was accepted (answered with its id), not yet applied.

    Written by the accepting worker, so every worker's execution index knows the
    execution before the orchestrator gets to its start. Small on purpose: no input.
    """
    return LifecycleEvent(
        ids.workflow_event_id(start.execution_id, "workflow.accepted"),
        "workflow.accepted",
        start.execution_id,
        start.workflow_id,
        start.workflow_version,
        start.at,
        tenant=start.tenant,
    )


START_REFUSED = "StartRefused"
"""The error type of an execution whose start could never be applied (see `refused_event`)."""


def refused_event(start: StartExecution, reason: str, at: int) -> LifecycleEvent:
    """`workflow.failed` for a start the orchestrator refused (dead-lettered) before any state.

    The start may have been accepted, its id answered: the execution index turns
    `accepted` into `failed` with the reason, so the id never reads as unknown, nor
    as accepted for ever.
    """
    return LifecycleEvent(
        ids.workflow_event_id(start.execution_id, "workflow.failed"),
        "workflow.failed",
        start.execution_id,
        start.workflow_id,
        start.workflow_version,
        at,
        error=NodeError(START_REFUSED, reason),
        tenant=start.tenant,
    )
