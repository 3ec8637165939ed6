"""A node without `retry` that fails its execution is dead-lettered, listed, counted, and redriven.

The order-chain example as a new user runs it: too few gadgets in stock fails the
`price` task, which has no retry.
"""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from waiting import until
from workers import WorkerProcess

from braidflow.client_cli import dead_letters, redrive
from braidflow.connectors.demo_services import pointed_at

ORDER_CHAIN = Path(__file__).parents[3] / "examples" / "order-chain.yaml"
WAIT_S = 30.0


def node_letters(worker: WorkerProcess) -> float:
    """`braidflow_dead_letters_total` for node dead letters of the worker's transitions."""
    metrics = worker.api.get("/metrics").body
    topic = f"{worker.prefix}.transitions"
    counted = re.search(
        rf'braidflow_dead_letters_total{{kind="node",topic="{topic}"}} (\S+)', metrics
    )
    return float(counted.group(1)) if counted else 0.0


def test_order_chain_failing_at_price_is_redriven_with_a_patched_input(
    shared_worker: WorkerProcess, demo_services: str
) -> None:
    api = shared_worker.api
    # The example as it is, under an id of this test's own on the shared worker.
    workflow = f"order-chain-{uuid.uuid4().hex[:6]}"
    definition = pointed_at(ORDER_CHAIN.read_text(), demo_services).replace(
        "id: order-chain\n", f"id: {workflow}\n", 1
    )
    assert api.deploy(definition).status == 201
    counted_before = node_letters(shared_worker)

    execution = api.start(workflow, {"sku": "gadget-7", "quantity": 5})
    failed = shared_worker.wait_until_finished([execution])[execution]
    assert failed["status"] == "failed", failed
    assert failed["error"]["node_id"] == "price"

    def letter() -> dict[str, Any] | None:
        found = api.get(f"/dead-letters?workflow={workflow}&kind=node").body["dead_letters"]
        return next((d for d in found if d["execution_id"] == execution), None)

    dead = until(letter, "the dead letter of `price`")
    assert dead["node_id"] == "price"
    assert [e["type"] for e in dead["errors"]] == ["ValueError"]
    assert dead["input"]["quantity"] == 5
    assert until(lambda: node_letters(shared_worker) >= counted_before + 1, "the metric")

    # As a user finds and redrives it: through the CLI, patched to order what is in stock.
    cli = CliRunner(env={"BRAIDFLOW_API_KEY": api.key})
    listed = cli.invoke(dead_letters, ["--workflow", workflow, "--api", api.base_url])
    assert listed.exit_code == 0, listed.output
    assert f"{dead['id']}  {workflow}/price  ValueError: only" in listed.output
    patched = {**dead["input"], "quantity": dead["input"]["available"]}
    given = ["--input", json.dumps(patched), "--api", api.base_url]
    redriving = cli.invoke(redrive, [dead["id"], *given])
    assert redriving.exit_code == 0, redriving.output
    assert redriving.output == f"redriving price of {execution}\n"

    def completed() -> dict[str, Any] | None:
        view = api.execution(execution).body
        return view if view["status"] == "completed" else None

    view = until(completed, "the redriven execution to complete")
    assert view["output"]["order_id"].startswith("ord-")
    assert view["output"]["total_cents"] == patched["quantity"] * patched["unit_price_cents"]
    [price] = [n for n in view["nodes"] if n["node_id"] == "price"]
    assert (price["status"], price["attempt"]) == ("completed", 2)
    # One failure, one dead letter, now marked redriven; the redrive that succeeded wrote none.
    found = api.get(f"/dead-letters?workflow={workflow}").body["dead_letters"]
    assert [(d["id"], d["redriven_at"] is not None) for d in found] == [(dead["id"], True)]
