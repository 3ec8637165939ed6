"""An execution's transitions fetched together (a fan-out's results) are applied one after the
other and stored in one write: the same state and the same records, in the same order, as
applied one at a time; a duplicate or a poison record among them is handled as it would be
alone. Plain dicts as tables, the orchestrator driven in process."""

from __future__ import annotations

import asyncio
from typing import Any

from braidflow.config import Settings
from braidflow.engine import NodeCompleted, RunNode, StartExecution, ids
from braidflow.schemas import decode_stored, decode_transition, encode_transition
from braidflow.streams.catalog import Deployment
from braidflow.streams.departments import Departments
from braidflow.streams.orchestrator import Orchestrator, Record
from braidflow.streams.outbox import Outbox
from braidflow.topology import compile_workflow

T0 = 1_795_000_000_000
KEY = b"e1"
TOPICS = Settings().topics
FAN = {
    "id": "fan",
    "nodes": [
        {"id": "split", "type": "parallel"},
        *({"id": n, "type": "task", "params": {"handler": "h"}} for n in "abc"),
        {"id": "gather", "type": "join"},
        {"id": "done", "type": "end"},
    ],
    "edges": [
        *({"from": "split", "to": n} for n in "abc"),
        *({"from": n, "to": "gather"} for n in "abc"),
        {"from": "gather", "to": "done"},
    ],
}
DEPLOYMENT = Deployment("fan", 1, "", T0, compile_workflow(FAN))


class Catalog:
    """The one deployment, as the orchestrator reads the catalog."""

    def get(self, workflow_id: str, version: int) -> Deployment | None:
        return DEPLOYMENT

    async def wait_for(self, workflow_id: str, version: int, timeout_s: float) -> Deployment:
        return DEPLOYMENT

    def runnable(self, deployment: Deployment) -> Any:
        return deployment.workflow

    def departments_of(self, tenant: str) -> Departments:
        return Departments()


class Table(dict[bytes, bytes]):
    """The executions table; counts the writes of each row."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: dict[bytes, int] = {}

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.writes[key] = self.writes.get(key, 0) + 1
        super().__setitem__(key, value)


class Worker:
    """An orchestrator, its table, and what it sent (never acknowledged)."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes]] = []
        self.letters: list[Any] = []

        async def send(topic: str, key: bytes, value: bytes, headers: Any) -> Any:
            self.sent.append((topic, value))
            return asyncio.get_running_loop().create_future()

        async def dead_letter(letter: Any) -> None:
            self.letters.append(letter)

        self.table = Table()
        self.orchestrator = Orchestrator(
            Catalog(),  # type: ignore[arg-type]
            Outbox(TOPICS, send),
            dead_letter,
            clock=lambda: T0,
        )
        self.offset = 0

    def record(self, value: bytes, key: bytes = KEY) -> Record:
        self.offset += 1
        return Record(TOPICS.transitions, 0, self.offset, key, value)

    async def dispatched(self) -> None:
        """Start the execution and run its split: its three tasks are out."""
        start = StartExecution(ids.start_id("e1"), "e1", T0, "fan", 1, {})
        run_split = RunNode(ids.run_node_id("e1", "split"), "e1", T0 + 1, "split")
        for transition in (start, run_split):
            await self.orchestrator.handle(self.record(encode_transition(transition)), self.table)

    def state(self) -> Any:
        return decode_stored(self.table[KEY])


def result(node: str) -> bytes:
    key = ids.task_key("e1", node, 1)
    return encode_transition(
        NodeCompleted(ids.task_completed_id(key), "e1", T0 + 10, node, 1, {"node": node})
    )


async def _both(values: list[bytes]) -> tuple[Worker, Worker]:
    """The same records applied one at a time, and together."""
    alone, together = Worker(), Worker()
    for worker in (alone, together):
        await worker.dispatched()
    for value in values:
        await alone.orchestrator.handle(alone.record(value), alone.table)
    await together.orchestrator.handle_together(
        [together.record(value) for value in values], together.table
    )
    return alone, together


async def test_a_fan_outs_results_together_are_stored_in_one_write() -> None:
    alone, together = await _both([result(n) for n in "abc"])
    assert together.table == alone.table
    assert together.sent == alone.sent
    # The third result fires the join, and the end after it, in its own step.
    assert together.state().state.status == "completed"
    # The start, the split, then one write for the three results (one each, alone).
    assert together.table.writes[KEY] == 3
    assert alone.table.writes[KEY] == 5


async def test_a_result_twice_among_them_changes_nothing_more() -> None:
    values = [result("a"), result("b"), result("a"), result("c")]
    alone, together = await _both(values)
    assert together.table == alone.table
    assert together.sent == alone.sent
    # The duplicate is ignored: the join fires and the execution ends once, nothing made twice.
    assert together.state().state.status == "completed"
    pending = [entry.id for entry in together.state().outbox]
    assert pending and len(pending) == len(set(pending))


async def test_a_poison_record_among_them_goes_alone_to_the_dead_letters() -> None:
    values = [result("a"), b"not a transition", result("b"), result("c")]
    alone, together = await _both(values)
    assert [letter.reason for letter in together.letters] == [
        letter.reason for letter in alone.letters
    ]
    assert len(together.letters) == 1
    assert together.table == alone.table
    assert together.sent == alone.sent


async def test_a_step_too_large_with_the_join_it_fires_sends_the_join_apart() -> None:
    # Nothing is ever acknowledged here, so each result's output waits in the row. The third
    # result's step, running the join in it, would hold its output and the join's (all three)
    # beside the first two: over the record limit. It is stored with the join's RunNode
    # instead, and the third task completes: no StateTooLarge.
    worker = Worker()
    await worker.dispatched()
    blob = "x" * 170_000
    for node in "abc":
        key = ids.task_key("e1", node, 1)
        done = NodeCompleted(ids.task_completed_id(key), "e1", T0 + 10, node, 1, {"b": blob})
        await worker.orchestrator.handle(worker.record(encode_transition(done)), worker.table)
    state = worker.state().state
    assert {n: state.nodes[n].status for n in "abc"} == dict.fromkeys("abc", "completed")
    assert "gather" not in state.nodes and not worker.letters
    sent = [decode_transition(v) for topic, v in worker.sent if topic == TOPICS.transitions]
    assert RunNode(ids.run_node_id("e1", "gather"), "e1", T0 + 10, "gather") in sent
