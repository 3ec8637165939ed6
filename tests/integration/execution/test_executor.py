"""The executor against the embedded broker: results come back, work overlaps, nothing is lost."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from suite_broker import SuiteBroker

from braidflow.config import Settings
from braidflow.connectors.http import HttpNodeClient
from braidflow.engine.messages import NodeCompleted, NodeFailed, TaskRequest, Transition
from braidflow.schemas import encode_task
from braidflow.schemas.dead_letters import DeadLetter
from braidflow.streams.executor import Executor
from braidflow.tasks import TaskContext, TaskRegistry

WAIT_S = 30.0
NOW = 1_700_000_000_000


@pytest.fixture
def settings(broker: SuiteBroker, prefix: str) -> Settings:
    settings = Settings(
        kafka=broker.connection, prefix=prefix, partitions=2, task_concurrency=4
    ).for_dev()
    admin = AdminClient(broker.confluent())
    created = admin.create_topics([NewTopic(settings.topics.tasks, settings.partitions, 1)])
    for future in created.values():
        future.result(timeout=10)
    return settings


@pytest.fixture
async def http_client() -> AsyncIterator[HttpNodeClient]:
    client = HttpNodeClient()
    await client.start()
    yield client
    await client.stop()


class Results:
    """Everything the executor sent back, in arrival order."""

    def __init__(self) -> None:
        self.transitions: list[Transition] = []
        self.dead_letters: list[DeadLetter] = []

    async def send(
        self, transition: Transition, traceparent: str | None = None, value: bytes | None = None
    ) -> None:
        self.transitions.append(transition)

    async def dead_letter(self, dead: DeadLetter) -> None:
        self.dead_letters.append(dead)

    def for_execution(self, execution_id: str) -> list[Transition]:
        return [t for t in self.transitions if t.execution_id == execution_id]

    async def until(self, done: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + WAIT_S
        while not done():
            if time.monotonic() > deadline:
                pytest.fail(f"waited {WAIT_S}s for {what}; got {self.transitions}")
            await asyncio.sleep(0.02)


@asynccontextmanager
async def running(
    settings: Settings, registry: TaskRegistry, http: HttpNodeClient, results: Results
) -> AsyncIterator[Executor]:
    executor = Executor(settings, registry, http, results.send, results.dead_letter, lambda: NOW)
    await executor.start()
    try:
        yield executor
    finally:
        await asyncio.wait_for(executor.stop(grace_s=0.5), WAIT_S)


async def test_an_executor_tells_once_its_group_has_assigned_it_the_tasks_topic(
    settings: Settings, http_client: HttpNodeClient
) -> None:
    results = Results()
    executor = Executor(
        settings, TaskRegistry(), http_client, results.send, results.dead_letter, lambda: NOW
    )
    assert not executor.joined()
    async with running(settings, TaskRegistry(), http_client, results) as executor:
        await results.until(executor.joined, "the executor's group join")


async def test_an_executor_that_joined_its_group_runs_no_task_until_it_starts(
    settings: Settings, producer: AIOKafkaProducer, http_client: HttpNodeClient
) -> None:
    registry = TaskRegistry()

    @registry.task("echo")
    async def echo(input):
        return input

    results = Results()
    executor = Executor(settings, registry, http_client, results.send, results.dead_letter)
    try:
        await executor.join()
        await produce(producer, settings, request("joined-1"))
        await results.until(executor.joined, "the executor's group join")
        await asyncio.sleep(1.0)  # time enough to have run it, had it been taking tasks
        assert results.transitions == []
        await executor.start()
        await results.until(lambda: bool(results.for_execution("joined-1")), "the task's result")
    finally:
        await asyncio.wait_for(executor.stop(grace_s=0.5), WAIT_S)
    assert [type(t) for t in results.transitions] == [NodeCompleted]


def request(execution_id: str, handler: str | None = "echo", **fields: Any) -> TaskRequest:
    values: dict[str, Any] = {
        "execution_id": execution_id,
        "workflow_id": "wf",
        "node_id": "work",
        "kind": "task",
        "attempt": 1,
        "idempotency_key": f"{execution_id}:work:1",
        "at": NOW,
        "input": {"n": execution_id},
        "handler": handler,
    }
    return TaskRequest(**(values | fields))


async def produce(
    producer: AIOKafkaProducer, settings: Settings, task: TaskRequest, partition: int | None = None
) -> int:
    metadata = await producer.send_and_wait(
        settings.topics.tasks,
        encode_task(task),
        key=task.execution_id.encode(),
        partition=partition,
    )
    return metadata.offset


async def test_results_come_back_as_transitions_keyed_by_execution(
    settings: Settings, producer: AIOKafkaProducer, http_client: HttpNodeClient
) -> None:
    seen_keys: list[str] = []

    async def answer(request: web.Request) -> web.Response:
        seen_keys.append(request.headers["Idempotency-Key"])
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_get("/it", answer)
    registry = TaskRegistry()

    @registry.task("echo")
    async def echo(input, context: TaskContext):
        return {"input": input, "key": context.idempotency_key, "attempt": context.attempt}

    @registry.task("sync.echo")
    def sync_echo(input):
        return input

    @registry.task("explode")
    async def explode(input):
        raise ValueError("no such employee: ada")

    @registry.task("forever")
    async def forever(input):
        await asyncio.sleep(60)

    @registry.task("not_json")
    def not_json(input):
        return {"when": object()}

    results = Results()
    async with TestServer(app, host="127.0.0.1") as server:
        await produce(producer, settings, request("ok", attempt=2, idempotency_key="ok:work:2"))
        await produce(producer, settings, request("sync", "sync.echo"))
        await produce(producer, settings, request("boom", "explode"))
        await produce(producer, settings, request("lost", "nobody.home"))
        await produce(producer, settings, request("typo", "sync.ecko"))
        await produce(producer, settings, request("slow", "forever", timeout_ms=100))
        await produce(producer, settings, request("weird", "not_json"))
        http_input = {"method": "GET", "url": str(server.make_url("/it")), "expect_status": 200}
        await produce(producer, settings, request("web", None, kind="http", input=http_input))
        await producer.send_and_wait(settings.topics.tasks, b"\x00garbage", key=b"bad", partition=0)
        # After the poison record, on the same partition: the executor carries on.
        await produce(producer, settings, request("after", "sync.echo"), partition=0)
        async with running(settings, registry, http_client, results):
            await results.until(lambda: len(results.transitions) >= 9, "nine results")

    by_execution = {t.execution_id: t for t in results.transitions}
    assert by_execution["ok"] == NodeCompleted(
        id="ok:work:2/completed",
        execution_id="ok",
        at=NOW,
        node_id="work",
        attempt=2,
        output={"input": {"n": "ok"}, "key": "ok:work:2", "attempt": 2},
    )
    assert by_execution["sync"].output == {"n": "sync"}
    assert by_execution["after"].output == {"n": "after"}

    boom = by_execution["boom"]
    assert isinstance(boom, NodeFailed) and boom.id == "boom:work:1/failed"
    assert (boom.error.type, boom.error.message) == ("ValueError", "no such employee: ada")

    lost = by_execution["lost"]
    assert isinstance(lost, NodeFailed) and lost.error.type == "UnknownHandler"
    assert "'nobody.home'" in lost.error.message and "sync.echo" in lost.error.message
    assert "did you mean" not in lost.error.message
    typo = by_execution["typo"]
    assert isinstance(typo, NodeFailed) and typo.error.type == "UnknownHandler"
    assert "'sync.ecko' is registered here; did you mean 'sync.echo'?" in typo.error.message

    slow = by_execution["slow"]
    assert isinstance(slow, NodeFailed) and slow.error.type == "TimeoutError"
    assert "100ms" in slow.error.message

    weird = by_execution["weird"]
    assert isinstance(weird, NodeFailed) and weird.error.type == "InvalidOutput"

    web_result = by_execution["web"]
    assert isinstance(web_result, NodeCompleted)
    assert web_result.output["body"] == {"ok": True}
    assert seen_keys == ["web:work:1"]

    [dead] = results.dead_letters
    assert (dead.topic, dead.partition, dead.key, dead.value) == (
        settings.topics.tasks,
        0,
        b"bad",
        b"\x00garbage",
    )
    assert "single-object" in dead.reason and dead.at == NOW


async def test_tasks_run_concurrently_up_to_the_limit(
    settings: Settings, producer: AIOKafkaProducer, http_client: HttpNodeClient
) -> None:
    registry = TaskRegistry()
    running_now = 0
    most = 0

    @registry.task("echo")
    async def nap(input):
        nonlocal running_now, most
        running_now += 1
        most = max(most, running_now)
        await asyncio.sleep(0.3)
        running_now -= 1
        return input

    results = Results()
    for i in range(12):
        await produce(producer, settings, request(f"e{i}"))
    async with running(settings, registry, http_client, results):
        await results.until(lambda: len(results.transitions) >= 12, "twelve results")
    assert 1 < most <= settings.task_concurrency
    assert {t.execution_id for t in results.transitions} == {f"e{i}" for i in range(12)}


async def test_tasks_longer_than_the_poll_interval_keep_the_executor_in_its_group(
    settings: Settings, producer: AIOKafkaProducer, http_client: HttpNodeClient
) -> None:
    full = replace(settings, task_concurrency=2)
    long_s = full.rebalance_timeout_s + 1  # past max_poll_interval, with every slot taken
    runs: list[str] = []
    registry = TaskRegistry()

    @registry.task("echo")
    async def work(input, context: TaskContext):
        runs.append(context.execution_id)
        if context.execution_id.startswith("long"):
            await asyncio.sleep(long_s)
        return input

    for name in ("long0", "long1", "quick0", "quick1"):
        await produce(producer, full, request(name), partition=0)
    results = Results()
    async with running(full, registry, http_client, results):
        await results.until(lambda: len(results.transitions) >= 4, "four results")
        await asyncio.sleep(0.5)
    # Leaving the group would have handed the partition over and run the long ones again.
    assert sorted(runs) == ["long0", "long1", "quick0", "quick1"]


async def test_a_record_still_running_at_stop_is_delivered_again(
    settings: Settings, producer: AIOKafkaProducer, http_client: HttpNodeClient
) -> None:
    release = asyncio.Event()
    runs: list[str] = []
    first = TaskRegistry()

    @first.task("echo")
    async def hang_on_slow(input, context: TaskContext):
        runs.append(context.execution_id)
        if context.execution_id == "slow":
            await release.wait()  # never set: the first executor stops with it in flight
        return input

    slow_offset = await produce(producer, settings, request("slow"), partition=0)
    for i in range(3):
        await produce(producer, settings, request(f"fast{i}"), partition=0)
    await produce(producer, settings, request("other"), partition=1)

    results = Results()
    async with running(settings, first, http_client, results):
        await results.until(lambda: len(results.transitions) >= 4, "the fast results")
        assert "slow" in runs and not results.for_execution("slow")
        await asyncio.sleep(1.5)  # a periodic commit or two happen while "slow" runs

    committed = await committed_offsets(settings)
    assert committed[0] == slow_offset, "committed past a record still running"
    assert committed[1] == 1

    second = TaskRegistry()
    second.register("echo", lambda input: input)
    again = Results()
    async with running(settings, second, http_client, again):
        await again.until(lambda: bool(again.for_execution("slow")), "slow to run again")
    [completed] = again.for_execution("slow")
    assert isinstance(completed, NodeCompleted) and completed.output == {"n": "slow"}
    assert not again.for_execution("other"), "a finished record ran again"


async def committed_offsets(settings: Settings) -> dict[int, int | None]:
    """The executor group's committed offset of each tasks partition."""
    reader = AIOKafkaConsumer(**settings.kafka.aiokafka(), group_id=f"{settings.prefix}-executors")
    await reader.start()
    try:
        return {
            p: await reader.committed(TopicPartition(settings.topics.tasks, p))
            for p in range(settings.partitions)
        }
    finally:
        await reader.stop()


async def test_no_record_is_lost_when_a_second_executor_joins_mid_stream(
    settings: Settings, producer: AIOKafkaProducer, http_client: HttpNodeClient
) -> None:
    def tagged(name: str) -> TaskRegistry:
        registry = TaskRegistry()

        @registry.task("echo")
        async def nap(input):
            await asyncio.sleep(0.5)
            return name

        return registry

    expected = {f"e{i}" for i in range(40)}
    offsets = [
        await produce(producer, settings, request(f"e{i}"), partition=i % 2) for i in range(40)
    ]
    results = Results()
    async with running(settings, tagged("first"), http_client, results):
        await results.until(lambda: len(results.transitions) >= 4, "the first results")
        # Joining revokes the first executor's partitions while its tasks are in flight.
        async with running(settings, tagged("second"), http_client, results):
            await results.until(
                lambda: {t.execution_id for t in results.transitions} == expected, "every result"
            )
    assert {t.output for t in results.transitions} == {"first", "second"}
    committed = await committed_offsets(settings)
    assert committed == {0: max(offsets[0::2]) + 1, 1: max(offsets[1::2]) + 1}
