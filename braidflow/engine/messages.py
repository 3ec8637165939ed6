"""What goes into the engine (transitions) and what comes out (tasks, events, transitions).

Every transition carries its own `id` and `at` (epoch milliseconds): the
engine never reads a clock or makes an id. Ids of records the engine emits are
derived from the execution and node, so a replay emits the same ids again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from braidflow.access import DEFAULT_TENANT
from braidflow.engine.frozen import quick_init


@quick_init
@dataclass(frozen=True, slots=True)
class NodeError:
    """Why a node or an execution failed: an exception type (or a category) and a message."""

    type: str
    message: str
    node_id: str | None = None


@quick_init
@dataclass(frozen=True, slots=True)
class ParentLink:
    """The execution (and its subworkflow node) that started a child execution.

    `depth` counts the calls above the child (1: started by a top-level
    execution). `context` is the parent's `{input, vars, event}`, which the
    child reads as `parent` in expressions; None when the node does not inherit it.
    `item` is the index of the item the child runs when a foreach node started it.
    """

    execution_id: str
    workflow_id: str
    node_id: str
    depth: int
    context: Mapping[str, Any] | None = None
    item: int | None = None


@quick_init
@dataclass(frozen=True, slots=True)
class StartExecution:
    """Start an execution. `workflow_version` 0 means "the latest": the runtime resolves it.

    `dept` is the shared context of the workflow's department, taken by the runtime when
    the start is first applied, so the engine needs no lookup and the execution keeps it.
    `admission` (`"<tenant>/<department>"`), set by the runtime on the same occasion when the
    department caps its executions, makes the execution wait `queued` for an `AdmitExecution`;
    it never travels in the record. `traceparent`: the W3C trace context the start arrived
    with (a child's: its calling node run's span), None for a new trace.
    """

    id: str
    execution_id: str
    at: int
    workflow_id: str
    workflow_version: int
    input: Any = None
    event: Mapping[str, Any] | None = None
    parent: ParentLink | None = None
    dept: Mapping[str, Any] | None = None
    tenant: str = DEFAULT_TENANT
    admission: str | None = None
    traceparent: str | None = None


@quick_init
@dataclass(frozen=True, slots=True)
class AdmitExecution:
    """A queued execution's turn has come under its department's cap: it starts running."""

    id: str
    execution_id: str
    at: int


@quick_init
@dataclass(frozen=True, slots=True)
class RunNode:
    """One control step: the node became ready and runs now (control) or is dispatched (work)."""

    id: str
    execution_id: str
    at: int
    node_id: str


@quick_init
@dataclass(frozen=True, slots=True)
class NodeCompleted:
    """An attempt of a work node succeeded; `item` set: one item of a foreach node's attempt."""

    id: str
    execution_id: str
    at: int
    node_id: str
    attempt: int
    output: Any = None
    item: int | None = None


@quick_init
@dataclass(frozen=True, slots=True)
class NodeFailed:
    """An attempt of a work node failed; `item` set: one item of a foreach node's attempt."""

    id: str
    execution_id: str
    at: int
    node_id: str
    attempt: int
    error: NodeError
    item: int | None = None


@quick_init
@dataclass(frozen=True, slots=True)
class CancelExecution:
    id: str
    execution_id: str
    at: int
    reason: str = ""
    by: str = ""


@quick_init
@dataclass(frozen=True, slots=True)
class EventArrived:
    """A domain event that correlated with a waiting node; `event` is its CloudEvent scope."""

    id: str
    execution_id: str
    at: int
    node_id: str
    event: Mapping[str, Any]


@quick_init
@dataclass(frozen=True, slots=True)
class TimerFired:
    """A timer the execution set has come due (sent by the owner of its partition)."""

    id: str
    execution_id: str
    at: int
    timer_id: str


@quick_init
@dataclass(frozen=True, slots=True)
class ApprovalDecided:
    """A person decided a waiting approval node. `data` must fit the node's reply schema."""

    id: str
    execution_id: str
    at: int
    node_id: str
    decision_id: str
    choice: str
    by: str
    comment: str | None = None
    data: Any = None


