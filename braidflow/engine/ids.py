"""Every id braidflow writes into a record or a row: how it is built and how it is read back.

These ids are in Kafka records and table rows, where redelivery is deduplicated by them and
replays rebuild state from them: a format must never change. Each builder's docstring shows
its format; tests/unit/engine/test_ids.py pins each with an example.

Execution ids are the caller's (they may hold `/`, `.`, `[`); node ids match
`[A-Za-z_][A-Za-z0-9_]*` (the definition schema), so they hold none of `/`, `.`, `[` and
never start with a digit. Parsers therefore read from the right, and raise ValueError on
an id that is not of their kind.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from braidflow.access import DEFAULT_TENANT

_NODE = r"[A-Za-z_][A-Za-z0-9_]*"
_NUMBER = r"(?:0|[1-9][0-9]*)"
_NODE_ID = re.compile(_NODE)
_COUNT = re.compile(_NUMBER)


def _malformed(kind: str, text: str) -> ValueError:
    return ValueError(f"{text!r} is not a {kind} id")


# -- transitions about the execution as a whole


def start_id(execution_id: str) -> str:
    """The StartExecution of an execution: `<execution>/start`."""
    return f"{execution_id}/start"


def child_cancel_id(child_execution_id: str) -> str:
    """A parent's CancelExecution of its child: `<child execution>/cancel`."""
    return f"{child_execution_id}/cancel"


def control_id(execution_id: str, action: str, tag: str) -> str:
    """A cancel, pause or resume asked through the API: `<execution>/<action>/<tag>`."""
    return f"{execution_id}/{action}/{tag}"


def finished_id(execution_id: str, generation: str = "") -> str:
    """The transition that closes an execution: `<execution>/finished[/<control actions>]`."""
    return f"{execution_id}/finished{generation}"


def admission_requested_id(execution_id: str) -> str:
    """A queued execution's request for a slot under its department's cap: `<execution>/queued`."""
    return f"{execution_id}/queued"


def admit_id(execution_id: str) -> str:
    """The AdmitExecution that starts a queued execution: `<execution>/admit`."""
    return f"{execution_id}/admit"


def admission_released_id(execution_id: str, generation: str = "") -> str:
    """The end of an execution that held (or waited for) a slot: `<execution>/released[/<n>]`."""
    return f"{execution_id}/released{generation}"


def generation(control_actions: int) -> str:
    """The suffix that keeps workflow events unique once people acted: `""` or `/<count>`."""
    return f"/{control_actions}" if control_actions else ""


# The namespace UUID 6f1c1d57-6a43-4b8e-9d0e-3f0b2f3c9a11 (uuid is off limits in the pure core).
_NAMESPACE_BYTES = bytes.fromhex("6f1c1d576a434b8e9d0e3f0b2f3c9a11")


