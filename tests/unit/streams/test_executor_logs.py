"""The executor sends what a handler logged, one record per node run, before the result."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from braidflow.config import Settings
from braidflow.engine import NodeCompleted, NodeFailed, Transition
from braidflow.engine.messages import TaskRequest
from braidflow.node_logs import capture_handler_logging
from braidflow.schemas.dead_letters import DeadLetter
from braidflow.schemas.node_logs import NodeRunLog
from braidflow.secrets import EnvironmentSecrets
from braidflow.streams.executor import Executor
from braidflow.tasks import TaskContext, TaskRegistry

T0 = 1_795_000_000_000
TOKEN = "tok-5f1e9a0c77"
log = logging.getLogger("tests.executor_logs")


class NoHttp:
    async def call(
        self, params: Mapping[str, Any], timeout_ms: int | None, idempotency_key: str
    ) -> dict[str, Any]:
        raise AssertionError("no http node here")


class Sent:
    """Every record the executor sent, in order."""

    def __init__(self) -> None:
        self.records: list[Transition | NodeRunLog] = []
        self.traceparents: list[str | None] = []

    async def transition(
        self, transition: Transition, traceparent: str | None = None, value: bytes | None = None
    ) -> None:
        self.records.append(transition)

    async def logs(self, run_log: NodeRunLog, traceparent: str | None = None) -> None:
        self.records.append(run_log)
        self.traceparents.append(traceparent)

    async def dead_letter(self, letter: DeadLetter) -> None:
        raise AssertionError(letter)


registry = TaskRegistry()


@registry.task("talks")
async def talks(input: Any, context: TaskContext) -> dict[str, Any]:
    token = context.secrets["API_TOKEN"]
    context.log(f"calling with {token}")
    log.info("attempt %d", context.attempt)
    return {"ok": True}


@registry.task("talks.sync")
def talks_sync(input: Any, context: TaskContext) -> None:
    log.warning("from a thread")
    raise ValueError("no luck")


@registry.task("silent")
async def silent(input: Any) -> int:
    return 1


@pytest.fixture
def executor() -> Iterator[tuple[Executor, Sent]]:
    root = logging.getLogger()
    level, handlers, factory = root.level, list(root.handlers), logging.getLogRecordFactory()
    capture_handler_logging()
    sent = Sent()
    clock = iter(range(T0, T0 + 1000))
    yield (
        Executor(
            Settings(),
            registry,
            NoHttp(),
            sent.transition,
            sent.dead_letter,
            lambda: next(clock),
            secrets=EnvironmentSecrets({"BRAIDFLOW_SECRET_API_TOKEN": TOKEN}),
            send_logs=sent.logs,
        ),
        sent,
    )
    root.handlers = handlers
    root.setLevel(level)
    logging.setLogRecordFactory(factory)


TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def request(handler: str, attempt: int = 1, item: int | None = None) -> TaskRequest:
    key = f"ex:work:{attempt}" + ("" if item is None else f":{item}")
    return TaskRequest(
        "ex", "wf", "work", "task", attempt, key, T0, None, handler, item=item,
        traceparent=TRACEPARENT,
    )  # fmt: skip


async def test_a_runs_lines_go_out_before_its_result_with_secrets_taken_out(
    executor: tuple[Executor, Sent],
) -> None:
    run, sent = executor
    result, _ = await run._run(request("talks", attempt=2, item=4))
    assert isinstance(result, NodeCompleted)
    await sent.transition(result)
    run_log, completed = sent.records
    assert isinstance(run_log, NodeRunLog) and completed is result
    assert (run_log.id, run_log.execution_id, run_log.node_id) == ("ex:work:2:4", "ex", "work")
    assert (run_log.attempt, run_log.item, run_log.cut, run_log.workflow_id) == (2, 4, False, "wf")
    assert [(line.level, line.message) for line in run_log.lines] == [
        ("info", "calling with [secrets.API_TOKEN]"),
        ("info", "attempt 2"),
    ]
    assert TOKEN.encode() not in run_log.encode()
    # The record joins the execution's trace, as every record it produces does.
    assert sent.traceparents == [TRACEPARENT]


async def test_a_plain_def_handler_logs_from_its_thread(executor: tuple[Executor, Sent]) -> None:
    run, sent = executor
    result, _ = await run._run(request("talks.sync"))
    assert isinstance(result, NodeFailed)
    [run_log] = sent.records
    assert isinstance(run_log, NodeRunLog)
    assert [(line.level, line.message) for line in run_log.lines] == [("warning", "from a thread")]


async def test_a_run_that_logs_nothing_sends_no_log(executor: tuple[Executor, Sent]) -> None:
    run, sent = executor
    result, _ = await run._run(request("silent"))
    assert isinstance(result, NodeCompleted)
    assert sent.records == []
