"""Avro codecs: every record survives the trip through bytes, and other readers can follow."""

from __future__ import annotations

import io
import json
import math
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import fastavro
import pytest
from fastavro.schema import load_schema, to_parsing_canonical_form

from braidflow.engine.messages import (
    CancelExecution,
    LifecycleEvent,
    NodeCompleted,
    NodeError,
    NodeFailed,
    RunNode,
    StartExecution,
    TaskRequest,
)
from braidflow.engine.state import ExecutionState, JoinState, NodeRun
from braidflow.schemas import (
    TASK_REQUEST,
    TRANSITION,
    Codec,
    CodecError,
    ConfluentFraming,
    SchemaStore,
    SingleObjectFraming,
    decode_event,
    decode_state,
    decode_task,
    decode_transition,
    encode_event,
    encode_state,
    encode_task,
    encode_transition,
    fingerprint,
)
from braidflow.schemas import store as schema_store
from braidflow.schemas.store import AVRO_DIR

FIXTURES = Path(__file__).parents[2] / "fixtures" / "avro"
T0 = 1_700_000_000_000

NESTED = {"ticket": {"id": 4711, "tags": ["vip", "é"]}, "score": 0.5, "ok": True, "none": None}

TRANSITIONS = [
    StartExecution("t1", "ex-1", T0, "triage", 3, input=NESTED, event={"type": "ticket.resolved"}),
    StartExecution("t2", "ex-1", T0, "triage", 3),
    RunNode("t3", "ex-1", T0 + 1, "decide"),
    NodeCompleted("t4", "ex-1", T0 + 2, "fetch", 1, output=NESTED),
    NodeCompleted("t5", "ex-1", T0 + 2, "fetch", 2),
    NodeFailed("t6", "ex-1", T0 + 3, "fetch", 3, NodeError("TimeoutError", "no answer in 30s")),
    NodeFailed("t7", "ex-1", T0 + 3, "fetch", 1, NodeError("http.5xx", "503", node_id="fetch")),
    CancelExecution("t8", "ex-1", T0 + 4),
    CancelExecution("t9", "ex-1", T0 + 4, reason="operator asked"),
]


def a_state() -> ExecutionState:
    nodes = {
        "fetch": NodeRun("fetch", "completed", 1, {"url": "/t/1"}, NESTED, None, T0, T0 + 5),
        "notify": NodeRun(
            "notify", "failed", 3, None, None, NodeError("E", "boom", "notify"), T0 + 6, T0 + 9
        ),
        "approve": NodeRun("approve", "running", 1, started_at=T0 + 7),
        "skip_me": NodeRun("skip_me", "skipped"),
    }
    joins = {
        "merge": JoinState("merge", taken=(2, 0), dead=(1,), fired=True),
        "all": JoinState("all", taken=(1,)),
        "empty": JoinState("empty"),
    }
    return ExecutionState(
        "ex-1",
        "triage",
        3,
        "running",
        T0,
        T0 + 9,
        input=[1, "two", None],
        event={"type": "ticket.resolved", "data": NESTED},
        output=None,
        error=NodeError("E", "boom", "notify"),
        nodes=nodes,
        joins=joins,
    )


@pytest.mark.parametrize("transition", TRANSITIONS, ids=lambda t: f"{type(t).__name__}-{t.id}")
def test_every_transition_kind_round_trips(transition):
    assert decode_transition(encode_transition(transition)) == transition


@pytest.mark.parametrize("value", [0, False, "", [], {}, "null", 2**53, -1.25])
def test_falsy_and_odd_json_values_are_not_confused_with_no_value(value):
    completed = NodeCompleted("t", "ex-1", T0, "n", 1, output=value)
    decoded = decode_transition(encode_transition(completed))
    assert decoded.output == value
    assert type(decoded.output) is type(value)


def test_task_requests_round_trip_with_and_without_optional_fields():
    full = TaskRequest(
        "ex-1", "triage", "fetch", "http", 2, "ex-1:fetch:2", T0, NESTED, None, 30_000
    )
    minimal = TaskRequest("ex-1", "triage", "work", "task", 1, "ex-1:work:1", T0, handler="h.work")
    assert decode_task(encode_task(full)) == full
    assert decode_task(encode_task(minimal)) == minimal


def test_lifecycle_events_round_trip_for_workflows_and_nodes():
    started = LifecycleEvent("e1", "workflow.started", "ex-1", "triage", 3, T0, data=NESTED)
    failed = LifecycleEvent(
        "e2", "node.failed", "ex-1", "triage", 3, T0, "fetch", 3, None, NodeError("E", "boom")
    )
    assert decode_event(encode_event(started)) == started
    assert decode_event(encode_event(failed)) == failed


def test_execution_state_round_trips_with_node_runs_and_joins_in_order():
    state = a_state()
    decoded = decode_state(encode_state(state))
    assert decoded == state
    assert list(decoded.nodes) == ["fetch", "notify", "approve", "skip_me"]
    assert list(decoded.joins) == ["merge", "all", "empty"]
    assert decoded.joins["merge"].taken == (2, 0)


