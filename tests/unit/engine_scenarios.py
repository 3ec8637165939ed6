"""Transitions and workflows shared by the engine's unit tests: an execution started at T0,
results, timer firings and decisions built with plain data."""

from __future__ import annotations

from typing import Any

from engine_driver import applied, settle, workflow

from braidflow.engine import (
    ApprovalDecided,
    ChildFinished,
    ExecutionState,
    NodeCompleted,
    NodeError,
    NodeFailed,
    Outgoing,
    ParentLink,
    StartExecution,
    StepResult,
    TimerFired,
)
from braidflow.topology import Workflow

EX = "ex"
T0 = 1_750_000_000_000
SECOND = 1_000
HOUR = 3_600_000


def start(wf: Workflow, input_: Any = None, parent: ParentLink | None = None) -> StepResult:
    return applied(wf, None, StartExecution("start", EX, T0, wf.id, 1, input_, None, parent))


def started(wf: Workflow, input_: Any = None) -> tuple[ExecutionState, list[Outgoing]]:
    """Start and run every control step: the execution waits for work, timers or people."""
    return settle(wf, start(wf, input_))


def fired(timer_id: str, at: int) -> TimerFired:
    return TimerFired(f"{EX}/timer/{timer_id}/{at}", EX, at, timer_id)


def done(node_id: str, attempt: int, at: int, output: Any = "ok") -> NodeCompleted:
    return NodeCompleted(f"{EX}:{node_id}:{attempt}/done", EX, at, node_id, attempt, output)


def failed(node_id: str, attempt: int, at: int, type_: str = "E", msg: str = "boom") -> NodeFailed:
    error = NodeError(type_, msg)
    return NodeFailed(f"{EX}:{node_id}:{attempt}/failed", EX, at, node_id, attempt, error)


def decided(choice: str, at: int, data: Any = None, node_id: str = "ask") -> ApprovalDecided:
    return ApprovalDecided(f"{EX}/{node_id}/decided/{choice}/{at}", EX, at, node_id, "d-1", choice,
                           "ada", "fine by me", data)  # fmt: skip


DELAY = """
id: delayed
nodes:
  - {id: nap, type: delay, params: {for: 2h}}
  - {id: done, type: end, params: {output: {nap: "${nodes.nap.output}"}}}
edges:
  - {from: nap, to: done}
"""


def retried(
    retry: str = "{max_attempts: 3, backoff: fixed, initial: 10s}", timeout: str = ""
) -> str:
    return f"""
id: retried
nodes:
  - {{id: call, type: task, params: {{handler: h, input: {{n: 1}}}}, retry: {retry}{timeout}}}
  - {{id: done, type: end, params: {{output: {{got: "${{nodes.call.output}}"}}}}}}
edges:
  - {{from: call, to: done}}
"""


BRANCHES = """
id: branches
settings: {timeout: 1h}
nodes:
  - {id: split, type: parallel}
  - {id: a, type: task, params: {handler: h}}
  - {id: b, type: task, params: {handler: h}}
  - {id: both, type: join, params: {wait_for: all, timeout: 10m}}
  - {id: done, type: end, params: {output: {all: "${nodes.both.output}"}}}
edges:
  - {from: split, to: a}
  - {from: split, to: b}
  - {from: a, to: both}
  - {from: b, to: both}
  - {from: both, to: done}
"""


APPROVAL = """
id: leave
department: people
nodes:
  - id: ask
    type: approval
    params:
      message: "Leave for ${input.who}?"
      choices: [approve, reject, later]
      input: {type: object, required: [days], properties: {days: {type: integer}}}
      on_timeout: ON_TIMEOUT
    timeout: 1d
  - {id: done, type: end, params: {output: {decision: "${nodes.ask.output}"}}}
edges:
  - {from: ask, to: done}
"""


def approval(on_timeout: str = "fail") -> Workflow:
    return workflow(APPROVAL.replace("ON_TIMEOUT", on_timeout))


CHILD = f"{EX}.call"


def child_done(status: str = "completed", output: Any = None, error: NodeError | None = None,
               child: str = CHILD) -> ChildFinished:  # fmt: skip
    return ChildFinished(f"{child}/finished", EX, T0 + 50, "call", child, status, output, error)
