"""The read models by tenant: executions, approvals and dead letters are listed and found
for their own tenant only; an index built before tenants gains the column (its rows are
the default tenant's) and the execution index reads its topic again."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from aiokafka import TopicPartition

from braidflow.access import DEFAULT_TENANT
from braidflow.connectors.dead_letter_index import DeadLetterIndex
from braidflow.connectors.execution_index import ExecutionIndex
from braidflow.engine import DeadLetterNode, NodeError
from braidflow.engine.messages import LifecycleEvent
from braidflow.schemas.dead_letters import DeadLetter, encode_node_letter

NOW = 1_700_000_000_000


def started(execution_id: str, tenant: str) -> LifecycleEvent:
    return LifecycleEvent(
        f"{execution_id}/started", "workflow.started", execution_id, "refund", 1, NOW, tenant=tenant
    )


def approval(execution_id: str, tenant: str) -> LifecycleEvent:
    data = {"kind": "approval", "message": "ok?", "choices": ["approve", "reject"]}
    return LifecycleEvent(
        f"{execution_id}/ask",
        "node.started",
        execution_id,
        "refund",
        1,
        NOW,
        "ask",
        1,
        data,
        tenant=tenant,
    )


def test_executions_and_approvals_are_their_tenants(tmp_path: Path) -> None:
    index = ExecutionIndex(tmp_path / "executions.sqlite")
    index.apply_many([started("a1", "acme"), approval("a1", "acme"), started("d1", DEFAULT_TENANT)])
    assert [e["execution_id"] for e in index.list("refund", tenant="acme")] == ["a1"]
    assert [e["execution_id"] for e in index.list("refund")] == ["d1"]
    assert index.get("a1") is None and index.get("a1", "acme") is not None
    assert [a["execution_id"] for a in index.pending_approvals(tenant="acme")] == ["a1"]
    assert index.pending_approvals() == []
    index.close()


def test_an_execution_index_from_before_tenants_gains_the_column_and_reads_again(
    tmp_path: Path,
) -> None:
    path = tmp_path / "executions.sqlite"
    index = ExecutionIndex(path)
    index.apply_many([started("d1", DEFAULT_TENANT)], {TopicPartition("bf.lifecycle", 0): 7})
    index.close()
    with sqlite3.connect(path) as db:
        # As version 2 left it: no tenant columns (nor the index on them).
        db.execute("DROP INDEX executions_by_tenant")
        db.execute("ALTER TABLE executions DROP COLUMN tenant")
        db.execute("ALTER TABLE approvals DROP COLUMN tenant")
        db.execute("PRAGMA user_version = 2")
    db.close()
    index = ExecutionIndex(path)
    assert [e["execution_id"] for e in index.list("refund")] == ["d1"]
    assert index.positions() == {}
    index.close()


def test_dead_letters_are_their_tenants(tmp_path: Path) -> None:
    index = DeadLetterIndex(tmp_path / "dead-letters.sqlite")
    node = DeadLetterNode(
        "a1/charge/1",
        "a1",
        "refund",
        1,
        "charge",
        NOW,
        {},
        (NodeError("E", "m"),),
        {},
        tenant="acme",
    )
    on_topic = DeadLetter("tenants.acme.events.ticket", 0, 3, None, b"x", "not JSON", NOW)
    default = DeadLetter("events.ticket", 0, 4, None, b"x", "not JSON", NOW)
    index.apply_many(
        [
            (0, 0, encode_node_letter(node)),
            (0, 1, on_topic.encode()),
            (0, 2, default.encode()),
        ]
    )
    assert {d["id"] for d in index.list(tenant="acme")} == {
        "a1/charge/1",
        "tenants.acme.events.ticket:0:3",
    }
    assert {d["id"] for d in index.list()} == {"events.ticket:0:4"}
    assert index.get("a1/charge/1") is None and index.get("a1/charge/1", "acme") is not None
    index.close()


def test_a_dead_letter_index_from_before_tenants_gains_the_column_and_keeps_its_place(
    tmp_path: Path,
) -> None:
    path = tmp_path / "dead-letters.sqlite"
    index = DeadLetterIndex(path)
    letter = DeadLetter("events.ticket", 0, 4, None, b"x", "not JSON", NOW)
    index.apply_many([(0, 0, letter.encode())], {TopicPartition("bf.dead-letters", 0): 1})
    index.close()
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE dead_letters DROP COLUMN tenant")
    db.close()
    index = DeadLetterIndex(path)
    assert [d["id"] for d in index.list()] == ["events.ticket:0:4"]
    assert index.positions() == {TopicPartition("bf.dead-letters", 0): 1}
    index.close()
