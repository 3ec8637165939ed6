"""Delivering an execution's records in a drawn order, with duplicates and crashes: the
property-test harness the engine's tests share.

A crash applies a record and sends its outputs but throws the state away; the
record stays to be delivered again. After every commit that changed the
state, the same record applied again must change nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from engine_driver import assert_ignored
from hypothesis import strategies as st

from braidflow.engine import (
    ExecutionState,
    Outgoing,
    RunNode,
    StepResult,
    TaskRequest,
    Transition,
    step,
)
from braidflow.topology import Workflow

MAX_FAULTS = 20
"""How many duplicates and crashes one run draws at most, so that every run ends."""

AnswerTask = Callable[[TaskRequest, int, st.DataObject], list[Transition]]
"""What the executor sends back for a task request, delivered at a clock tick."""
AnswerStep = Callable[[ExecutionState | None, StepResult, int, st.DataObject], list[Transition]]
"""What else comes back for a step's outputs (events, fired timers), given the state before."""


@dataclass
class Trace:
    """What a run left: the last committed state, the transitions that changed it, what was sent."""

    state: ExecutionState | None = None
    applied: list[Transition] = field(default_factory=list)
    emitted: list[Outgoing] = field(default_factory=list)
    requests: list[TaskRequest] = field(default_factory=list)


def scrambled_run(
    wf: Workflow,
    data: st.DataObject,
    start: Transition,
    answer_task: AnswerTask,
    answer_step: AnswerStep,
    clock: int,
) -> Trace:
    """Deliver `start` and everything it leads to in a drawn order until nothing is left.

    RunNodes and task requests a step sends go back into the pool; `answer_task`
    and `answer_step` add what the world answers. A task request hit by a fault
    is delivered again, as a redelivered record would be.
    """
    trace = Trace()
    pool: list[Transition | TaskRequest] = [start]
    faults = 0
    while pool:
        message = pool.pop(data.draw(st.integers(0, len(pool) - 1)))
        clock += 1
        fault = "none"
        if faults < MAX_FAULTS:
            fault = data.draw(st.sampled_from(["none", "none", "none", "duplicate", "crash"]))
            faults += fault != "none"
        if isinstance(message, TaskRequest):
            trace.requests.append(message)
            pool.extend(answer_task(message, clock, data))
            if fault != "none":
                pool.append(message)
            continue
        before = trace.state
        result = step(wf, before, message)
        trace.emitted.extend(result.outgoing)
        pool.extend(o for o in result.outgoing if isinstance(o, RunNode | TaskRequest))
        pool.extend(answer_step(before, result, clock, data))
        if fault == "crash":
            pool.append(message)
            continue
        trace.state = result.state
        if fault == "duplicate":
            pool.append(message)
        if result.ignored is None:
            trace.applied.append(message)
            assert_ignored(wf, trace.state, message)
    return trace
