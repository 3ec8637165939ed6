"""The audit log as every worker lists it (braidflow/connectors/audit_index.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from aiokafka import TopicPartition

from braidflow.connectors.audit_index import AuditIndex
from braidflow.schemas.audit import AuditRecord, audit_record

AUDIT = TopicPartition("bf.audit", 0)
T0 = 1_764_900_000_000


@pytest.fixture
def index(tmp_path: Path) -> Iterator[AuditIndex]:
    found = AuditIndex(tmp_path / "audit.sqlite")
    yield found
    found.close()


def record(n: int, action: str, principal: str, **target: str) -> AuditRecord:
    return audit_record(action, principal, "default", T0 + n * 1000, target, id=f"r{n}")


RECORDS = [
    record(0, "deploy", "ana", workflow="billing", version="1"),
    record(1, "start", "bob", workflow="billing", execution="e1"),
    record(2, "cancel", "ana", execution="e1"),
    record(3, "remove_workflow", "cy", workflow="billing"),
]


def actions(found: list[dict]) -> list[str]:
    return [r["action"] for r in found]


def test_records_are_listed_newest_first_with_who_what_and_when(index: AuditIndex) -> None:
    index.apply_many(enumerate(RECORDS), {AUDIT: 4})
    found = index.list()
    assert actions(found) == ["remove_workflow", "cancel", "start", "deploy"]
    assert found[1] == {
        "id": "r2",
        "at": "2025-12-05T02:00:02.000Z",
        "action": "cancel",
        "principal": "ana",
        "tenant": "default",
        "target": {"execution": "e1"},
        "detail": {},
        "source": "/braidflow/api",
    }
    assert index.positions() == {AUDIT: 4}


def test_records_are_filtered_by_principal_target_and_time(index: AuditIndex) -> None:
    index.apply_many(enumerate(RECORDS), {AUDIT: 4})
    assert actions(index.list(principal="ana")) == ["cancel", "deploy"]
    assert actions(index.list(target="e1")) == ["cancel", "start"]
    assert actions(index.list(target="billing", principal="bob")) == ["start"]
    assert actions(index.list(from_ms=T0 + 1000, to_ms=T0 + 2000)) == ["cancel", "start"]
    assert actions(index.list(limit=2)) == ["remove_workflow", "cancel"]
    assert index.list(principal="nobody") == []
    assert index.list(tenant="other") == [] and len(index.list(tenant="default")) == 4


def test_a_record_read_again_is_kept_once_and_same_time_ones_keep_the_log_order(
    index: AuditIndex,
) -> None:
    same = [
        audit_record("pause", "ana", "default", T0, {"execution": "e"}, id=f"s{n}")
        for n in range(3)
    ]
    index.apply_many(enumerate(same), {AUDIT: 3})
    index.apply_many(enumerate(same), {AUDIT: 3})
    assert [r["id"] for r in index.list()] == ["s2", "s1", "s0"]
    index.reset()
    assert index.list() == [] and index.positions() == {}