def test_a_fresh_execution_state_round_trips():
    state = ExecutionState("ex-2", "triage", 1, "running", T0, T0)
    assert decode_state(encode_state(state)) == state


@pytest.mark.parametrize(
    ("name", "encoded"),
    [
        ("braidflow.Transition", encode_transition(TRANSITIONS[3])),
        ("braidflow.TaskRequest", encode_task(TaskRequest("e", "w", "n", "http", 1, "k", T0))),
        ("braidflow.ExecutionState", encode_state(a_state())),
    ],
)
def test_records_start_with_single_object_marker_and_schema_fingerprint(name, encoded):
    schema = load_schema(str(AVRO_DIR / f"{name}.avsc"))
    expected = fastavro.schema.fingerprint(to_parsing_canonical_form(schema), "CRC-64-AVRO")
    assert encoded[:2] == b"\xc3\x01"
    assert encoded[2:10] == bytes.fromhex(expected)


def test_fingerprint_matches_avro_published_test_vector():
    # Apache Avro share/test/data/schema-tests.txt: "null" -> 7195948357588979594,
    # written little-endian in the single-object header.
    assert fingerprint("null") == (7195948357588979594).to_bytes(8, "little")


def test_plain_fastavro_reads_a_transition_given_only_the_avsc_files():
    completed = TRANSITIONS[3]
    schema = load_schema(str(AVRO_DIR / "braidflow.Transition.avsc"))
    record = fastavro.schemaless_reader(
        io.BytesIO(encode_transition(completed)[10:]), schema, return_record_name=True
    )
    branch, body = record["body"]
    assert branch == "braidflow.NodeCompleted"
    assert body["node_id"] == "fetch"
    assert body["at"] == T0 + 2
    assert json.loads(body["output"]) == NESTED


def test_plain_fastavro_reads_an_execution_state_given_only_the_avsc_files():
    schema = load_schema(str(AVRO_DIR / "braidflow.ExecutionState.avsc"))
    record = fastavro.schemaless_reader(io.BytesIO(encode_state(a_state())[10:]), schema)
    assert [n["node_id"] for n in record["nodes"]] == ["fetch", "notify", "approve", "skip_me"]
    assert record["error"] == {"type": "E", "message": "boom", "node_id": "notify"}


def completed_written_by_another_writer(output: str) -> bytes:
    schema = load_schema(str(AVRO_DIR / "braidflow.Transition.avsc"))
    buffer = io.BytesIO()
    buffer.write(b"\xc3\x01" + fingerprint(schema))
    body = {"id": "t", "execution_id": "ex-1", "at": T0, "node_id": "n", "attempt": 1}
    fastavro.schemaless_writer(
        buffer, schema, {"body": ("braidflow.NodeCompleted", {**body, "output": output})}
    )
    return buffer.getvalue()


def test_json_text_with_whitespace_from_another_writer_is_read():
    decoded = decode_transition(completed_written_by_another_writer(' {"a": [1, 2]}\n'))
    assert decoded.output == {"a": [1, 2]}


def test_a_json_field_that_is_not_json_is_a_codec_error():
    with pytest.raises(CodecError, match="JSONDecodeError"):
        decode_transition(completed_written_by_another_writer("{not json"))


def old_task_request_schema() -> dict:
    return fastavro.parse_schema(
        json.loads((FIXTURES / "braidflow.TaskRequest.v0.avsc").read_text())
    )


def written_with_old_schema() -> bytes:
    old = old_task_request_schema()
    buffer = io.BytesIO()
    buffer.write(b"\xc3\x01" + fingerprint(old))
    record = {
        "execution_id": "ex-1",
        "workflow_id": "triage",
        "node_id": "fetch",
        "kind": "http",
        "attempt": 1,
        "idempotency_key": "ex-1:fetch:1",
        "at": T0,
        "input": '{"url":"/t/1"}',
        "handler": None,
    }
    fastavro.schemaless_writer(buffer, old, record)
    return buffer.getvalue()


def test_a_task_request_written_before_timeout_ms_existed_reads_with_the_default():
    store = SchemaStore.shipped()
    codec = Codec(TASK_REQUEST, SingleObjectFraming(store))
    with pytest.raises(CodecError, match="unknown writer schema"):
        codec.decode(written_with_old_schema())

    store.register(old_task_request_schema())

    assert codec.decode(written_with_old_schema()) == TaskRequest(
        "ex-1", "triage", "fetch", "http", 1, "ex-1:fetch:1", T0, {"url": "/t/1"}, None, None
    )


def test_the_shipped_store_knows_the_versions_in_the_history_directory(monkeypatch):
    monkeypatch.setattr(schema_store, "HISTORY_DIR", FIXTURES)
    codec = Codec(TASK_REQUEST, SingleObjectFraming(SchemaStore.shipped()))
    assert codec.decode(written_with_old_schema()).timeout_ms is None


