"""Two workers deploying one workflow at the same instant never get the same version number:
the order of the workflows topic decides it, the same on every worker, also on one that
reads the topic later, and versions written before that keep their numbers."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from confluent_kafka import Producer
from suite_broker import SuiteBroker
from waiting import until
from workers import WorkerProcess

from braidflow.config import Settings
from braidflow.streams.topics import ensure_topics

ROUNDS = 15
PER_WORKER = 2  # deploys each worker takes at the same instant, per round


def text(workflow_id: str, tag: str) -> str:
    return f"""
id: {workflow_id}
description: "{tag}"
nodes:
  - {{id: done, type: end, params: {{output: {{tag: "{tag}"}}}}}}
edges: []
"""


def deploy_at_once(deployers: list[WorkerProcess]) -> Callable[[int, str], tuple[int, str]]:
    """A deploy of a text through the deployer of a slot, every slot released at one instant."""
    barrier = threading.Barrier(len(deployers))

    def deploy(slot: int, mine: str) -> tuple[int, str]:
        barrier.wait()
        reply = deployers[slot].api.deploy(mine)
        assert reply.status == 201, reply
        return reply.body["version"], mine

    return deploy


def definitions(worker: WorkerProcess, workflow_id: str, count: int) -> dict[int, str]:
    """Every version's text, as `worker` reads them, once it has read `count` versions."""
    until(
        lambda: (
            worker.api.get(f"/workflows/{workflow_id}").body.get("versions")
            == list(range(1, count + 1))
        ),
        f"{count} versions on {worker.name}",
    )
    return {
        n: worker.api.get(f"/workflows/{workflow_id}/versions/{n}").body["definition"]
        for n in range(1, count + 1)
    }


def test_concurrent_deploys_through_two_workers_get_distinct_numbers_all_agree_on(
    pair: list[WorkerProcess], broker: SuiteBroker, prefix: str, tmp_path: Path
) -> None:
    workflow = f"raced{uuid.uuid4().hex[:8]}"
    deployers = [w for w in pair for _ in range(PER_WORKER)]
    answered: dict[int, str] = {}
    for round_ in range(ROUNDS):
        texts = [text(workflow, f"round {round_} slot {slot}") for slot in range(len(deployers))]
        with ThreadPoolExecutor(len(deployers)) as pool:
            found = list(pool.map(deploy_at_once(deployers), range(len(deployers)), texts))
        for version, mine in found:
            assert version not in answered, (round_, version, found)
            answered[version] = mine
    count = ROUNDS * len(deployers)
    assert sorted(answered) == list(range(1, count + 1))
    # Each worker's catalog has every version with the text its deployer was answered with.
    for worker in pair:
        assert definitions(worker, workflow, count) == answered, worker.name
    # A worker that reads the whole topic afresh numbers it alike.
    with WorkerProcess(broker, prefix, tmp_path / "late" / "data", tmp_path / "late.log") as late:
        late.wait_ready()
        assert definitions(late, workflow, count) == answered


def test_versions_written_before_proposals_keep_their_numbers(
    broker: SuiteBroker, prefix: str, tmp_path: Path
) -> None:
    """A topic an older braidflow wrote (`<id>@<version>` records, one number taken twice by
    the race of old: the later record wins) reads as before, and a deploy continues it."""
    settings = Settings(kafka=broker.connection, prefix=prefix).for_dev()
    ensure_topics(settings)
    workflow = f"older{uuid.uuid4().hex[:8]}"
    producer = Producer(broker.confluent({"linger.ms": 0}))
    for version, tag in ((1, "a"), (2, "b"), (2, "c")):
        record = {"id": workflow, "version": version, "text": text(workflow, tag), "deployed_at": 1}
        producer.produce(
            settings.topics.workflows, json.dumps(record).encode(), f"{workflow}@{version}".encode()
        )
    assert producer.flush(10) == 0

    with WorkerProcess(broker, prefix, tmp_path / "data", tmp_path / "worker.log") as worker:
        worker.wait_ready()
        assert definitions(worker, workflow, 2) == {1: text(workflow, "a"), 2: text(workflow, "c")}
        versions = worker.api.get(f"/workflows/{workflow}/versions").body["versions"]
        assert [v["deployed_by"] for v in versions] == [None, None]
        # The latest text again is nothing new; another text is version 3.
        assert worker.api.deploy(text(workflow, "c")).body["version"] == 2
        reply = worker.api.deploy(text(workflow, "d"))
        assert (reply.status, reply.body["version"]) == (201, 3)
        rolled = worker.api.post_json(f"/workflows/{workflow}/rollback", {"version": 1})
        assert rolled.body == {"id": workflow, "version": 4, "restores": 1, "rolled_back_from": 3}
