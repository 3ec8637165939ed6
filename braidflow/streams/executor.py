"""The executor: runs work nodes (task, http, and kinds added) from the tasks topic, losing none.

Not a faust agent: an agent with concurrency > 1 can commit an offset past a
record still in flight (faust issue #606), and a crash then loses it. Here an
aiokafka consumer with manual commits feeds up to `task_concurrency` tasks at
a time, and commits each partition only up to its first record whose result
is not yet delivered (`Commits`). A worker killed at any moment
therefore leaves every unfinished record to be read again: at least once, and
the engine ignores a result it has already seen.

Each result goes back as a `NodeCompleted` or `NodeFailed` transition through
the injected `send`; a record counts as done only once `send` has returned.
A failing `send` is retried with backoff for as long as the executor runs:
the task keeps its slot, and its offset is not committed.

Secrets (docs/secrets.md) are looked up here and nowhere else: an http node's
`${secrets.NAME}` references are resolved right before the request, a handler
reads `context.secrets`, and what the call produces (output, error message) has
every value it looked up taken out before it becomes a transition.

A request this worker's orchestrator sends to a tasks partition this executor owns is handed
over as it is sent (`run_here`) and runs at once, without waiting to read it from the topic
(docs/concepts.md, "Tasks run where they are orchestrated"). The record is still sent: read
back, it finds its run here (`TaskRuns`) and counts as done once that run's result is
delivered, so a crash at any point leaves it to be read and run again, as any other record.

What a handler logs (`context.log`, the standard `logging`: `braidflow.node_logs`) is kept
for its node run, redacted the same way, and sent through `send_logs` as one record on the
logs topic before the result: once an execution has ended, every line of its runs is on
the topic. A run that logged nothing sends nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, Protocol, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from braidflow.config import Settings
from braidflow.custom_kinds import CustomKind
from braidflow.engine import ids
from braidflow.engine.messages import NodeCompleted, NodeError, NodeFailed, TaskRequest, Transition
from braidflow.engine.state import NodeStatus
from braidflow.metrics import TASK_DURATION, TASKS_HANDED_OVER, TASKS_RUN
from braidflow.node_logs import NodeLog, capture_handler_logging, capturing
from braidflow.schemas import CodecError, decode_task, encode_transition
from braidflow.schemas.dead_letters import DeadLetter
from braidflow.schemas.node_logs import NodeRunLog
from braidflow.secrets import (
    AllowedSecrets,
    SecretError,
    SecretScope,
    SecretsProvider,
    TaskSecrets,
    every_secret,
    provider_for,
)
from braidflow.streams.committing import Commits
from braidflow.streams.group_errors import FATAL_GROUP_ERRORS
from braidflow.streams.offsets import PartitionOffsets
from braidflow.streams.partitioner import KeyPartitioner
from braidflow.streams.publisher import epoch_ms
from braidflow.streams.task_runs import TaskRuns
from braidflow.streams.trace_scope import node_run_context
from braidflow.tasks import NodeFailure, TaskContext, TaskRegistry
from braidflow.topology.secret_references import resolve_references
from braidflow.topology.suggestions import did_you_mean

log = logging.getLogger(__name__)

DEFAULT_TASK_TIMEOUT_MS = 5 * 60 * 1000
"""Time a `task` node may run when its definition sets no `timeout`. A sync handler that
overruns is abandoned, not stopped: Python cannot kill its thread."""

STOP_GRACE_S = 10.0
"""How long `stop` waits for tasks in flight before abandoning them (they run again elsewhere)."""

_POLL_TIMEOUT_MS = 1_000
_RETRY_FIRST_S = 0.1
_RETRY_MAX_S = 5.0
# How much of an error message too large to send is kept.
_ERROR_SHOWN = 4096
_NAMES_SHOWN = 20
# A metric's series is found by its labels (a tuple of their strings, a dict) at every call:
# once per kind and outcome here, as there are only a few.
_duration_of = functools.cache(TASK_DURATION.labels)
_runs_of = functools.cache(TASKS_RUN.labels)
# json.dumps with an option set builds an encoder at every call.
_as_json = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode

T = TypeVar("T")


class Send(Protocol):
    """Delivers a task's result (keyed by execution id) with its `traceparent` header;
    `value`: the result's encoding, when the caller has it already."""

    async def __call__(
        self, transition: Transition, traceparent: str | None = None, value: bytes | None = None
    ) -> None: ...


SendDeadLetter = Callable[[DeadLetter], Awaitable[None]]


class SendLogs(Protocol):
    """Delivers what a node run logged (keyed by execution id) with its `traceparent` header."""

    async def __call__(self, run_log: NodeRunLog, traceparent: str | None = None) -> None: ...


