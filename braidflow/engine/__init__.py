"""The execution state machine: `step(workflow, state, transition)`. Pure and deterministic."""

from braidflow.engine.messages import (
    AwaitEvent,
    CancelExecution,
    EventArrived,
    LifecycleEvent,
    NodeCompleted,
    NodeError,
    NodeFailed,
    Outgoing,
    PublishEvent,
    RunNode,
    StartExecution,
    TaskRequest,
    TimerFired,
    Transition,
)
from braidflow.engine.state import ExecutionState, JoinState, NodeRun
from braidflow.engine.step import StepResult, input_problems, step

__all__ = [
    "AwaitEvent",
    "CancelExecution",
    "EventArrived",
    "ExecutionState",
    "JoinState",
    "LifecycleEvent",
    "NodeCompleted",
    "NodeError",
    "NodeFailed",
    "NodeRun",
    "Outgoing",
    "PublishEvent",
    "RunNode",
    "StartExecution",
    "StepResult",
    "TaskRequest",
    "TimerFired",
    "Transition",
    "input_problems",
    "step",
]
