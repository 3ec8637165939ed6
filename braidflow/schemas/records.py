"""The engine's dataclasses as Avro records (plain dicts) and back.

Written out field by field rather than derived from `dataclasses.fields`:
this runs for every record on every topic, and literal dicts are the
fastest way to build them.

Values that are arbitrary JSON travel as JSON text (Avro has no type for
"any JSON"). JSON has no tuples, so a tuple inside such a value comes back
as a list.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from json.encoder import c_make_encoder, encode_basestring  # type: ignore[attr-defined]
from typing import Any, Generic, TypeVar

from braidflow.engine.frozen import quick_init
from braidflow.engine.messages import (
    AdmissionReleased,
    AdmissionRequested,
    AdmitExecution,
    ApprovalDecided,
    AwaitEvent,
    CancelExecution,
    ChildFinished,
    EventArrived,
    ItemError,
    ItemsCollected,
    LifecycleEvent,
    NodeCompleted,
    NodeError,
    NodeFailed,
    ParentLink,
    PauseExecution,
    RedriveNode,
    ResumeExecution,
    RunNode,
    StartExecution,
    TaskRequest,
    TimerFired,
    Transition,
)
from braidflow.engine.state import (
    ControlAction,
    ExecutionState,
    ForeachProgress,
    JoinState,
    LoopProgress,
    NodeRun,
)

T = TypeVar("T")
AvroRecord = dict[str, Any]


def _json_text_writer() -> Callable[[Any], str]:
    """`JSONEncoder.encode`, its C encoder made once.

    `encode` makes its C encoder (`json.encoder.c_make_encoder`) and a dict for its check of
    values that contain themselves anew for every value: half the time of a small one, and
    every event, task and transition a step sends holds one or two. Made once here, without
    that dict (one shared by every value would be left holding entries by a failed encoding):
    a value that contains itself runs out of recursion instead, raised as the ValueError the
    check raised.
    """
    # NaN and Infinity are not JSON: other languages' parsers would reject the record.
    encoder = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    if c_make_encoder is None:
        return encoder.encode
    encode = c_make_encoder(
        None, encoder.default, encode_basestring, encoder.indent, encoder.key_separator,
        encoder.item_separator, encoder.sort_keys, encoder.skipkeys, encoder.allow_nan,
    )  # fmt: skip

    def to_json_text(value: Any) -> str:
        try:
            return "".join(encode(value, 0))
        except RecursionError:
            raise ValueError("a value nested too deeply, or containing itself") from None

    return to_json_text


_to_json_text = _json_text_writer()
# raw_decode skips json.loads' whitespace scans, most of its time on small values.
_raw_decode = json.JSONDecoder().raw_decode


@dataclass(frozen=True, slots=True)
class RecordKind(Generic[T]):
    """One kind of record on a topic: its Avro schema name and the conversions to and from it."""

    schema_name: str
    to_avro: Callable[[T], AvroRecord]
    from_avro: Callable[[AvroRecord], T]


class _LargeTexts:
    """The JSON text of recently encoded large values, by identity.

    A step copies the state but shares every value it did not change, so an
    execution holding a long list (a foreach's items, a big task output) would
    otherwise have it re-encoded on every step. Used for execution states only:
    their values come from decoded records and the engine never mutates a value
    once built (a step makes new ones), so the text of the same object stays
    right. A task handler's return value, which user code might change later,
    never goes through here. Each entry holds its object, so its id cannot be
    reused while the entry lives.
    """

    MIN_CHARS = 2048

    def __init__(self, capacity: int = 512) -> None:
        self._texts: OrderedDict[int, tuple[Any, str]] = OrderedDict()
        self._capacity = capacity

    def encode(self, value: Any) -> str:
        if type(value) not in (list, dict):
            return _to_json_text(value)
        key = id(value)
        hit = self._texts.get(key)
        if hit is not None and hit[0] is value:
            self._texts.move_to_end(key)
            return hit[1]
        text = _to_json_text(value)
        if len(text) >= self.MIN_CHARS:
            self._texts[key] = (value, text)
            if len(self._texts) > self._capacity:
                self._texts.popitem(last=False)
        return text


_large_texts = _LargeTexts()


class _LastText:
    """The JSON text of the value encoded last, by identity.

    An event that triggers ten workflows makes ten starts carrying the same
    event object, and its data as their input: the text is built once, not
    ten times. Used for starts only, whose values are built for that start or
    event and never changed afterwards. It holds the value, so its id cannot be
    reused while it is remembered.
    """

    def __init__(self) -> None:
        self._value: Any = None
        self._text: str | None = None

    def encode(self, value: Any) -> str | None:
        if value is None:
            return None
        if value is not self._value:
            self._value, self._text = value, _to_json_text(value)
        return self._text


_start_inputs = _LastText()
_start_events = _LastText()


def _json(value: Any) -> str | None:
    return None if value is None else _to_json_text(value)


@dataclass(frozen=True, slots=True)
class ValueRow:
    """In a stored execution state, a large value kept in a row of its own under `key`.

    Written in the value's JSON text field as `@row:<key>`: no JSON text starts
    with `@`, so the mark can never be a user's value. Only the runtime's store
    puts them in (`streams/value_rows.py`); the engine never sees one.
    """

    key: str


_ROW_MARK = "@row:"


def state_value_text(value: Any) -> str:
    """The JSON text of a value of an execution state.

    Not kept for reuse: a value given a row of its own is encoded once, and a
    large text kept for a value that no longer needs it would only take memory.
    """
    return _to_json_text(value)


def state_value_of(text: str) -> Any:
    """A value of an execution state from its JSON text."""
    return _unjson(text)


def _state_json(value: Any) -> str | None:
    """`_json` for values of an execution state, reusing the text of large ones."""
    if value is None:
        return None
    if type(value) is ValueRow:
        return _ROW_MARK + value.key
    return _large_texts.encode(value)


def _unstate_json(text: str | None) -> Any:
    if text is not None and text.startswith(_ROW_MARK):
        return ValueRow(text[len(_ROW_MARK) :])
    return _unjson(text)


def _unjson(text: str | None) -> Any:
    if text is None:
        return None
    try:
        value, end = _raw_decode(text)
        if end == len(text):
            return value
    except json.JSONDecodeError:
        pass
    # Whitespace around the value (valid JSON, though our writer emits none) or
    # not JSON at all: the full parser accepts the one and reports the other.
    return json.loads(text)


def _error(error: NodeError | None) -> AvroRecord | None:
    if error is None:
        return None
    return {"type": error.type, "message": error.message, "node_id": error.node_id}


def _unerror(record: AvroRecord | None) -> NodeError | None:
    if record is None:
        return None
    return NodeError(record["type"], record["message"], record["node_id"])


def _unerrors(records: list[AvroRecord]) -> tuple[NodeError, ...]:
    return tuple(NodeError(r["type"], r["message"], r["node_id"]) for r in records)


def _parent_link(p: ParentLink | None) -> AvroRecord | None:
    if p is None:
        return None
    return {
        "execution_id": p.execution_id,
        "workflow_id": p.workflow_id,
        "node_id": p.node_id,
        "depth": p.depth,
        "context": _json(p.context),
        "item": p.item,
    }


def _unparent_link(r: AvroRecord | None) -> ParentLink | None:
    if r is None:
        return None
    return ParentLink(
        r["execution_id"],
        r["workflow_id"],
        r["node_id"],
        r["depth"],
        _unjson(r["context"]),
        r["item"],
    )


def _start_execution(t: StartExecution) -> AvroRecord:
    return {
        "id": t.id,
        "execution_id": t.execution_id,
        "at": t.at,
        "workflow_id": t.workflow_id,
        "workflow_version": t.workflow_version,
        "input": _start_inputs.encode(t.input),
        "event": _start_events.encode(t.event),
        "parent": _parent_link(t.parent),
        "dept": _json(t.dept),
        "tenant": t.tenant,
        "traceparent": t.traceparent,
    }


def _run_node(t: RunNode) -> AvroRecord:
    return {"id": t.id, "execution_id": t.execution_id, "at": t.at, "node_id": t.node_id}


def _node_completed(t: NodeCompleted) -> AvroRecord:
    return {
        "id": t.id,
        "execution_id": t.execution_id,
        "at": t.at,
        "node_id": t.node_id,
        "attempt": t.attempt,
        "output": _json(t.output),
        "item": t.item,
    }


def _node_failed(t: NodeFailed) -> AvroRecord:
    return {
        "id": t.id,
        "execution_id": t.execution_id,
        "at": t.at,
        "node_id": t.node_id,
        "attempt": t.attempt,
        "error": _error(t.error),
        "item": t.item,
    }


def _cancel_execution(t: CancelExecution) -> AvroRecord:
    return {"id": t.id, "execution_id": t.execution_id, "at": t.at, "reason": t.reason, "by": t.by}


def _event_arrived(t: EventArrived) -> AvroRecord:
    return {
        "id": t.id,
        "execution_id": t.execution_id,
        "at": t.at,
        "node_id": t.node_id,
        "event": _json(t.event),
    }


def _timer_fired(t: TimerFired) -> AvroRecord:
    return {"id": t.id, "execution_id": t.execution_id, "at": t.at, "timer_id": t.timer_id}


def _approval_decided(t: ApprovalDecided) -> AvroRecord:
    return {
        "id": t.id,
        "execution_id": t.execution_id,
        "at": t.at,
        "node_id": t.node_id,
        "decision_id": t.decision_id,
        "choice": t.choice,
        "by": t.by,
        "comment": t.comment,
        "data": _json(t.data),
    }


def _child_finished(t: ChildFinished) -> AvroRecord:
    return {
        "id": t.id,
        "execution_id": t.execution_id,
        "at": t.at,
        "node_id": t.node_id,
        "child_execution_id": t.child_execution_id,
        "status": t.status,
        "output": _json(t.output),
        "error": _error(t.error),
        "item": t.item,
    }


def _item_error(e: ItemError) -> AvroRecord:
    return {"index": e.index, "type": e.type, "message": e.message}


def _unitem_error(r: AvroRecord) -> ItemError:
    return ItemError(r["index"], r["type"], r["message"])


def _items_collected(t: ItemsCollected) -> AvroRecord:
    return {
        "id": t.id,
        "execution_id": t.execution_id,
        "at": t.at,
        "node_id": t.node_id,
        "attempt": t.attempt,
        "results": _to_json_text(list(t.results)),
        "errors": [_item_error(e) for e in t.errors],
        "error": _error(t.error),
    }


def _pause_execution(t: PauseExecution) -> AvroRecord:
    return {"id": t.id, "execution_id": t.execution_id, "at": t.at, "by": t.by, "reason": t.reason}


def _resume_execution(t: ResumeExecution) -> AvroRecord:
    return {"id": t.id, "execution_id": t.execution_id, "at": t.at, "by": t.by, "reason": t.reason}


def _redrive_node(t: RedriveNode) -> AvroRecord:
    return {
        "id": t.id,
        "execution_id": t.execution_id,
        "at": t.at,
        "node_id": t.node_id,
        "by": t.by,
        "input": _json(t.input),
    }


def _admit_execution(t: AdmitExecution) -> AvroRecord:
    return {"id": t.id, "execution_id": t.execution_id, "at": t.at}


# Union branch name and conversion by type: fastavro's tuple notation names
# the branch, which spares it trying each branch against the value.
_TRANSITION_BODIES: dict[type, tuple[str, Callable[[Any], AvroRecord]]] = {
    StartExecution: ("braidflow.StartExecution", _start_execution),
    RunNode: ("braidflow.RunNode", _run_node),
    NodeCompleted: ("braidflow.NodeCompleted", _node_completed),
    NodeFailed: ("braidflow.NodeFailed", _node_failed),
    CancelExecution: ("braidflow.CancelExecution", _cancel_execution),
    EventArrived: ("braidflow.EventArrived", _event_arrived),
    TimerFired: ("braidflow.TimerFired", _timer_fired),
    ApprovalDecided: ("braidflow.ApprovalDecided", _approval_decided),
    ChildFinished: ("braidflow.ChildFinished", _child_finished),
    PauseExecution: ("braidflow.PauseExecution", _pause_execution),
    ResumeExecution: ("braidflow.ResumeExecution", _resume_execution),
    RedriveNode: ("braidflow.RedriveNode", _redrive_node),
    ItemsCollected: ("braidflow.ItemsCollected", _items_collected),
    AdmitExecution: ("braidflow.AdmitExecution", _admit_execution),
}

_TRANSITION_FROM_BODIES: dict[str, Callable[[AvroRecord], Transition]] = {
    "braidflow.StartExecution": lambda r: StartExecution(
        r["id"],
        r["execution_id"],
        r["at"],
        r["workflow_id"],
        r["workflow_version"],
        _unjson(r["input"]),
        _unjson(r["event"]),
        _unparent_link(r["parent"]),
        _unjson(r["dept"]),
        r["tenant"],
        traceparent=r["traceparent"],
    ),
    "braidflow.RunNode": lambda r: RunNode(r["id"], r["execution_id"], r["at"], r["node_id"]),
    "braidflow.NodeCompleted": lambda r: NodeCompleted(
        r["id"],
        r["execution_id"],
        r["at"],
        r["node_id"],
        r["attempt"],
        _unjson(r["output"]),
        r["item"],
    ),
    "braidflow.NodeFailed": lambda r: NodeFailed(
        r["id"],
        r["execution_id"],
        r["at"],
        r["node_id"],
        r["attempt"],
        _unerror(r["error"]),
        r["item"],
    ),
    "braidflow.CancelExecution": lambda r: CancelExecution(
        r["id"], r["execution_id"], r["at"], r["reason"], r["by"]
    ),
    "braidflow.EventArrived": lambda r: EventArrived(
        r["id"], r["execution_id"], r["at"], r["node_id"], _unjson(r["event"])
    ),
    "braidflow.TimerFired": lambda r: TimerFired(
        r["id"], r["execution_id"], r["at"], r["timer_id"]
    ),
    "braidflow.ApprovalDecided": lambda r: ApprovalDecided(
        r["id"],
        r["execution_id"],
        r["at"],
        r["node_id"],
        r["decision_id"],
        r["choice"],
        r["by"],
        r["comment"],
        _unjson(r["data"]),
    ),
    "braidflow.ChildFinished": lambda r: ChildFinished(
        r["id"],
        r["execution_id"],
        r["at"],
        r["node_id"],
        r["child_execution_id"],
        r["status"],
        _unjson(r["output"]),
        _unerror(r["error"]),
        r["item"],
    ),
    "braidflow.PauseExecution": lambda r: PauseExecution(
        r["id"], r["execution_id"], r["at"], r["by"], r["reason"]
    ),
    "braidflow.ResumeExecution": lambda r: ResumeExecution(
        r["id"], r["execution_id"], r["at"], r["by"], r["reason"]
    ),
    "braidflow.RedriveNode": lambda r: RedriveNode(
        r["id"], r["execution_id"], r["at"], r["node_id"], r["by"], _unjson(r["input"])
    ),
    "braidflow.ItemsCollected": lambda r: ItemsCollected(
        r["id"],
        r["execution_id"],
        r["at"],
        r["node_id"],
        r["attempt"],
        tuple(_unjson(r["results"])),
        tuple(map(_unitem_error, r["errors"])),
        _unerror(r["error"]),
    ),
    "braidflow.AdmitExecution": lambda r: AdmitExecution(r["id"], r["execution_id"], r["at"]),
}


def _transition(t: Transition) -> AvroRecord:
    try:
        name, body = _TRANSITION_BODIES[type(t)]
    except KeyError:
        raise TypeError(f"not a transition: {type(t).__name__}") from None
    return {"body": (name, body(t))}


def _untransition(record: AvroRecord) -> Transition:
    name, body = record["body"]
    return _TRANSITION_FROM_BODIES[name](body)


def _task_request(t: TaskRequest) -> AvroRecord:
    return {
        "execution_id": t.execution_id,
        "workflow_id": t.workflow_id,
        "node_id": t.node_id,
        "kind": t.kind,
        "attempt": t.attempt,
        "idempotency_key": t.idempotency_key,
        "at": t.at,
        "input": _json(t.input),
        "handler": t.handler,
        "timeout_ms": t.timeout_ms,
        "item": t.item,
        "tenant": t.tenant,
        "department": t.department,
        "traceparent": t.traceparent,
    }


def _untask_request(r: AvroRecord) -> TaskRequest:
    return TaskRequest(
        r["execution_id"],
        r["workflow_id"],
        r["node_id"],
        r["kind"],
        r["attempt"],
        r["idempotency_key"],
        r["at"],
        _unjson(r["input"]),
        r["handler"],
        r["timeout_ms"],
        r["item"],
        r["tenant"],
        r["department"],
        r["traceparent"],
    )


def _lifecycle_event(e: LifecycleEvent) -> AvroRecord:
    return {
        "id": e.id,
        "type": e.type,
        "execution_id": e.execution_id,
        "workflow_id": e.workflow_id,
        "workflow_version": e.workflow_version,
        "at": e.at,
        "node_id": e.node_id,
        "attempt": e.attempt,
        "data": _json(e.data),
        "error": _error(e.error),
        "tenant": e.tenant,
        "started_at": e.started_at,
    }


def _unlifecycle_event(r: AvroRecord) -> LifecycleEvent:
    return LifecycleEvent(
        r["id"],
        r["type"],
        r["execution_id"],
        r["workflow_id"],
        r["workflow_version"],
        r["at"],
        r["node_id"],
        r["attempt"],
        _unjson(r["data"]),
        _unerror(r["error"]),
        r["tenant"],
        r["started_at"],
    )


def _node_run(n: NodeRun) -> AvroRecord:
    return {
        "node_id": n.node_id,
        "status": n.status,
        "attempt": n.attempt,
        "input": _state_json(n.input),
        "output": _state_json(n.output),
        "error": _error(n.error),
        "started_at": n.started_at,
        "completed_at": n.completed_at,
        "errors": [_error(e) for e in n.errors],
    }


def _unnode_run(r: AvroRecord) -> NodeRun:
    return NodeRun(
        r["node_id"],
        r["status"],
        r["attempt"],
        _unstate_json(r["input"]),
        _unstate_json(r["output"]),
        _unerror(r["error"]),
        r["started_at"],
        r["completed_at"],
        _unerrors(r["errors"]),
    )


def _join_state(j: JoinState) -> AvroRecord:
    return {"node_id": j.node_id, "taken": j.taken, "dead": j.dead, "fired": j.fired}


def _unjoin_state(r: AvroRecord) -> JoinState:
    return JoinState(r["node_id"], tuple(r["taken"]), tuple(r["dead"]), r["fired"])


def _execution_state(s: ExecutionState) -> AvroRecord:
    record = _execution_state_but_nodes(s)
    # The maps are keyed by node id, which each value also holds: an array
    # keeps the order and stores the id once.
    record["nodes"] = [_node_run(n) for n in s.nodes.values()]
    return record


def _execution_state_but_nodes(s: ExecutionState) -> AvroRecord:
    return {
        "execution_id": s.execution_id,
        "workflow_id": s.workflow_id,
        "workflow_version": s.workflow_version,
        "status": s.status,
        "started_at": s.started_at,
        "updated_at": s.updated_at,
        "input": _state_json(s.input),
        "event": _state_json(s.event),
        "output": _state_json(s.output),
        "error": _error(s.error),
        "completed_at": s.completed_at,
        "joins": [_join_state(j) for j in s.joins.values()],
        "timers": s.timers,
        "paused": s.paused,
        "held": [_transition(t) for t in s.held],
        "parent": _parent_link(s.parent),
        "children": s.children,
        "control": [
            {"action": c.action, "by": c.by, "at": c.at, "node_id": c.node_id, "reason": c.reason}
            for c in s.control
        ],
        "foreach": [_foreach_progress(f) for f in s.foreach.values()],
        "loops": [{"node_id": p.node_id, "passes": p.passes} for p in s.loops.values()],
        "dept": _json(s.dept),
        "tenant": s.tenant,
        "admission": s.admission,
        "traceparent": s.traceparent,
    }


def _foreach_progress(f: ForeachProgress) -> AvroRecord:
    return {
        "node_id": f.node_id,
        "attempt": f.attempt,
        "total": f.total,
        "next": f.next,
        "running": list(f.running),
        "pending": [{"index": i, "output": _json(output)} for i, output in f.pending],
        "failures": [_item_error(e) for e in f.failures],
        "chunks": f.chunks,
        "failed": f.failed,
    }


def _unforeach_progress(r: AvroRecord) -> ForeachProgress:
    return ForeachProgress(
        r["node_id"],
        r["attempt"],
        r["total"],
        r["next"],
        tuple(r["running"]),
        tuple((p["index"], _unjson(p["output"])) for p in r["pending"]),
        tuple(map(_unitem_error, r["failures"])),
        r["chunks"],
        r["failed"],
    )


def _unexecution_state(r: AvroRecord) -> ExecutionState:
    nodes = map(_unnode_run, r["nodes"])
    joins = map(_unjoin_state, r["joins"])
    return ExecutionState(
        r["execution_id"],
        r["workflow_id"],
        r["workflow_version"],
        r["status"],
        r["started_at"],
        r["updated_at"],
        _unstate_json(r["input"]),
        _unjson(r["event"]),
        _unstate_json(r["output"]),
        _unerror(r["error"]),
        r["completed_at"],
        {n.node_id: n for n in nodes},
        {j.node_id: j for j in joins},
        r["timers"],
        r["paused"],
        tuple(map(_untransition, r["held"])),
        _unparent_link(r["parent"]),
        r["children"],
        tuple(
            ControlAction(c["action"], c["by"], c["at"], c["node_id"], c["reason"])
            for c in r["control"]
        ),
        {f.node_id: f for f in map(_unforeach_progress, r["foreach"])},
        {p["node_id"]: LoopProgress(p["node_id"], p["passes"]) for p in r["loops"]},
        _unjson(r["dept"]),
        r["tenant"],
        r["admission"],
        r["traceparent"],
    )


TRANSITION: RecordKind[Transition] = RecordKind("braidflow.Transition", _transition, _untransition)
TASK_REQUEST: RecordKind[TaskRequest] = RecordKind(
    "braidflow.TaskRequest", _task_request, _untask_request
)
LIFECYCLE_EVENT: RecordKind[LifecycleEvent] = RecordKind(
    "braidflow.LifecycleEvent", _lifecycle_event, _unlifecycle_event
)
EXECUTION_STATE: RecordKind[ExecutionState] = RecordKind(
    "braidflow.ExecutionState", _execution_state, _unexecution_state
)
NODE_RUN: RecordKind[NodeRun] = RecordKind("braidflow.NodeRun", _node_run, _unnode_run)


def _await_event(a: AwaitEvent) -> AvroRecord:
    return {
        "id": a.id,
        "execution_id": a.execution_id,
        "workflow_id": a.workflow_id,
        "workflow_version": a.workflow_version,
        "node_id": a.node_id,
        "event_type": a.event_type,
        "at": a.at,
        "expires_at": a.expires_at,
        "context": _json(a.context),
        "tenant": a.tenant,
        "traceparent": a.traceparent,
    }


def _unawait_event(r: AvroRecord) -> AwaitEvent:
    return AwaitEvent(
        r["id"],
        r["execution_id"],
        r["workflow_id"],
        r["workflow_version"],
        r["node_id"],
        r["event_type"],
        r["at"],
        r["expires_at"],
        _unjson(r["context"]),
        r["tenant"],
        # A waits row (JSON of these dicts) kept from before traces reached waits has none.
        r.get("traceparent"),
    )


AWAIT_EVENT: RecordKind[AwaitEvent] = RecordKind(
    "braidflow.AwaitEvent", _await_event, _unawait_event
)

Admission = AdmissionRequested | AdmissionReleased
"""A record of the admissions topic: a request for a slot under a department's cap, or a release."""

_ADMISSION_BRANCHES = {
    AdmissionRequested: "braidflow.AdmissionRequested",
    AdmissionReleased: "braidflow.AdmissionReleased",
}


def _admission(a: Admission) -> AvroRecord:
    body: dict[str, Any] = {"id": a.id, "execution_id": a.execution_id, "at": a.at, "key": a.key}
    if isinstance(a, AdmissionRequested):
        body["traceparent"] = a.traceparent
    else:
        body["spent"] = a.spent
    return {"body": (_ADMISSION_BRANCHES[type(a)], body)}


def _unadmission(record: AvroRecord) -> Admission:
    name, r = record["body"]
    if name == "braidflow.AdmissionRequested":
        return AdmissionRequested(r["id"], r["execution_id"], r["at"], r["key"], r["traceparent"])
    return AdmissionReleased(r["id"], r["execution_id"], r["at"], r["key"], r["spent"])


ADMISSION: RecordKind[Admission] = RecordKind("braidflow.Admission", _admission, _unadmission)


@quick_init
@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A record a step emitted, kept until the broker has acknowledged it.

    `topic` and `key` are set only when the kind does not imply them (a published
    domain event's topic; a wait registration's key, the event type).
    """

    kind: str
    id: str
    value: bytes
    topic: str | None = None
    key: bytes | None = None
    # The record's `traceparent` header: the span of the node run or execution that sent it.
    traceparent: str | None = None


@quick_init
@dataclass(frozen=True, slots=True)
class StoredExecution:
    """What the executions table holds: the engine state and its unacknowledged outbox."""

    state: ExecutionState
    outbox: tuple[OutboxEntry, ...] = ()


def _stored_execution(s: StoredExecution) -> AvroRecord:
    return {"state": _execution_state(s.state), "outbox": _outbox(s.outbox)}


def _outbox(entries: tuple[OutboxEntry, ...]) -> list[AvroRecord]:
    return [
        {
            "kind": e.kind,
            "id": e.id,
            "value": e.value,
            "topic": e.topic,
            "key": e.key,
            "traceparent": e.traceparent,
        }
        for e in entries
    ]


def execution_state_but_nodes(s: ExecutionState) -> AvroRecord:
    """The fields of an execution state but `nodes`, as one flat record.

    For `stored_encoding`, which writes the node runs and the outbox apart: the
    state's fields are written by two schemas cut from StoredExecution's.
    """
    return _execution_state_but_nodes(s)


def _unstored_execution(r: AvroRecord) -> StoredExecution:
    return StoredExecution(
        _unexecution_state(r["state"]),
        tuple(
            OutboxEntry(e["kind"], e["id"], e["value"], e["topic"], e["key"], e["traceparent"])
            for e in r["outbox"]
        ),
    )


STORED_EXECUTION: RecordKind[StoredExecution] = RecordKind(
    "braidflow.StoredExecution", _stored_execution, _unstored_execution
)
