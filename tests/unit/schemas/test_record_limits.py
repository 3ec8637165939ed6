"""Which starts the API refuses up front: a record over the limit, or a first step whose rows
could not be stored. The refusal names the size and the limit."""

from __future__ import annotations

from typing import Any

import pytest

from braidflow.config import Settings
from braidflow.engine import StartExecution
from braidflow.schemas import encode_transition
from braidflow.schemas.record_limits import RecordTooLarge, check_record
from braidflow.streams.catalog import Deployment
from braidflow.streams.orchestrator import Orchestrator
from braidflow.streams.outbox import Outbox
from braidflow.topology import compile_workflow

LIMIT = Settings().max_value_bytes
NOW = 1_700_000_000_000


def deployment(task_input: Any) -> Deployment:
    doc = {
        "id": "wf",
        "nodes": [
            {"id": "a", "type": "task", "params": {"handler": "h", "input": task_input}},
            {"id": "done", "type": "end"},
        ],
        "edges": [{"from": "a", "to": "done"}],
    }
    return Deployment("wf", 1, "", NOW, compile_workflow(doc))


def start(size: int) -> StartExecution:
    return StartExecution("e/start", "e", NOW, "wf", 1, {"blob": "x" * size})


def orchestrator() -> Orchestrator:
    async def nowhere(*_: object) -> Any:
        raise AssertionError("a dry first step sends nothing")

    outbox = Outbox(Settings().topics, nowhere, nowhere)
    return Orchestrator(None, outbox, nowhere, max_state_bytes=LIMIT)  # type: ignore[arg-type]


def test_a_record_over_the_limit_is_refused_naming_both() -> None:
    encoded = encode_transition(start(1_000_000))
    with pytest.raises(RecordTooLarge) as refused:
        check_record("input", encoded, "a start record", LIMIT)
    assert str(refused.value) == (
        f"input: {len(encoded):,} bytes as a start record, too large: the limit is 983,616"
        " (BRAIDFLOW_MAX_RECORD_BYTES less headroom)"
    )
    check_record("input", encoded[:LIMIT], "a start record", LIMIT)


def test_a_first_step_that_holds_the_input_twice_could_not_be_stored() -> None:
    problem = orchestrator().first_step_problem(deployment("${input}"), start(600_000))
    assert problem is not None
    assert "the execution's state would be" in problem and "983,616" in problem


def test_a_first_step_that_holds_the_input_once_can_be() -> None:
    assert orchestrator().first_step_problem(deployment({"n": 1}), start(900_000)) is None
    assert orchestrator().first_step_problem(deployment("${input}"), start(300_000)) is None
