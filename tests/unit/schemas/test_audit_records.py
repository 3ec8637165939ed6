"""Audit records as CloudEvents on the audit topic (braidflow/schemas/audit.py)."""

from __future__ import annotations

import json

import pytest

from braidflow.schemas.audit import (
    GIVEN,
    MAX_ENTRIES,
    MAX_TEXT,
    audit_record,
    decode_audit,
    encode_audit,
)
from braidflow.schemas.cloudevents import from_kafka, new_event, to_structured

AT = 1_764_900_000_123


def test_a_record_is_a_cloudevent_any_consumer_reads() -> None:
    record = audit_record(
        "cancel", "ana", "acme", AT, {"execution": "e1"}, {"reason": "duplicate order"}
    )
    key, value, headers = encode_audit(record)
    assert key == b"acme"
    event = from_kafka(headers, value)
    assert (event.type, event.source, event.subject) == (
        "braidflow.audit.cancel",
        "/braidflow/api",
        "e1",
    )
    assert event.time == "2025-12-05T02:00:00.123Z"
    assert event.data == {
        "action": "cancel",
        "principal": "ana",
        "tenant": "acme",
        "target": {"execution": "e1"},
        "detail": {"reason": "duplicate order"},
    }
    assert json.loads(value)["specversion"] == "1.0"
    assert decode_audit(headers, value) == record


def test_a_record_keeps_only_short_scalars() -> None:
    record = audit_record(
        "redrive",
        "ana",
        "acme",
        AT,
        {f"id{n}": n for n in range(MAX_ENTRIES + 3)},
        {"reason": "x" * 5_000, "input": {"card": "4242"}, "items": [1, 2], "n": 3, "ok": True},
    )
    assert len(record.target) == MAX_ENTRIES and record.target["id0"] == "0"
    assert len(str(record.detail["reason"])) == MAX_TEXT
    assert record.detail["input"] == GIVEN and record.detail["items"] == GIVEN
    assert (record.detail["n"], record.detail["ok"]) == (3, True)
    assert "4242" not in encode_audit(record)[1].decode()


def test_a_cloudevent_that_is_no_audit_record_is_refused() -> None:
    headers, value = to_structured(new_event("ticket.created", {"n": 1}, source="/helpdesk"))
    with pytest.raises(ValueError, match="not an audit record"):
        decode_audit(headers, value)
    headers, value = to_structured(new_event("braidflow.audit.deploy", {"n": 1}, source="/x"))
    with pytest.raises(ValueError, match="principal, tenant and time"):
        decode_audit(headers, value)
    with pytest.raises(ValueError):
        decode_audit(None, b"\x00not json")