class HttpNodeCaller(Protocol):
    """What makes an `http` node's request: `connectors.http.HttpNodeClient` in a worker,
    given by the runtime, so the streams import no connector."""

    async def call(
        self,
        params: Mapping[str, Any],
        timeout_ms: int | None,
        idempotency_key: str,
        traceparent: str | None = None,
    ) -> dict[str, Any]:
        """The node's output; NodeFailure when the request does not succeed."""
        ...


class WorkRun(Protocol):
    """How an executor performs one work node kind: the node's output for the request, or
    NodeFailure (any other exception fails the node too, with its type and message). The
    secrets the run may read come through `secrets` (resolved at the moment of use, taken
    out of the output afterwards); what it logs goes to `node_log`."""

    async def __call__(
        self, request: TaskRequest, secrets: SecretScope, node_log: NodeLog
    ) -> Any: ...


class Executor:
    """Consumes the tasks topic in the group `{prefix}-executors` and runs what it reads.

    `http_client` must be started by the caller; `send` delivers a transition (keyed by
    execution id) and returns once the broker has it; `dead_letter` does the same for
    records that cannot be decoded. `secrets` gives the values of secrets (default: the
    environment, then `settings.secrets_dir`); `allowed_secrets` limits the ones a
    workflow of a department may use (the department's `credentials`); `send_logs`
    delivers what a handler logged (None: it is not kept). `task` and `http` nodes run
    here; `kinds` adds the other work kinds this worker runs, by name.
    """

    def __init__(
        self,
        settings: Settings,
        registry: TaskRegistry,
        http_client: HttpNodeCaller,
        send: Send,
        dead_letter: SendDeadLetter,
        clock: Callable[[], int] = epoch_ms,
        *,
        secrets: SecretsProvider | None = None,
        allowed_secrets: AllowedSecrets = every_secret,
        send_logs: SendLogs | None = None,
        kinds: Mapping[str, WorkRun] | None = None,
    ) -> None:
        self._settings = settings
        self._secrets = secrets if secrets is not None else provider_for(settings.secrets_dir)
        self._allowed_secrets = allowed_secrets
        self.group_id = f"{settings.prefix}-executors"
        self._topic = settings.topics.tasks
        self._registry = registry
        self._http = http_client
        self._send = send
        self._dead_letter = dead_letter
        self._send_logs = send_logs
        self._kinds: dict[str, WorkRun] = {
            "task": self._run_handler,
            "http": self._call_http,
            **(kinds or {}),
        }
        self._clock = clock
        self._commits = Commits(self.group_id)
        self._running: set[asyncio.Task[None]] = set()
        self._runs = TaskRuns()
        self._partitioner = KeyPartitioner()
        self._slot_freed = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._loops: list[asyncio.Task[None]] = []
        self._draining = False

    async def join(self) -> None:
        """Join the executor group, without taking tasks yet: `start` takes them.

        Dev mode's worker joins while the worker joins its own group (a fresh broker leaves
        it nothing to recover); every other worker joins in `start`, once it has recovered.
        """
        if self._consumer is not None:
            return
        settings = self._settings
        consumer = AIOKafkaConsumer(
            **settings.aiokafka_group(
                f"{settings.prefix}-executor", self.group_id, settings.fetch_max_wait_ms
            )
        )
        await consumer.start()
        self._commits.follow(consumer, [self._topic])
        self._consumer = consumer

    async def start(self) -> None:
        """Join the executor group (unless `join` did) and start running tasks."""
        await self.join()
        assert self._consumer is not None
        capture_handler_logging()
        self._draining = False
        keepalive_s = self._settings.rebalance_timeout_s / 3  # well inside max_poll_interval
        self._loops = [asyncio.create_task(self._poll(self._consumer, keepalive_s))]

    def joined(self) -> bool:
        """Whether this executor is assigned partitions of the tasks topic: its group joined."""
        return self._consumer is not None and bool(self._consumer.assignment())

    async def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Stop taking tasks, give those in flight `grace_s` to finish, commit what is done, leave."""
        consumer = self._consumer
        if consumer is None:
            return
        # Draining, the loops keep polling and committing: the group must not drop
        # this member while its last tasks finish, or their commits would be refused.
        self._draining = True
        self._slot_freed.set()
        if self._running:
            _, unfinished = await asyncio.wait(list(self._running), timeout=grace_s)
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
            if unfinished:
                log.warning(
                    "stopped with %d tasks unfinished; they will run again", len(unfinished)
                )
        for loop in self._loops:
            loop.cancel()
        await asyncio.gather(*self._loops, return_exceptions=True)
        self._loops = []
        await self._commits.stop()
        await consumer.stop()
        self._consumer = None

    async def _poll(self, consumer: AIOKafkaConsumer, keepalive_s: float) -> None:
        limit = self._settings.task_concurrency
        while True:
            try:
                free = 0 if self._draining else limit - len(self._running)
                if free > 0:
                    paused = consumer.paused()
                    if paused:
                        consumer.resume(*paused)
                    batch = await consumer.getmany(timeout_ms=_POLL_TIMEOUT_MS, max_records=free)
                else:
                    batch = await self._wait_for_a_slot(consumer, keepalive_s)
            except KafkaError as exc:
                if getattr(exc, "errno", None) not in FATAL_GROUP_ERRORS:
                    log.exception("polling the tasks topic failed; retrying")
                # A refused group stops the worker (group_errors): no stack trace per retry.
                await asyncio.sleep(_RETRY_MAX_S)
                continue
            except Exception:
                # The loop must outlive a broker hiccup: a dead poll loop is a silent, idle worker.
                log.exception("polling the tasks topic failed; retrying")
                await asyncio.sleep(_RETRY_MAX_S)
                continue
            if self._draining:
                # Not started, so not tracked and never committed: the next owner reads them.
                continue
            for records in batch.values():
                for record in records:
                    self._take(record)

    async def _wait_for_a_slot(
        self, consumer: AIOKafkaConsumer, keepalive_s: float
    ) -> dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]:
        self._slot_freed.clear()
        # asyncio.timeout, not wait_for: on 3.11 wait_for swallows a cancel that lands
        # as the event fires, and `stop` does exactly that.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(keepalive_s):
                await self._slot_freed.wait()
        if self._slot_freed.is_set() and not self._draining:
            return {}
        # No new work for now, but poll anyway, or aiokafka decides this consumer hung
        # and leaves the group. Pausing first (which drops what was prefetched) makes the
        # poll return nothing, bar a record of a partition assigned in between.
        consumer.pause(*consumer.assignment())
        return await consumer.getmany(timeout_ms=0, max_records=1)

    def _take(self, record: ConsumerRecord[bytes, bytes]) -> None:
        offsets = self._commits.started(record)
        run = self._runs.get(record.value)
        if run is None:
            self._start(record.value, self._handle(record, offsets))
        else:
            # Handed over by the orchestrator (or read before): done once that run is.
            run.add_done_callback(functools.partial(_finish_if_delivered, offsets, record.offset))

    def _start(
        self,
        value: bytes | None,
        work: Coroutine[Any, Any, None],
        context: contextvars.Context | None = None,
    ) -> None:
        task = asyncio.create_task(work, context=context)
        self._running.add(task)
        task.add_done_callback(self._finished)
        self._runs.add(value, task)

    def run_here(self, key: bytes, value: bytes) -> bool:
        """Start the task request `value` (keyed `key`) that this worker's orchestrator is
        sending to the tasks topic, without waiting to read it back; True if it runs here.

        Only a request this executor would read anyway (its tasks partition is assigned
        here), with a slot free and its handler registered here: the others take the topic.
        A request already run here is not started again. With every slot taken it is left
        to the topic unlooked-at: read back, it finds its run here if it has one.
        """
        consumer = self._consumer
        # Refused before the request's digest is taken: under load every slot is taken at
        # most hand-overs, and the record read back takes the digest again.
        if (
            consumer is None
            or self._draining
            or len(self._running) >= self._settings.task_concurrency
        ):
            return False
        if self._runs.get(value) is not None:
            return True
        if not self._owns(consumer, key):
            return False
        try:
            request = decode_task(value)
        except CodecError:
            return False  # read back from the topic, it goes to the dead-letter topic
        if request.kind == "task" and self._registry.get(request.handler or "") is None:
            return False
        TASKS_HANDED_OVER.inc()
        # A context of its own: the run must not see the orchestrator's record as its event.
        self._start(value, self._run_and_deliver(request), contextvars.Context())
        return True

    def _owns(self, consumer: AIOKafkaConsumer, key: bytes) -> bool:
        """Whether the tasks partition of `key` is assigned to this executor."""
        topic = self._topic
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            return False
        # As the producer picks it (aiokafka lists the topic's partitions the same way).
        partition = self._partitioner(key, list(partitions), [])
        return TopicPartition(topic, partition) in consumer.assignment()

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._slot_freed.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("a task crashed the executor's handling", exc_info=task.exception())

    async def _handle(
        self, record: ConsumerRecord[bytes, bytes], offsets: PartitionOffsets
    ) -> None:
        try:
            request = _decode(record)
        except CodecError as exc:
            dead = DeadLetter(
                topic=record.topic,
                partition=record.partition,
                offset=record.offset,
                key=record.key,
                value=record.value,
                reason=str(exc),
                at=self._clock(),
            )
            await _deliver(self._dead_letter, dead)
        else:
            await self._run_and_deliver(request)
        offsets.finish(record.offset)

    async def _run_and_deliver(self, request: TaskRequest) -> None:
        result, value = await self._run(request)
        send = functools.partial(self._send, traceparent=request.traceparent, value=value)
        await _deliver(send, result)

    async def _run(self, request: TaskRequest) -> tuple[Transition, bytes]:
        """Run one task; its result as the transition to send back, and its encoding (made
        once: for the size check, then sent)."""
        kind = request.kind if request.kind in self._kinds else "unknown"
        started = time.monotonic()
        secrets = self._secret_scope(request)
        node_log = NodeLog(self._clock, secrets.redaction.text)
        output, error = await self._outcome(request, secrets, node_log)
        _duration_of(kind).observe(time.monotonic() - started)
        _runs_of(kind, NodeStatus.COMPLETED if error is None else NodeStatus.FAILED).inc()
        result = node_result(request, self._clock(), output, error)
        await self._deliver_log(request, node_log, result.at)
        value = encode_transition(result)
        size = len(value)
        limit = self._settings.max_value_bytes
        if size <= limit:
            return result, value
        # A result the broker would refuse: delivering it would be retried forever.
        if error is None:
            error = NodeError(
                "OutputTooLarge",
                f"the output takes {size:,} bytes, over the {limit:,} a record may hold;"
                " write large data elsewhere and return a reference",
                request.node_id,
            )
        else:
            cut = f"{error.message[:_ERROR_SHOWN]}... (cut: the result took {size:,} bytes)"
            error = NodeError(error.type, cut, error.node_id)
        refused = node_result(request, result.at, None, error)
        return refused, encode_transition(refused)

    async def _deliver_log(self, request: TaskRequest, node_log: NodeLog, at: int) -> None:
        lines = node_log.close()
        if self._send_logs is None or not (lines or node_log.cut):
            return
        run_log = NodeRunLog(
            id=request.idempotency_key,
            execution_id=request.execution_id,
            workflow_id=request.workflow_id,
            node_id=request.node_id,
            attempt=request.attempt,
            at=at,
            lines=lines,
            item=request.item,
            tenant=request.tenant,
            cut=node_log.cut,
            cut_lines=node_log.cut_lines,
        )
        await _deliver(functools.partial(self._send_logs, traceparent=request.traceparent), run_log)

    async def _outcome(
        self, request: TaskRequest, secrets: SecretScope, node_log: NodeLog
    ) -> tuple[Any, NodeError | None]:
        """The output or the error of a run, with the values of the secrets it read taken out."""
        redact = secrets.redaction
        try:
            output = await self.perform(request, secrets, node_log)
            _check_json(output, request)
        except (NodeFailure, SecretError) as exc:
            return None, NodeError(exc.type, redact.text(exc.message), request.node_id)
        except Exception as exc:
            return None, NodeError(type(exc).__name__, redact.text(str(exc)), request.node_id)
        return redact.value(output), None

    def _secret_scope(self, request: TaskRequest) -> SecretScope:
        tenant, department = request.tenant, request.department
        return SecretScope(
            self._secrets, tenant, self._allowed_secrets(tenant, department), department
        )

    def handler_names(self) -> list[str]:
        """The task handlers registered on this worker."""
        return self._registry.names()

    async def perform(self, request: TaskRequest, secrets: SecretScope, node_log: NodeLog) -> Any:
        """Run `request` by its kind (an llm node's tool calls come here too): its output, or
        NodeFailure; the caller redacts and delivers."""
        run = self._kinds.get(request.kind)
        if run is None:
            raise NodeFailure(
                "UnknownKind",
                f"this worker's executors run {', '.join(sorted(self._kinds))} nodes,"
                f" not {request.kind!r}",
            )
        return await run(request, secrets, node_log)

    async def _call_http(
        self, request: TaskRequest, secrets: SecretScope, node_log: NodeLog
    ) -> Any:
        if not isinstance(request.input, Mapping):
            raise NodeFailure(
                "InvalidRequest", f"http node input is not an object: {request.input!r}"
            )
        params = resolve_references(request.input, secrets.lookup)
        return await self._http.call(
            params, request.timeout_ms, request.idempotency_key, request.traceparent
        )

    async def _run_handler(
        self, request: TaskRequest, secrets: SecretScope, node_log: NodeLog
    ) -> Any:
        handler = self._registry.get(request.handler) if request.handler else None
        if handler is None:
            raise NodeFailure(
                "UnknownHandler",
                f"no task handler {request.handler!r} is registered here"
                f"{did_you_mean(request.handler or '', self._registry.names())}"
                f" (registered: {_list_names(self._registry.names())})",
            )
        return await run_in_context(
            handler, f"handler {handler.name!r}", request, secrets, node_log
        )


def custom_kind_run(kind: CustomKind) -> WorkRun:
    """How an executor runs the nodes of a custom kind: its `run` with the rendered params and a
    task handler's context (docs/custom-kinds.md)."""

    async def run(request: TaskRequest, secrets: SecretScope, node_log: NodeLog) -> Any:
        if not isinstance(request.input, Mapping):
            raise NodeFailure(
                "InvalidRequest", f"{kind.name} node input is not an object: {request.input!r}"
            )
        return await run_in_context(
            kind.run, f"node kind {kind.name!r}", request, secrets, node_log
        )

    return run


async def run_in_context(
    function: Callable[[Any, TaskContext], Awaitable[Any]],
    what: str,
    request: TaskRequest,
    secrets: SecretScope,
    node_log: NodeLog,
) -> Any:
    """`function(request.input, context)` within the request's timeout, its logging kept in
    `node_log`; `what` names it when the time runs out."""
    timeout_ms = request.timeout_ms if request.timeout_ms is not None else DEFAULT_TASK_TIMEOUT_MS
    context = TaskContext(
        execution_id=request.execution_id,
        workflow_id=request.workflow_id,
        node_id=request.node_id,
        attempt=request.attempt,
        idempotency_key=request.idempotency_key,
        item=request.item,
        secrets=TaskSecrets(secrets),
        traceparent=request.traceparent,
        node_log=node_log,
        timeout_ms=timeout_ms,
    )
    try:
        # The standard `logging` of the function, its tasks and its thread goes to its run.
        with node_run_context(request.traceparent), capturing(node_log):
            async with asyncio.timeout(timeout_ms / 1000) as deadline:
                return await function(request.input, context)
    except TimeoutError:
        # Only our deadline is ours to explain; a TimeoutError the function raised stays its own.
        if deadline.expired():
            raise NodeFailure("TimeoutError", f"{what} did not finish in {timeout_ms}ms") from None
        raise


def node_result(
    request: TaskRequest, at: int, output: Any, error: NodeError | None
) -> NodeCompleted | NodeFailed:
    """The transition reporting a task's result. Its id derives from the idempotency key,
    so a task run twice reports twice under the same id and the engine keeps one."""
    if error is None:
        return NodeCompleted(
            id=ids.task_completed_id(request.idempotency_key),
            execution_id=request.execution_id,
            at=at,
            node_id=request.node_id,
            attempt=request.attempt,
            output=output,
            item=request.item,
        )
    return NodeFailed(
        id=ids.task_failed_id(request.idempotency_key),
        execution_id=request.execution_id,
        at=at,
        node_id=request.node_id,
        attempt=request.attempt,
        error=error,
        item=request.item,
    )


def _finish_if_delivered(offsets: PartitionOffsets, offset: int, run: asyncio.Task[None]) -> None:
    """Count a record read back done, once its run delivered the result; a run cancelled
    (the worker stopping) leaves the record to be read again."""
    if not run.cancelled() and run.exception() is None:
        offsets.finish(offset)


def _decode(record: ConsumerRecord[bytes, bytes]) -> TaskRequest:
    if record.value is None:
        raise CodecError("a task record with no value")
    return decode_task(record.value)


def _check_json(output: Any, request: TaskRequest) -> None:
    try:
        _as_json(output)
    except (TypeError, ValueError) as exc:
        raise NodeFailure(
            "InvalidOutput", f"{request.handler or request.kind} returned something not JSON: {exc}"
        ) from None


def _list_names(names: list[str]) -> str:
    if not names:
        return "none"
    shown = ", ".join(names[:_NAMES_SHOWN])
    more = len(names) - _NAMES_SHOWN
    return f"{shown} and {more} more" if more > 0 else shown


async def _deliver(send: Callable[[T], Awaitable[None]], item: T) -> None:
    """Send `item` until the broker takes it: a result that is not delivered is not done."""
    delay = _RETRY_FIRST_S
    while True:
        try:
            await send(item)
            return
        except Exception as exc:
            log.warning(
                "delivering %s failed, retrying in %.1fs: %r", type(item).__name__, delay, exc
            )
            await asyncio.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX_S)
