"""`braidflow dev` and its embedded broker: the broker dies with dev mode however it dies,
/ready means the examples are there, and another worker may join dev mode's broker.

Each test holds 127.0.0.1:9092, so that dev mode takes a free port for its broker and says
which (other programs on this machine may want 9092 too).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition
from dev_commands import EXAMPLES, READY, Command, braidflow, listening
from waiting import until
from workers import WorkerApi, wait_for_terminal

from braidflow.client_cli import ApiUnreachable
from braidflow.connectors.api import FORWARDED_HEADER
from braidflow.connectors.broker import free_port
from braidflow.topology import load_workflow

OWNER_KEY = re.compile(r"owner API key: (\S+)")
BROKER_PORT = re.compile(r"the embedded broker listens on 127\.0\.0\.1:(\d+)")
JOINED = re.compile(r"\[([-\d]+ [:,\d]+)\] \[\d+\] \[INFO\] Joined group 'braidflow' ")
MINE = """
id: fan-out
name: mine, deployed right after ready
nodes:
  - {id: done, type: end, params: {output: {mine: true}}}
edges: []
"""
BESIDE = """
id: beside
nodes:
  - {id: double, type: transform, params: {set: {n: "${input.n * 2}"}}}
  - {id: done, type: end, params: {output: {n: "${nodes.double.output.n}"}}}
edges:
  - {from: double, to: done}
"""
EXECUTIONS_BESIDE = 20


class Dev:
    """A running `braidflow dev` on free ports; its API and its broker's address."""

    def __init__(self, home: Path, *options: str) -> None:
        self.api_port = free_port()
        self.command = Command(
            braidflow(
                "dev",
                "--examples",
                str(EXAMPLES),
                "--api-port",
                str(self.api_port),
                "--demo-port",
                str(free_port()),
                *options,
            ),
            home,
        )
        self.api = WorkerApi(f"http://127.0.0.1:{self.api_port}")

    @property
    def owner_key(self) -> str:
        """The owner key the ready banner shows."""
        found = OWNER_KEY.search(self.command.stdout)
        assert found, self.command.describe()
        return found.group(1)

    @property
    def broker(self) -> str:
        found = BROKER_PORT.search(self.command.stdout)
        assert found, self.command.describe()
        return f"127.0.0.1:{found.group(1)}"


def children(pid: int) -> list[int]:
    """The processes `pid` started that run now."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def running(pid: int) -> bool:
    """Whether `pid` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


@pytest.fixture(scope="module")
def dev(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    with listening(9092):
        started = Dev(tmp_path_factory.mktemp("dev"))
        try:
            yield started
        finally:
            started.command.stop()


def test_dev_mode_answers_ready_only_once_the_examples_are_deployed(dev: Dev) -> None:
    examples = {
        load_workflow(p.read_text()).id
        for p in EXAMPLES.glob("*.yaml")
        if not p.name.endswith(".answers.yaml")
    }
    deadline = time.monotonic() + 90
    while True:
        with contextlib.suppress(ApiUnreachable):
            if dev.api.get("/ready").status == 200:
                break
        if dev.command.process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"never ready\n{dev.command.describe()}", pytrace=False)
        time.sleep(0.02)
    assert dev.api.get("/workflows").status == 401, "dev mode runs with authentication on"
    dev.api = dev.api.with_key(dev.owner_key)
    listed = {w["id"] for w in dev.api.get("/workflows").body["workflows"]}
    assert listed >= examples, dev.command.describe()
    # A deploy right after ready stays the latest: no example comes after it.
    deployed = dev.api.deploy(MINE)
    assert deployed.status == 201, deployed
    dev.command.wait_for_output(READY, 30)
    latest = dev.api.get("/workflows/fan-out").body
    assert latest["version"] == deployed.body["version"], latest


