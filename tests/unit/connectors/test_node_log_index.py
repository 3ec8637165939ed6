"""The node log index: each execution's node run logs, once each, its tenant's only, kept as
long as the topic keeps them."""

from __future__ import annotations

from pathlib import Path

import pytest
from aiokafka import TopicPartition

from braidflow.connectors.node_log_index import NodeLogIndex
from braidflow.node_logs import LogLine
from braidflow.schemas.node_logs import NodeRunLog, decode_node_log

T0 = 1_795_000_000_000
DAY = 24 * 3600 * 1000


def run(
    node: str = "work",
    attempt: int = 1,
    at: int = T0,
    *,
    execution: str = "ex",
    tenant: str = "default",
    item: int | None = None,
    lines: tuple[str, ...] = ("hello",),
    cut_lines: int = 0,
) -> NodeRunLog:
    key = f"{execution}:{node}:{attempt}" + ("" if item is None else f":{item}")
    return NodeRunLog(
        key,
        execution,
        "wf",
        node,
        attempt,
        at,
        tuple(LogLine(at - 5, "info", text) for text in lines),
        item=item,
        tenant=tenant,
        cut=cut_lines > 0,
        cut_lines=cut_lines,
    )


@pytest.fixture
def index(tmp_path: Path) -> NodeLogIndex:
    return NodeLogIndex(tmp_path / "node-logs.sqlite", retention_ms=7 * DAY)


def test_a_record_reads_back_as_it_was_written() -> None:
    written = run(item=3, lines=("a", "ünïcode \n second line"), cut_lines=2)
    assert decode_node_log(written.encode()) == written


@pytest.mark.parametrize(
    "value",
    [b"\xff", b"[]", b'{"id": "x"}', run().encode().replace(b'"attempt":1', b'"attempt":true')],
)
def test_a_record_that_is_no_node_log_is_refused(value: bytes) -> None:
    with pytest.raises(ValueError):
        decode_node_log(value)


def test_runs_show_in_the_order_they_ended_a_retry_once_per_attempt(index: NodeLogIndex) -> None:
    records = [run("b", 1, T0 + 10), run("a", 1, T0), run("a", 2, T0 + 20, lines=("again",))]
    index.apply_many([(0, n, r.encode()) for n, r in enumerate(records)])
    shown = index.of_execution("ex")
    assert [(r["node_id"], r["attempt"]) for r in shown] == [("a", 1), ("b", 1), ("a", 2)]
    assert shown[2] == {
        "node_id": "a",
        "attempt": 2,
        "item": None,
        "lines": [{"at": "2026-11-18T11:06:40.015Z", "level": "info", "message": "again"}],
        "cut": False,
        "cut_lines": 0,
    }


def test_a_run_delivered_twice_is_shown_once(index: NodeLogIndex) -> None:
    first = run(lines=("first copy",))
    index.apply_many([(0, 0, first.encode()), (0, 1, run(lines=("second",)).encode())])
    index.apply_many([(0, 2, first.encode())])
    assert [r["lines"][0]["message"] for r in index.of_execution("ex")] == ["first copy"]


def test_another_tenants_execution_of_the_same_id_is_not_shown(index: NodeLogIndex) -> None:
    index.apply_many([(0, 0, run(tenant="other", execution="ex").encode())])
    assert index.of_execution("ex") == []
    assert len(index.of_execution("ex", "other")) == 1


def test_runs_older_than_the_retention_are_dropped(index: NodeLogIndex) -> None:
    index.apply_many([(0, 0, run(execution="old", at=T0).encode())])
    index.apply_many([(0, 1, run(execution="new", at=T0 + 8 * DAY).encode())])
    assert index.of_execution("old") == [] and len(index.of_execution("new")) == 1


def test_an_undecodable_record_is_skipped_and_its_position_stored(index: NodeLogIndex) -> None:
    tp = TopicPartition("bf.logs", 0)
    index.apply_many([(0, 0, b"not json"), (0, 1, run().encode())], {tp: 2})
    assert len(index.of_execution("ex")) == 1 and index.positions() == {tp: 2}
    index.reset()
    assert index.of_execution("ex") == [] and index.positions() == {}
