"""Engine and codec figures: engine steps/s for a 10-node parallel/join workflow,
and Avro round trips/s. Prints figures; never a pass/fail test.

Run: `make bench` (or `python bench/engine_bench.py`).
"""

from __future__ import annotations

import asyncio
import importlib.util
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

import yaml

from braidflow.config import Topics
from braidflow.engine import LifecycleEvent, NodeCompleted, StartExecution, TaskRequest, step
from braidflow.streams.execution_store import ExecutionStore
from braidflow.streams.outbox import Outbox
from braidflow.topology import compile_workflow

TEN_NODES = """
id: bench-ten
input: {type: object, required: [n], properties: {n: {type: integer}}}
nodes:
  - {id: fetch, type: task, params: {handler: fetch, input: {n: "${input.n}"}}}
  - {id: split, type: parallel}
  - {id: a, type: task, params: {handler: a, input: {v: "${nodes.fetch.output.v}"}}}
  - {id: b, type: task, params: {handler: b}}
  - {id: c, type: http, params: {method: POST, url: "http://127.0.0.1:9/c", body: {n: "${input.n}"}}}
  - {id: gather, type: join, params: {merge: object}}
  - {id: shape, type: transform, params: {set: {total: "${nodes.gather.output.a.v + input.n}"}}}
  - {id: check, type: decision}
  - {id: ok, type: end, params: {output: {total: "${nodes.shape.output.total}"}}}
  - {id: low, type: end, params: {output: {total: 0}}}
edges:
  - {from: fetch, to: split}
  - {from: split, to: a}
  - {from: split, to: b}
  - {from: split, to: c}
  - {from: a, to: gather}
  - {from: b, to: gather}
  - {from: c, to: gather}
  - {from: gather, to: shape}
  - {from: shape, to: check}
  - {from: check, to: ok, when: "nodes.shape.output.total > 1"}
  - {from: check, to: low, default: true}
"""


def engine_steps_per_second(executions: int = 3000) -> dict[str, float]:
    """Drive `executions` runs of the 10-node workflow through `step`, timing only `step`."""
    workflow = compile_workflow(yaml.safe_load(TEN_NODES))
    steps = 0
    spent = 0.0
    for i in range(executions):
        queue: deque[Any] = deque([StartExecution(f"s{i}", f"ex-{i}", i, workflow.id, 1, {"n": i})])
        state = None
        while queue:
            transition = queue.popleft()
            begin = time.perf_counter()
            result = step(workflow, state, transition)
            spent += time.perf_counter() - begin
            steps += 1
            state = result.state
            queue.extend(_outgoing_transitions(result.outgoing, i))
        assert state is not None and state.status == "completed", state
    return {
        "executions": executions,
        "steps_per_execution": steps / executions,
        "steps_per_s": steps / spent,
        "us_per_step": spent / steps * 1e6,
        "executions_per_s": executions / spent,
    }


def _outgoing_transitions(outgoing: Any, i: int) -> list[Any]:
    """What the bench feeds back: each task completes at once, lifecycle events are dropped."""
    fed = []
    for out in outgoing:
        if isinstance(out, TaskRequest):
            fed.append(
                NodeCompleted(
                    f"{out.idempotency_key}/c", out.execution_id, i, out.node_id, 1, {"v": 1}
                )
            )
        elif not isinstance(out, LifecycleEvent):
            fed.append(out)
    return fed


async def _store_steps(executions: int) -> dict[str, float]:
    workflow = compile_workflow(yaml.safe_load(TEN_NODES))

    async def acknowledged(topic: str, key: bytes, value: bytes, headers: Any) -> Any:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    store = ExecutionStore(
        Outbox(Topics("bench"), acknowledged), None, events_prefix="events.", max_row_bytes=10**6
    )
    table: dict[bytes, bytes] = {}
    steps = 0
    spent = 0.0
    for i in range(executions):
        queue: deque[Any] = deque([StartExecution(f"s{i}", f"ex-{i}", i, workflow.id, 1, {"n": i})])
        while queue:
            transition = queue.popleft()
            key = transition.execution_id.encode()
            execution = store.begin(key, table)
            result = step(workflow, execution.state, transition)
            # CPU time: on a shared machine wall time counts the others' work too.
            begin = time.process_time()
            execution.stage(transition, result)
            await execution.commit()
            spent += time.process_time() - begin
            await asyncio.sleep(0)  # the acknowledgements land: the outbox empties
            steps += 1
            queue.extend(_outgoing_transitions(result.outgoing, i))
    return {"us_per_step": spent / steps * 1e6, "bytes_per_row": len(table[key])}


def store_figures(executions: int = 1000) -> dict[str, float]:
    """The same workflow through `step` and the execution store (dicts as tables): the time a
    step's stage and commit take, mostly encoding the stored state and its outbox."""
    return asyncio.run(_store_steps(executions))


def codec_figures() -> dict[str, float]:
    path = Path(__file__).with_name("codec_bench.py")
    spec = importlib.util.spec_from_file_location("codec_bench", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["codec_bench"] = module
    spec.loader.exec_module(module)
    return module.run()


def main() -> None:
    engine = engine_steps_per_second()
    print("engine, 10-node workflow with parallel/join (only `step` timed)")
    print(f"  steps/execution      {engine['steps_per_execution']:.0f}")
    print(f"  engine steps/s       {engine['steps_per_s']:,.0f}   (target >= 20,000)")
    print(f"  us/step              {engine['us_per_step']:.1f}")
    print(f"  executions/s         {engine['executions_per_s']:,.0f}")
    store = store_figures()
    print("execution store, the same workflow (stage + commit of each step, CPU time)")
    print(f"  us/step              {store['us_per_step']:.1f}")
    print("avro codec (single-object encoding)")
    for name, value in codec_figures().items():
        print(f"  {name:<32} {value:,.1f}")


if __name__ == "__main__":
    main()
