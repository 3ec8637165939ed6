"""Codec throughput: Avro encode + decode of a transition and of an execution state.

Prints figures; it is not a test. `run()` returns them for a combined bench.
Each figure is the best of several short batches: noise on a shared machine
only ever makes a batch slower.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from io import BytesIO
from typing import Any

from fastavro import schemaless_reader, schemaless_writer

from braidflow.engine.messages import NodeCompleted, NodeError
from braidflow.engine.state import ExecutionState, JoinState, NodeRun
from braidflow.schemas import (
    STORE,
    STORED_EXECUTION,
    Codec,
    SingleObjectFraming,
    StoredExecution,
    current_schema,
    decode_state,
    decode_stored,
    decode_transition,
    encode_state,
    encode_stored,
    encode_stored_reusing,
    encode_transition,
)
from braidflow.schemas.records import TRANSITION

BATCH_SECONDS = 0.2
BATCHES = 9


def _node_completed() -> NodeCompleted:
    return NodeCompleted(
        id="ex-7f3a:fetch:1:completed",
        execution_id="ex-7f3a",
        at=1_700_000_000_000,
        node_id="fetch",
        attempt=1,
        output={"status": 200, "body": {"ticket": 4711, "priority": "high"}},
    )


def _ten_node_state() -> ExecutionState:
    nodes = {}
    for i in range(10):
        node_id = f"step_{i}"
        done = i < 8
        nodes[node_id] = NodeRun(
            node_id=node_id,
            status="completed" if done else ("failed" if i == 9 else "running"),
            attempt=1 if i != 9 else 3,
            input={"ticket": 4711, "step": i},
            output={"ok": True, "value": i * 10} if done else None,
            error=NodeError("TimeoutError", "no answer in 30s", node_id) if i == 9 else None,
            started_at=1_700_000_000_000 + i * 100,
            completed_at=1_700_000_000_050 + i * 100 if done else None,
        )
    joins = {
        "merge": JoinState("merge", taken=(0, 2), dead=(1,), fired=True),
        "wait_all": JoinState("wait_all", taken=(1,)),
    }
    return ExecutionState(
        execution_id="ex-7f3a",
        workflow_id="ticket-triage",
        workflow_version=3,
        status="running",
        started_at=1_700_000_000_000,
        updated_at=1_700_000_001_000,
        input={"ticket": 4711},
        event={"type": "ticket.resolved", "id": "evt-1"},
        nodes=nodes,
        joins=joins,
    )


def _best_seconds_per_call(
    call: Callable[[], Any], batches: int = BATCHES, clock: Callable[[], float] = time.perf_counter
) -> float:
    start = clock()
    call()
    batch = max(1, int(BATCH_SECONDS / max(clock() - start, 1e-6)))
    best = float("inf")
    for _ in range(batches):
        start = clock()
        for _ in range(batch):
            call()
        best = min(best, (clock() - start) / batch)
    return best


def _cpu_seconds_per_call(call: Callable[[], Any]) -> float:
    return _best_seconds_per_call(call, batches=1, clock=time.process_time)


def _measure(
    name: str, encode: Callable[[Any], bytes], decode: Callable[[bytes], Any], value: Any
) -> dict[str, float]:
    data = encode(value)
    if decode(data) != value:
        raise AssertionError(f"{name} does not round-trip")
    encode_s = _best_seconds_per_call(lambda: encode(value))
    decode_s = _best_seconds_per_call(lambda: decode(data))
    round_trip_s = _best_seconds_per_call(lambda: decode(encode(value)))
    return {
        f"{name}.round_trips_per_s": 1 / round_trip_s,
        f"{name}.round_trip_us": round_trip_s * 1e6,
        f"{name}.encode_us": encode_s * 1e6,
        f"{name}.decode_us": decode_s * 1e6,
        f"{name}.bytes": float(len(data)),
    }


def _fastavro_floor() -> dict[str, float]:
    """Bare fastavro on the same record, already an Avro dict: what our codec stands on."""
    schema = current_schema(TRANSITION.schema_name)
    record = TRANSITION.to_avro(_node_completed())

    def round_trip() -> Any:
        buffer = BytesIO()
        schemaless_writer(buffer, schema, record)
        buffer.seek(0)
        return schemaless_reader(buffer, schema, None)

    seconds = _best_seconds_per_call(round_trip)
    return {
        "fastavro_floor.round_trips_per_s": 1 / seconds,
        "fastavro_floor.round_trip_us": seconds * 1e6,
    }


def _stored_step() -> dict[str, float]:
    """The stored 10-node state written for a step that changed one run: whole (fastavro's
    codec), and reusing the bytes of the nine runs it kept from the step before's encoding
    (what the store does); and read back, by fastavro and by `decode_stored`."""
    state = _ten_node_state()
    previous = encode_stored_reusing(StoredExecution(state), None)
    done = replace(state.nodes["step_8"], status="completed", output={"ok": True, "value": 80})
    after = StoredExecution(
        replace(state, nodes={**state.nodes, "step_8": done}, updated_at=state.updated_at + 1)
    )
    if encode_stored_reusing(after, previous).data != encode_stored(after):
        raise AssertionError("the step's encoding is not fastavro's")
    # Read back, as a worker does when the execution is not kept decoded: fastavro's reader
    # (the same codec, every field through `schemaless_reader`) against `decode_stored`.
    data = encode_stored(after)
    fastavro_decode = Codec(STORED_EXECUTION, SingleObjectFraming(STORE)).decode
    if decode_stored(data) != fastavro_decode(data):
        raise AssertionError("the stored state reads other than fastavro reads it")
    # Alternated batch by batch, in CPU time: on a shared machine the speed drifts and the
    # process is preempted; the ratio of the two holds.
    whole_s = step_s = fastavro_read_s = read_s = float("inf")
    for _ in range(BATCHES):
        whole_s = min(whole_s, _cpu_seconds_per_call(lambda: encode_stored(after)))
        step_s = min(step_s, _cpu_seconds_per_call(lambda: encode_stored_reusing(after, previous)))
        fastavro_read_s = min(fastavro_read_s, _cpu_seconds_per_call(lambda: fastavro_decode(data)))
        read_s = min(read_s, _cpu_seconds_per_call(lambda: decode_stored(data)))
    return {
        "stored_step.whole_encode_us": whole_s * 1e6,
        "stored_step.reusing_encode_us": step_s * 1e6,
        "stored_step.whole_per_reusing": whole_s / step_s,
        "stored_step.fastavro_decode_us": fastavro_read_s * 1e6,
        "stored_step.decode_us": read_s * 1e6,
    }


def run() -> dict[str, float]:
    """Codec figures: round trips/s, µs per round trip, encode and decode µs, and size in bytes."""
    return {
        **_fastavro_floor(),
        **_measure("node_completed", encode_transition, decode_transition, _node_completed()),
        **_measure("state_10_nodes", encode_state, decode_state, _ten_node_state()),
        **_stored_step(),
    }


if __name__ == "__main__":
    for key, value in run().items():
        print(f"{key:34s} {value:12,.2f}")