def test_an_unknown_fingerprint_is_a_codec_error_naming_it():
    data = bytearray(encode_transition(TRANSITIONS[2]))
    data[2:10] = bytes(range(8))
    with pytest.raises(CodecError, match="unknown writer schema: fingerprint 0001020304050607"):
        decode_transition(bytes(data))


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "not Avro single-object encoding"),
        (b"\x00\x00\x00\x00\x01" + b"x" * 20, "not Avro single-object encoding"),
        (b'{"id": "t1"}', "not Avro single-object encoding"),
        (b"\xc3\x01\x12\x34", "truncated single-object header"),
    ],
)
def test_bytes_that_are_not_single_object_encoding_are_a_codec_error(data, reason):
    with pytest.raises(CodecError, match=reason):
        decode_transition(data)


def test_truncated_records_are_a_codec_error():
    data = encode_transition(TRANSITIONS[0])
    for end in (10, 11, len(data) // 2, len(data) - 1):
        with pytest.raises(CodecError, match="truncated"):
            decode_transition(data[:end])


def test_trailing_bytes_are_a_codec_error():
    with pytest.raises(CodecError, match="left over"):
        decode_transition(encode_transition(TRANSITIONS[2]) + b"\x00")


def test_a_record_of_another_kind_is_a_codec_error():
    task = encode_task(TaskRequest("e", "w", "n", "http", 1, "k", T0))
    with pytest.raises(CodecError, match=r"cannot read a braidflow\.TaskRequest as"):
        decode_transition(task)


def test_a_body_with_a_union_index_out_of_range_is_a_codec_error():
    data = encode_transition(TRANSITIONS[2])
    with pytest.raises(CodecError, match="cannot decode"):
        decode_transition(data[:10] + b"\x7e" + data[11:])


@pytest.mark.parametrize("output", [math.nan, {1, 2}, object()])
def test_values_that_are_not_json_cannot_be_encoded(output):
    with pytest.raises(CodecError, match="cannot encode NodeCompleted"):
        encode_transition(NodeCompleted("t", "ex-1", T0, "n", 1, output=output))


def test_a_non_transition_cannot_be_encoded_as_one():
    with pytest.raises(CodecError, match="not a transition"):
        encode_transition(TaskRequest("e", "w", "n", "http", 1, "k", T0))


class InMemoryRegistry:
    """Stands in for a Confluent schema registry: schema JSON text <-> id."""

    def __init__(self) -> None:
        self.ids: dict[str, int] = {}

    def register(self, schema_json: str) -> int:
        return self.ids.setdefault(schema_json, 100 + len(self.ids))

    def lookup(self, schema_id: int) -> str | None:
        return {i: text for text, i in self.ids.items()}.get(schema_id)


def test_confluent_framing_writes_magic_zero_and_the_registry_id():
    registry = InMemoryRegistry()
    codec = Codec(TRANSITION, ConfluentFraming(registry.register, registry.lookup))
    data = codec.encode(TRANSITIONS[0])
    assert data[:5] == b"\x00" + (100).to_bytes(4, "big")
    assert codec.decode(data) == TRANSITIONS[0]


def test_a_confluent_reader_finds_the_writer_schema_in_the_registry():
    registry = InMemoryRegistry()
    writer = Codec(TRANSITION, ConfluentFraming(registry.register, registry.lookup))
    data = writer.encode(TRANSITIONS[5])
    # A second process: only the registry connects it to the writer.
    reader = Codec(TRANSITION, ConfluentFraming(InMemoryRegistry().register, registry.lookup))
    assert reader.decode(data) == TRANSITIONS[5]


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x00\x00\x00\x00\x07\x02", "unknown writer schema: id 7"),
        (b"\xc3\x01" + bytes(10), "not Confluent wire format"),
        (b"\x00\x00", "truncated Confluent header"),
    ],
)
def test_confluent_framing_rejects_what_the_registry_cannot_explain(data, reason):
    registry = InMemoryRegistry()
    codec = Codec(TRANSITION, ConfluentFraming(registry.register, registry.lookup))
    with pytest.raises(CodecError, match=reason):
        codec.decode(data)


def test_starts_sharing_an_event_each_carry_the_event_they_name() -> None:
    # The JSON of an event is built once for consecutive starts sharing the object;
    # another event object in between is encoded afresh, and so is the first again.
    first = {"id": "e1", "type": "ticket.resolved", "data": {"n": 1}}
    second = {"id": "e2", "type": "ticket.resolved", "data": {"n": 2}}
    starts = [
        StartExecution(f"s{i}", f"ex-{i}", T0, "triage", 1, event["data"], event)
        for i, event in enumerate([first, first, second, first, second, second])
    ]
    decoded = [decode_transition(encode_transition(start)) for start in starts]
    assert decoded == starts


def test_threads_asking_at_once_for_an_old_version_each_find_it(monkeypatch):
    """The history is read at the first fingerprint not among the current schemas: a thread
    asking while another reads it finds the version too, not an unknown writer schema."""
    monkeypatch.setattr(schema_store, "HISTORY_DIR", FIXTURES)
    codec = Codec(TASK_REQUEST, SingleObjectFraming(SchemaStore.shipped()))
    with ThreadPoolExecutor(8) as threads:
        decoded = list(threads.map(lambda _: codec.decode(written_with_old_schema()), range(8)))
    assert [task.timeout_ms for task in decoded] == [None] * 8