def test_a_worker_beside_dev_mode_joins_its_embedded_broker_and_takes_a_share(
    dev: Dev, tmp_path: Path
) -> None:
    """A second worker on dev mode's broker (it stopped at once with one line before) shares
    the partitions: executions started through it complete, and each worker holds some."""
    dev.command.wait_for_output(READY, 90)
    port = free_port()
    worker = Command(
        braidflow(
            "worker",
            "--broker",
            dev.broker,
            "--data-dir",
            str(tmp_path / "data"),
            "--api-port",
            str(port),
            # Dev mode's partitions: else the topics would stop it.
            "--partitions",
            "4",
            "--handlers",
            str(EXAMPLES / "handlers.py"),
        ),
        tmp_path,
    )
    beside = WorkerApi(f"http://127.0.0.1:{port}", dev.owner_key)
    apis = [dev.api.with_key(dev.owner_key), beside]
    try:

        def ready() -> bool:
            if worker.process.poll() is not None:
                pytest.fail(f"the worker beside dev mode exited\n{worker.describe()}")
            with contextlib.suppress(ApiUnreachable):
                return beside.get("/ready").status == 200
            return False

        until(ready, "the worker beside dev mode to be ready", 90)
        assert apis[0].deploy(BESIDE).status == 201
        until(lambda: beside.get("/workflows/beside").status == 200, "the deploy, beside")
        ids = {beside.start("beside", {"n": n}): n for n in range(EXECUTIONS_BESIDE)}
        finished = wait_for_terminal(beside, ids, 60, [])
        assert {e: v["output"] for e, v in finished.items()} == {
            e: {"n": 2 * n} for e, n in ids.items()
        }
        # Asked not to forward, a worker answers from its own table: both hold some. A
        # partition that moved after the group settled (a late heartbeat under load) leaves
        # the earlier holder its old rows, so an execution may be on both, never on neither.
        holders = {
            e: [
                i
                for i, api in enumerate(apis)
                if api.request("GET", f"/executions/{e}", headers={FORWARDED_HEADER: "1"}).status
                == 200
            ]
            for e in ids
        }
        assert all(holders.values()), holders
        assert {(0,), (1,)} <= {tuple(h) for h in holders.values()}, holders
    finally:
        worker.stop()


def records_of(broker: str, topic: str) -> list[Message]:
    """Every record of `topic` now, read from the beginning without a group."""
    consumer = Consumer({"bootstrap.servers": broker, "group.id": "test-reader"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        wanted = [TopicPartition(topic, p) for p in partitions]
        ends = {p.partition: consumer.get_watermark_offsets(p, timeout=10)[1] for p in wanted}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        found: list[Message] = []
        deadline = time.monotonic() + 30
        while sum(ends.values()) > len(found) and time.monotonic() < deadline:
            found += [m for m in consumer.consume(100, 0.5) if m.error() is None]
        return found
    finally:
        consumer.close()


def test_dev_mode_deploys_its_examples_while_its_worker_joins_its_group(tmp_path: Path) -> None:
    """On its fresh broker nothing is recovered, so the examples are deployed while the
    worker's group join is under way (the embedded broker holds a join for 2 s), not after."""
    with listening(9092):
        dev = Dev(tmp_path, "--loglevel", "info")
        try:
            dev.command.wait_for_output(READY, 90)
            joined = JOINED.search(dev.command.stderr)
            assert joined, dev.command.describe()
            # Logged in local time, as `datetime.timestamp` reads it.
            joined_s = datetime.strptime(joined.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            deployed = records_of(dev.broker, "braidflow.workflows")
        finally:
            dev.command.stop()
    # A record per example, the deploys begun before the worker's group answered its join:
    # they do not wait for it. (All of them within the join's 2 s held at load 13 until the
    # fifteenth example: the last came 0.09 s after it.)
    examples = [p for p in EXAMPLES.glob("*.yaml") if not p.name.endswith(".answers.yaml")]
    assert len(deployed) >= len(examples), dev.command.describe()
    sent_s = [m.timestamp()[1] / 1000 for m in deployed]
    assert min(sent_s) < joined_s, (sent_s, joined.group(0))


def test_dev_mode_killed_with_sigkill_takes_its_embedded_broker_with_it(tmp_path: Path) -> None:
    with listening(9092):
        dev = Dev(tmp_path)
        brokers: list[int] = []
        try:
            dev.command.wait_for_output(READY, 90)
            brokers = children(dev.command.process.pid)
            assert brokers, dev.command.describe()
            dev.command.process.send_signal(signal.SIGKILL)
            dev.command.process.wait(timeout=10)
            deadline = time.monotonic() + 10
            while any(map(running, brokers)) and time.monotonic() < deadline:
                time.sleep(0.05)
            assert not [pid for pid in brokers if running(pid)], f"{dev.broker} still runs"
        finally:
            dev.command.stop()
            for pid in brokers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