@quick_init
@dataclass(frozen=True, slots=True)
class ChildFinished:
    """A child execution ended (`completed`, `failed` or `cancelled`); sent to its parent.

    `item` is the foreach item the child ran, as its `ParentLink` says.
    """

    id: str
    execution_id: str
    at: int
    node_id: str
    child_execution_id: str
    status: str
    output: Any = None
    error: NodeError | None = None
    item: int | None = None


@quick_init
@dataclass(frozen=True, slots=True)
class PauseExecution:
    """Hold every later transition (except resume and cancel) until the execution is resumed."""

    id: str
    execution_id: str
    at: int
    by: str = ""
    reason: str = ""


@quick_init
@dataclass(frozen=True, slots=True)
class ResumeExecution:
    """Apply the transitions held while paused, in the order they arrived."""

    id: str
    execution_id: str
    at: int
    by: str = ""
    reason: str = ""


@quick_init
@dataclass(frozen=True, slots=True)
class RedriveNode:
    """Run a failed node again in a failed or parked execution.

    `input` replaces the node's resolved input (a task's input, an http node's
    request, a subworkflow's child input); None runs it with the recorded one.
    """

    id: str
    execution_id: str
    at: int
    node_id: str
    by: str = ""
    input: Any = None


@quick_init
@dataclass(frozen=True, slots=True)
class ItemError:
    """Why one item of a foreach node failed."""

    index: int
    type: str
    message: str


@quick_init
@dataclass(frozen=True, slots=True)
class ItemsCollected:
    """The runtime's answer to `CollectItems`: every chunk of the attempt, put together.

    `results` holds the items' outputs in item order (None where an item failed),
    `errors` the failed items. `error` set: the runtime could not put them
    together (too large, say), and the attempt fails with it.
    """

    id: str
    execution_id: str
    at: int
    node_id: str
    attempt: int
    results: tuple[Any, ...] | list[Any]
    errors: tuple[ItemError, ...] = ()
    error: NodeError | None = None


Transition = (
    StartExecution
    | RunNode
    | NodeCompleted
    | NodeFailed
    | CancelExecution
    | EventArrived
    | TimerFired
    | ApprovalDecided
    | ChildFinished
    | PauseExecution
    | ResumeExecution
    | RedriveNode
    | ItemsCollected
    | AdmitExecution
)


@quick_init
@dataclass(frozen=True, slots=True)
class AdmissionRequested:
    """An execution of a capped department asks for a slot: it waits, queued, until admitted.

    `key` is the admission key, `"<tenant>/<department>"`: the admissions topic's record key.
    """

    id: str
    execution_id: str
    at: int
    key: str
    # The execution's span (W3C traceparent): what the AdmitExecution starting it carries.
    traceparent: str | None = None


@quick_init
@dataclass(frozen=True, slots=True)
class AdmissionReleased:
    """An execution that asked for a slot has ended: its slot (or its place in the queue) frees.
    `spent` is what its model calls cost, for its department's budget per day."""

    id: str
    execution_id: str
    at: int
    key: str
    spent: float = 0.0


@quick_init
@dataclass(frozen=True, slots=True)
class TaskRequest:
    """Work for an executor. Handlers and HTTP calls receive `idempotency_key`."""

    execution_id: str
    workflow_id: str
    node_id: str
    kind: str
    attempt: int
    idempotency_key: str
    at: int
    input: Any = None
    handler: str | None = None
    timeout_ms: int | None = None
    item: int | None = None  # a foreach item: the executor echoes it in its answer
    tenant: str = DEFAULT_TENANT  # whose secrets the task may read
    # The department of the workflow the execution runs: which credentials it may use.
    department: str | None = None
    # The node run's span (W3C traceparent): sent on as the http call's or handler's parent.
    traceparent: str | None = None


