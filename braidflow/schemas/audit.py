"""Audit records: who changed or decided what, and when, as CloudEvents on the audit topic.

One record per change or decision (a deploy, a delete, a start, a cancel, an approval, a
redrive, a key created or revoked...). Each is a CloudEvent 1.0 in structured mode (the
JSON event format, `content-type: application/cloudevents+json`): the same form as the
domain events, so a stream-analytics consumer reads it with any CloudEvents SDK, and
plain JSON, so `kafka-console-consumer` shows it too. Lifecycle events are Avro because
every execution step writes them; audit records are few, and are read by people and
tools that should need no schema to read them.

    type     braidflow.audit.<action>    (the API operation's id: deploy, cancel, decide...)
    source   /braidflow/api, or /braidflow/cli for what the command line writes to Kafka
    subject  the first target value (a workflow id, an execution id...)
    time     when, RFC 3339 UTC
    data     {action, principal, tenant, target: {name: id}, detail: {name: value}}

Bounded on purpose: `detail` holds at most `MAX_ENTRIES` scalars chosen per operation (a
decision's choice, a cancel's reason), never an input or a body, so no secret or personal
data of a request lands in the log; texts are cut to `MAX_TEXT` characters.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from braidflow.engine.state import iso_time
from braidflow.schemas.cloudevents import (
    CloudEvent,
    CloudEventError,
    from_kafka,
    new_event,
    to_structured,
)
from braidflow.topology.durations import parse_timestamp

AUDIT_PREFIX = "braidflow.audit."
API_SOURCE = "/braidflow/api"
CLI_SOURCE = "/braidflow/cli"
MAX_TEXT = 200
"""The most characters of one name or value an audit record keeps."""
MAX_ENTRIES = 8
"""The most target or detail entries an audit record keeps."""

GIVEN = "(given)"
"""What a detail keeps of a value it must not keep: that it was given."""

Scalar = str | int | bool | None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One change or decision: `action` on `target` by `principal` of `tenant` at `at` (ms)."""

    id: str
    action: str
    at: int
    principal: str
    tenant: str
    target: Mapping[str, str] = field(default_factory=dict)
    detail: Mapping[str, Scalar] = field(default_factory=dict)
    source: str = API_SOURCE

    def view(self) -> dict[str, Any]:
        """The record as the API lists it."""
        return {
            "id": self.id,
            "at": iso_time(self.at),
            "action": self.action,
            "principal": self.principal,
            "tenant": self.tenant,
            "target": dict(self.target),
            "detail": dict(self.detail),
            "source": self.source,
        }


def audit_record(
    action: str,
    principal: str,
    tenant: str,
    at: int,
    target: Mapping[str, Any] | None = None,
    detail: Mapping[str, Any] | None = None,
    *,
    source: str = API_SOURCE,
    id: str | None = None,
) -> AuditRecord:
    """A new audit record, bounded: texts cut to MAX_TEXT, at most MAX_ENTRIES of each map;
    a detail value that is not a scalar is kept only as GIVEN."""
    return AuditRecord(
        id=uuid.uuid4().hex if id is None else id,
        action=_cut(action),
        at=at,
        principal=_cut(principal),
        tenant=_cut(tenant),
        target={_cut(k): _cut(str(v)) for k, v in list((target or {}).items())[:MAX_ENTRIES]},
        detail={_cut(k): _scalar(v) for k, v in list((detail or {}).items())[:MAX_ENTRIES]},
        source=source,
    )


def _cut(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _scalar(value: Any) -> Scalar:
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, str):
        return _cut(value)
    return GIVEN


def audit_event(record: AuditRecord) -> CloudEvent:
    """The record as a CloudEvent of type `braidflow.audit.<action>`."""
    return new_event(
        AUDIT_PREFIX + record.action,
        {
            "action": record.action,
            "principal": record.principal,
            "tenant": record.tenant,
            "target": dict(record.target),
            "detail": dict(record.detail),
        },
        source=record.source,
        subject=next(iter(record.target.values()), None),
        id=record.id,
        time=iso_time(record.at),
    )


def encode_audit(record: AuditRecord) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    """Key, value and headers of the record on the audit topic.

    Keyed by tenant: should the topic get more partitions, each tenant's records stay in order.
    """
    headers, value = to_structured(audit_event(record))
    return record.tenant.encode(), value, headers


def decode_audit(
    headers: list[tuple[str, bytes | None]] | None, value: bytes | None
) -> AuditRecord:
    """The audit record of a Kafka record; ValueError (a CloudEventError) if it is none."""
    event = from_kafka(headers, value)
    data = event.data
    if not event.type.startswith(AUDIT_PREFIX) or not isinstance(data, Mapping):
        raise CloudEventError("type", f"{event.type!r} is not an audit record")
    principal, tenant = data.get("principal"), data.get("tenant")
    target, detail = data.get("target") or {}, data.get("detail") or {}
    if not (isinstance(principal, str) and isinstance(tenant, str) and event.time):
        raise CloudEventError("data", "an audit record names its principal, tenant and time")
    if not (isinstance(target, Mapping) and isinstance(detail, Mapping)):
        raise CloudEventError("data", "an audit record's target and detail are objects")
    return audit_record(
        event.type.removeprefix(AUDIT_PREFIX),
        principal,
        tenant,
        parse_timestamp(event.time),
        target,
        detail,
        source=event.source,
        id=event.id,
    )