def execution_id_for(
    event: Mapping[str, Any], workflow_id: str, tenant: str = DEFAULT_TENANT
) -> str:
    """The one execution an event starts for a workflow: the same inputs, the same id.

    A name-based UUID (version 5) of `<event source>\\n<event id>\\n<workflow>`, as 32 hex digits;
    another tenant than the default puts `<tenant>\\n` first, so two tenants' workflows of one
    id never share an execution while the default tenant's ids stay what they were.
    """
    name = f"{event.get('source')}\n{event.get('id')}\n{workflow_id}"
    if tenant != DEFAULT_TENANT:
        name = f"{tenant}\n{name}"
    # uuid.uuid5(_NAMESPACE, name).hex, without its UUID object and integer round trips
    # (a third of the id's cost; the router makes one per start).
    digest = bytearray(hashlib.sha1(_NAMESPACE_BYTES + name.encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50
    digest[8] = (digest[8] & 0x3F) | 0x80
    return digest.hex()


# -- transitions about one node


def node_attempt(execution_id: str, node_id: str, attempt: int) -> str:
    """One attempt of a node, the stem of its ids: `<execution>/<node>/<attempt>`."""
    return f"{execution_id}/{node_id}/{attempt}"


def run_node_id(execution_id: str, node_id: str) -> str:
    """The RunNode of a node: `<execution>/<node>/run`."""
    return f"{execution_id}/{node_id}/run"


def decision_id(execution_id: str, node_id: str, decision: str) -> str:
    """An approval's decision: `<execution>/<node>/decision/<decision id>`."""
    return f"{execution_id}/{node_id}/decision/{decision}"


def decided_id(execution_id: str, node_id: str, attempt: int) -> str:
    """An approval's decision made by a dry run: `<execution>/<node>/<attempt>/decided`."""
    return f"{node_attempt(execution_id, node_id, attempt)}/decided"


def redrive_id(execution_id: str, node_id: str, tag: str) -> str:
    """A redrive of a node: `<execution>/<node>/redrive/<tag>`."""
    return f"{execution_id}/{node_id}/redrive/{tag}"


def dead_letter_id(execution_id: str, node_id: str, attempt: int) -> str:
    """The dead letter of a node that failed for good: `<execution>/<node>/<attempt>/dead-letter`."""
    return f"{node_attempt(execution_id, node_id, attempt)}/dead-letter"


def wait_id(execution_id: str, node_id: str, attempt: int) -> str:
    """A wait_event node's registration: `<execution>/<node>/<attempt>/await`."""
    return f"{node_attempt(execution_id, node_id, attempt)}/await"


def arrived_id(wait: str) -> str:
    """The EventArrived that ends a wait: `<wait id>/arrived`."""
    return f"{wait}/arrived"


def collect_id(execution_id: str, node_id: str, attempt: int) -> str:
    """A foreach node's request for its results: `<execution>/<node>/<attempt>/collect`."""
    return f"{node_attempt(execution_id, node_id, attempt)}/collect"


def collected_id(collect: str) -> str:
    """The ItemsCollected answering a collect request: `<collect id>/collected`."""
    return f"{collect}/collected"


def published_id(execution_id: str, node_id: str) -> str:
    """The CloudEvent a publish node sends: `<execution>/<node>`."""
    return f"{execution_id}/{node_id}"


def sla_breached_id(execution_id: str) -> str:
    """The `braidflow.sla.breached` CloudEvent of an execution: `<execution>/sla.breached`."""
    return f"{execution_id}/sla.breached"


def too_large_id(transition_id: str) -> str:
    """The failure standing in for a result too large to keep: `<transition id>/too-large`."""
    return f"{transition_id}/too-large"


# -- tasks


def task_key(execution_id: str, node_id: str, attempt: int) -> str:
    """A task's idempotency key: `<execution>:<node>:<attempt>`."""
    return f"{execution_id}:{node_id}:{attempt}"


def item_task_key(execution_id: str, node_id: str, attempt: int, index: int) -> str:
    """The idempotency key of a foreach item's or loop pass's task: `<execution>:<node>:<attempt>:<index>`."""
    return f"{execution_id}:{node_id}:{attempt}:{index}"


def task_completed_id(key: str) -> str:
    """The NodeCompleted of a task: `<idempotency key>/completed`."""
    return f"{key}/completed"


def task_failed_id(key: str) -> str:
    """The NodeFailed of a task: `<idempotency key>/failed`."""
    return f"{key}/failed"


# -- timers


EXECUTION_TIMER = "execution/timeout"
"""The timer of an execution's own `timeout`."""

SLA_TIMER = "execution/sla"
"""The timer of an execution's SLA (`settings.sla`): when it fires, the SLA is breached."""

BUDGET_DAY_TIMER = "execution/budget-day/"
"""The prefix of the timer of a queued execution whose department has a budget per day,
`execution/budget-day/<day>`: at that UTC day's midnight it asks for its slot again, so the
new day's budget admits it. The day in the id makes a redelivered firing one not pending."""

DAY_MS = 86_400_000


def budget_day_timer(due: int) -> str:
    """The id of the budget-day timer due at `due`, a UTC midnight (epoch ms)."""
    return f"{BUDGET_DAY_TIMER}{due // DAY_MS}"


def next_day(at: int) -> int:
    """The UTC midnight after `at` (epoch ms)."""
    return (at // DAY_MS + 1) * DAY_MS


def admission_asked_again_id(execution_id: str, at: int) -> str:
    """A queued execution's request for a slot sent again on a new day: `<execution>/queued/<day>`."""
    return f"{execution_id}/queued/{at // DAY_MS}"


JOIN_TIMEOUT = "join-timeout"


class NodeTimer(NamedTuple):
    """A node's timer: `attempt` is None for a join's timeout, which belongs to no attempt."""

    node_id: str
    attempt: int | None
    kind: str


def node_timer(node_id: str, attempt: int, kind: str) -> str:
    """A timer of one attempt of a node: `<node>/<attempt>/<kind>` (timeout, retry, delay...)."""
    return f"{node_id}/{attempt}/{kind}"


def join_timer(node_id: str) -> str:
    """A join's timeout: `<node>/join-timeout`."""
    return f"{node_id}/{JOIN_TIMEOUT}"


def node_timer_prefix(node_id: str) -> str:
    """What every timer of a node starts with: `<node>/`."""
    return f"{node_id}/"


def parse_node_timer(timer_id: str) -> NodeTimer:
    """The parts of a `node_timer` or `join_timer` id."""
    head, slash, kind = timer_id.rpartition("/")
    if slash and kind == JOIN_TIMEOUT and head:
        return NodeTimer(head, None, kind)
    node_id, slash, attempt = head.rpartition("/")
    if not slash or not node_id or not kind or not _COUNT.fullmatch(attempt):
        raise _malformed("node timer", timer_id)
    return NodeTimer(node_id, int(attempt), kind)


def timer_fired_id(execution_id: str, timer_id: str, due_ms: int) -> str:
    """The TimerFired of a due timer: `<execution>/timer/<timer id>/<due ms>`."""
    return f"{execution_id}/timer/{timer_id}/{due_ms}"


@dataclass(frozen=True, slots=True)
class DueTimer:
    """A timer row: when it is due (epoch ms), whose it is, and its id in the execution."""

    due_ms: int
    execution_id: str
    timer_id: str


_DUE_BYTES = 8
_MAX_DUE_MS = 2 ** (8 * _DUE_BYTES) - 1
_SEPARATOR = b"\0"


def timer_key(due_ms: int, execution_id: str, timer_id: str) -> bytes:
    """A timer's row key: 8-byte big-endian due time, execution id, NUL, timer id.

    Byte order is due order, then execution id, then timer id: big-endian
    integers compare like their bytes, and the NUL ends the execution id
    before any character it could be compared with.
    """
    if not 0 <= due_ms < _MAX_DUE_MS:
        raise ValueError(f"due time {due_ms} is outside 0..{_MAX_DUE_MS - 1}")
    if "\0" in execution_id:
        raise ValueError(f"execution id {execution_id!r} contains NUL")
    return b"".join(
        (due_ms.to_bytes(_DUE_BYTES, "big"), execution_id.encode(), _SEPARATOR, timer_id.encode())
    )


def parse_timer_key(key: bytes) -> DueTimer:
    """The timer a row key names; ValueError when `key` is not a timer key."""
    execution_id, separator, timer_id = key[_DUE_BYTES:].partition(_SEPARATOR)
    if not separator:
        raise ValueError(f"not a timer key: {key!r}")
    try:
        return DueTimer(
            int.from_bytes(key[:_DUE_BYTES], "big"), execution_id.decode(), timer_id.decode()
        )
    except UnicodeDecodeError:
        raise ValueError(f"not a timer key: {key!r}") from None


def timer_keys_due_by(now_ms: int) -> bytes:
    """The first key after every timer row due at `now_ms` or before (a scan's upper bound)."""
    return min(now_ms + 1, _MAX_DUE_MS).to_bytes(_DUE_BYTES, "big")


def is_timer_key(key: bytes) -> bool:
    """Whether a row key of the timers store is a timer's (not a row of the store's own)."""
    return _SEPARATOR in key[_DUE_BYTES:]


# -- lifecycle events


class EventId(NamedTuple):
    """The parts of a lifecycle event id; `node_id` and `attempt` are None for workflow events."""

    execution_id: str
    type: str
    node_id: str | None = None
    attempt: int | None = None


def node_event_id(execution_id: str, node_id: str, attempt: int, event_type: str) -> str:
    """A node's lifecycle event: `<execution>/<node>/<attempt>/<type>`, e.g. `e1/pay/1/node.completed`."""
    return f"{execution_id}/{node_id}/{attempt}/{event_type}"


def workflow_event_id(execution_id: str, event_type: str, generation: str = "") -> str:
    """A workflow's lifecycle event: `<execution>/<type>[/<control actions>]`."""
    return f"{execution_id}/{event_type}{generation}"


def event_type_of(event_id: str) -> str:
    """The event type a lifecycle event id names (the last segment, or the one before a count)."""
    head, _, last = event_id.rpartition("/")
    if last.isdigit():
        return head.rpartition("/")[2]
    return last


def node_of_event_id(event_id: str) -> str | None:
    """The node a `node_event_id` names, read as it is written, not checked as
    `parse_event_id` checks it (a lifecycle event's headers ask it of every event sent)."""
    parts = event_id.rsplit("/", 3)
    return parts[1] if len(parts) == 4 and parts[0] else None


def parse_event_id(event_id: str) -> EventId:
    """The parts of a `node_event_id` (its type starts with `node.`) or a `workflow_event_id`."""
    event_type = event_type_of(event_id)
    if event_type.startswith("node."):
        parts = event_id.rsplit("/", 3)
        if (
            len(parts) != 4
            or not parts[0]
            or not _NODE_ID.fullmatch(parts[1])
            or not _COUNT.fullmatch(parts[2])
        ):
            raise _malformed("lifecycle event", event_id)
        return EventId(parts[0], event_type, parts[1], int(parts[2]))
    execution_id, slash, rest = event_id.rpartition("/")
    if rest.isdigit():
        execution_id, slash, rest = execution_id.rpartition("/")
    if not slash or not execution_id or not event_type:
        raise _malformed("lifecycle event", event_id)
    return EventId(execution_id, event_type)


# -- child executions


class ChildId(NamedTuple):
    """The parts of a child execution id; `item` is a foreach item's index or a loop pass's
    (not `index`, which would hide the tuple's own method)."""

    parent: str
    node_id: str
    attempt: int
    item: int | None = None


def child_execution_id(execution_id: str, node_id: str, attempt: int) -> str:
    """The child a subworkflow node starts: `<execution>.<node>`, `<execution>.<node>.<attempt>` from attempt 2.

    Node ids never start with a digit, so the attempt suffix cannot be mistaken
    for a node of a deeper call.
    """
    child = f"{execution_id}.{node_id}"
    return child if attempt == 1 else f"{child}.{attempt}"


def item_child_id(execution_id: str, node_id: str, attempt: int, index: int) -> str:
    """The child of a foreach item or a loop pass: `<child execution id>[<index>]`."""
    return f"{child_execution_id(execution_id, node_id, attempt)}[{index}]"


_CHILD = re.compile(rf"(.+)\.({_NODE})(?:\.([2-9]|[1-9][0-9]+))?(?:\[({_NUMBER})\])?", re.DOTALL)


def parse_child_id(child_id: str) -> ChildId:
    """The parts of a `child_execution_id` or an `item_child_id`."""
    match = _CHILD.fullmatch(child_id)
    if match is None:
        raise _malformed("child execution", child_id)
    parent, node_id, attempt, index = match.groups()
    return ChildId(parent, node_id, int(attempt or 1), int(index) if index is not None else None)


def item_key(node_id: str, index: int) -> str:
    """The key of an item's child execution in `ExecutionState.children`: `<node>[<index>]`."""
    return f"{node_id}[{index}]"


# -- rows beside the execution


class ValueRowId(NamedTuple):
    """The parts of a value row's key."""

    execution_id: str
    digest: str


def value_row_key(execution_id: str, digest: str) -> bytes:
    """The row of a large value of an execution: `<execution>/value/<digest>`."""
    return f"{execution_id}/value/{digest}".encode()


_VALUE_ROW = re.compile(r"(.+)/value/([0-9a-f]+)", re.DOTALL)


def parse_value_row_key(key: bytes) -> ValueRowId:
    """The parts of a `value_row_key`."""
    match = _VALUE_ROW.fullmatch(key.decode(errors="replace"))
    if match is None:
        raise _malformed("value row", repr(key))
    return ValueRowId(*match.groups())


class ChunkId(NamedTuple):
    """The parts of a results chunk's key."""

    execution_id: str
    node_id: str
    attempt: int
    chunk: int


def chunk_key(execution_id: str, node_id: str, attempt: int, chunk: int) -> bytes:
    """The row of one chunk of a foreach node's results: `<execution>/items/<node>/<attempt>/<chunk>`."""
    return f"{execution_id}/items/{node_id}/{attempt}/{chunk}".encode()


_CHUNK = re.compile(rf"(.+)/items/({_NODE})/({_NUMBER})/({_NUMBER})", re.DOTALL)


def parse_chunk_key(key: bytes) -> ChunkId:
    """The parts of a `chunk_key`."""
    match = _CHUNK.fullmatch(key.decode(errors="replace"))
    if match is None:
        raise _malformed("results chunk", repr(key))
    execution_id, node_id, attempt, chunk = match.groups()
    return ChunkId(execution_id, node_id, int(attempt), int(chunk))


def schedule_slot_id(workflow_id: str, trigger_index: int, slot_ms: int) -> str:
    """The event id of a schedule's slot: `<workflow>/<trigger index>/<slot ms>`."""
    return f"{workflow_id}/{trigger_index}/{slot_ms}"


def record_letter_id(topic: str, partition: int, offset: int) -> str:
    """The dead letter of a record that could not be read: `<topic>:<partition>:<offset>`."""
    return f"{topic}:{partition}:{offset}"