@quick_init
@dataclass(frozen=True, slots=True)
class LifecycleEvent:
    """A lifecycle event; its `type` is one of:

    `workflow.accepted|queued|started|completed|failed|cancelled|parked|paused|resumed`,
    `workflow.sla_breached` (engine/sla.py),
    `node.started|completed|failed|skipped|retrying|dead_lettered|redriven`.

    An end (`workflow.completed|failed|cancelled`, `node.completed|failed|retrying`) carries
    in `started_at` when what ended started (epoch ms), so a reader can time it without
    remembering the start; None on other events, and on ends whose start is not timed
    (`Draft.began_at`).
    """

    id: str
    type: str
    execution_id: str
    workflow_id: str
    workflow_version: int
    at: int
    node_id: str | None = None
    attempt: int | None = None
    data: Any = None
    error: NodeError | None = None
    tenant: str = DEFAULT_TENANT
    started_at: int | None = None


@quick_init
@dataclass(frozen=True, slots=True)
class AwaitEvent:
    """A node waits for a domain event of `event_type` matching its `correlate` expression.

    `context` holds the values the expression reads besides `event`, taken when
    the wait began, so the correlation side can match without the execution's state.
    The wait lapses at `expires_at` (epoch ms) when the node has a timeout.
    """

    id: str
    execution_id: str
    workflow_id: str
    workflow_version: int
    node_id: str
    event_type: str
    at: int
    expires_at: int | None = None
    context: Mapping[str, Any] | None = None
    tenant: str = DEFAULT_TENANT
    # The waiting node run's span (W3C traceparent): what the resuming EventArrived carries.
    traceparent: str | None = None


@quick_init
@dataclass(frozen=True, slots=True)
class PublishEvent:
    """A domain event a `publish` node emits; the runtime sends it as a CloudEvent with this id."""

    id: str
    execution_id: str
    workflow_id: str
    node_id: str
    at: int
    type: str
    data: Any = None
    subject: str | None = None
    # Published on its tenant's events topic, never another's.
    tenant: str = DEFAULT_TENANT


@quick_init
@dataclass(frozen=True, slots=True)
class DeadLetterNode:
    """A node that failed for good, for the dead-letter topic: enough to inspect and redrive it.

    `errors` holds every failed attempt's error, in order; `context` is the
    execution's `{input, vars, event, workflow_id, version}`.
    """

    id: str
    execution_id: str
    workflow_id: str
    workflow_version: int
    node_id: str
    at: int
    input: Any
    errors: tuple[NodeError, ...]
    context: Mapping[str, Any]
    tenant: str = DEFAULT_TENANT


@quick_init
@dataclass(frozen=True, slots=True)
class ItemsChunk:
    """Results of a foreach attempt's items, kept by the runtime so the state stays small.

    Chunk `chunk` holds items `[chunk * ITEMS_PER_CHUNK, (chunk + 1) * ITEMS_PER_CHUNK)`
    (the last one fewer): `results` their outputs in item order, None where an
    item failed; `errors` the items that failed.
    """

    execution_id: str
    node_id: str
    attempt: int
    chunk: int
    results: tuple[Any, ...]
    errors: tuple[ItemError, ...] = ()


@quick_init
@dataclass(frozen=True, slots=True)
class CollectItems:
    """Every item of a foreach attempt is in: the runtime answers with `ItemsCollected`."""

    id: str
    execution_id: str
    at: int
    node_id: str
    attempt: int
    total: int
    chunks: int


@quick_init
@dataclass(frozen=True, slots=True)
class DropItems:
    """The chunks (`0 .. chunks - 1`) of a foreach attempt are no longer needed."""

    execution_id: str
    node_id: str
    attempt: int
    chunks: int


Outgoing = (
    TaskRequest
    | LifecycleEvent
    | Transition
    | AwaitEvent
    | PublishEvent
    | DeadLetterNode
    | ItemsChunk
    | CollectItems
    | DropItems
    | AdmissionRequested
    | AdmissionReleased
)
