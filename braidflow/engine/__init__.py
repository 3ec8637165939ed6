"""The execution state machine: `step(workflow, state, transition)`. Pure and deterministic."""

from braidflow.engine.messages import (
    CancelExecution,
    LifecycleEvent,
    NodeCompleted,
    NodeError,
    NodeFailed,
    Outgoing,
    RunNode,
    StartExecution,
    TaskRequest,
    Transition,
)
from braidflow.engine.state import ExecutionState, JoinState, NodeRun
from braidflow.engine.step import StepResult, input_problems, step

__all__ = [
    "CancelExecution",
    "ExecutionState",
    "JoinState",
    "LifecycleEvent",
    "NodeCompleted",
    "NodeError",
    "NodeFailed",
    "NodeRun",
    "Outgoing",
    "RunNode",
    "StartExecution",
    "StepResult",
    "TaskRequest",
    "Transition",
    "input_problems",
    "step",
]
