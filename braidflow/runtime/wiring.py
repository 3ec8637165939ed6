"""The composition root: every part of a worker, created and wired together."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import aiohttp
import faust
import mode
from aiohttp import web

from braidflow import event_loop
from braidflow.compiled import choose
from braidflow.config import Settings
from braidflow.connectors.agent_library import MODEL_KINDS, ModelKind
from braidflow.connectors.alert_webhooks import AlertWebhooks
from braidflow.connectors.api import Authentication, TokenVerifier, create_api
from braidflow.connectors.api.authentication import off_problem
from braidflow.connectors.audit_index import AuditIndex, AuditProjection
from braidflow.connectors.broker import bind_error, is_embedded_cluster
from braidflow.connectors.code import CodeSandbox
from braidflow.connectors.connections import load_connections
from braidflow.connectors.dead_letter_index import DeadLetterIndex, DeadLetterProjection
from braidflow.connectors.draft_model import DraftModel
from braidflow.connectors.email import MailSender
from braidflow.connectors.execution_index import ExecutionIndex, ExecutionProjection
from braidflow.connectors.fetch_page import PageFetch
from braidflow.connectors.http import HttpNodeClient
from braidflow.connectors.lifecycle_feed import LifecycleFeed
from braidflow.connectors.llm import LlmClient
from braidflow.connectors.local_state import adopt_data_dir, cluster_id_of
from braidflow.connectors.metrics import observe_step
from braidflow.connectors.node_log_index import NodeLogIndex, NodeLogProjection
from braidflow.connectors.read_model_db import ReadModelLocation, read_model_location
from braidflow.connectors.read_model_facts import adopt_cluster
from braidflow.connectors.trace_settings import tracing_wanted
from braidflow.engine.ids import execution_id_for
from braidflow.fetch_stall import watch_stalls
from braidflow.kind_plugins import use_custom_kinds
from braidflow.metrics import WORKER
from braidflow.runtime.backend import RuntimeBackend
from braidflow.runtime.collector import settle_collector
from braidflow.runtime.malloc_trim import fix_thresholds, trim_every
from braidflow.runtime.worker import Runtime
from braidflow.secrets import SecretsAllowed, provider_for
from braidflow.streams.admissions import Admissions
from braidflow.streams.alerts import DepartmentAlerts
from braidflow.streams.app import create_app
from braidflow.streams.bulk_producer import BulkProducer
from braidflow.streams.catalog import Catalog
from braidflow.streams.changelog_ends import read_true_ends
from braidflow.streams.clock import RuntimeClock
from braidflow.streams.executor import Executor, custom_kind_run
from braidflow.streams.fetch_wait import adapt_fetch_waits
from braidflow.streams.group_errors import refusal_line, watch_group_refusals
from braidflow.streams.key_ring import KeyRing
from braidflow.streams.orchestrator import Orchestrator, Record
from braidflow.streams.outbox import Outbox
from braidflow.streams.publisher import Publisher
from braidflow.streams.result_producer import ResultProducer
from braidflow.streams.router import EventRouter
from braidflow.streams.schedules import Scheduler
from braidflow.streams.starts import Starts
from braidflow.streams.stats import Stats
from braidflow.streams.timers import TimerScanner, TimerTable, faust_partitions
from braidflow.streams.topics import EventsTopics, ensure_topics
from braidflow.streams.transitions_reader import TransitionsReader
from braidflow.streams.waits import Correlator
from braidflow.tasks import TaskRegistry, load_handler_modules
from braidflow.tasks import registry as default_registry

log = logging.getLogger(__name__)


async def _records(stream: faust.StreamT[bytes]) -> AsyncIterator[Record]:
    """A stream's records as the handlers take them; Faust acks each as the next is asked for."""
    async for event in stream.events():
        message = event.message
        yield Record(message.topic, message.partition, message.offset, message.key, message.value)


def _check_api_port(settings: Settings) -> None:
    """Fail before anything starts, rather than inside Faust once it runs."""
    exc = bind_error(settings.api_host, settings.api_port)
    if exc is not None:
        raise RuntimeError(
            f"the API address {settings.api_host}:{settings.api_port} is not free"
            f" ({exc.strerror}); choose another with --api-port"
        )


def build_runtime(
    settings: Settings,
    registry: TaskRegistry | None = None,
    token_verifier: TokenVerifier | None = None,
    fresh_broker: bool = False,
) -> Runtime:
    """Create topics, the Faust app and every part of a worker for `settings`.

    `token_verifier`: who a bearer credential that is not an API key is (default: the
    identity provider the settings configure; none: a 401). `fresh_broker`: the broker was
    started for this worker (dev mode's embedded one), so there is nothing to recover and
    the executor joins its group as the app starts (`ExecutorJoin`) and what needs no group
    starts while the groups join (`AheadOfJoin`).
    """
    # Before the first Kafka client: its fetches are the large blocks the thresholds are for.
    fix_thresholds()
    if not settings.authentication and (problem := off_problem(settings.api_host)):
        raise RuntimeError(problem)
    # A bearer credential that is not an API key: the identity provider's token, if set.
    if token_verifier is None and settings.jwks_url:
        # Imported only then: jwt and cryptography took a tenth of a second of every start.
        from braidflow.connectors.identity import identity_provider

        token_verifier = identity_provider(settings)
    _check_api_port(settings)
    # Before Kafka: a mistake in the file stops the start naming the file and the field.
    connections = load_connections(settings.connections)
    llm = LlmClient(connections)
    # Before the Faust app takes its loop, which every part of the worker then runs on.
    loop = event_loop.use(settings.event_loop)
    WORKER.info({"event_loop": loop, "modules": "compiled" if choose().compiled else "pure"})
    cluster_id = cluster_id_of(settings.kafka)
    if is_embedded_cluster(cluster_id):
        settings = settings.on_embedded_broker()
    adopt_data_dir(settings.data_dir, cluster_id)
    ensure_topics(settings)
    load_handler_modules(settings.handler_modules)
    # Before the catalog compiles a definition that has their nodes.
    custom_kinds = use_custom_kinds()
    registry = registry or default_registry
    parts = create_app(settings)
    if is_embedded_cluster(cluster_id):
        read_true_ends(parts.app, settings.kafka)
        adapt_fetch_waits()
        watch_stalls()
    publisher = Publisher(parts.app, settings.topics)
    events_topics = EventsTopics(settings)
    clock = RuntimeClock(settings.clock_offset_file)
    catalog = Catalog(settings, publisher.produce)
    keys = KeyRing(settings, publisher.produce) if settings.authentication else None
    timers = TimerTable(parts.timers, faust_partitions(parts.app, parts.timers))
    outbox = Outbox(settings.topics, publisher.queue, events_topics.ensure, publisher.sends_now)
    orchestrator = Orchestrator(
        catalog,
        outbox,
        publisher.dead_letter,
        clock,
        events_prefix=settings.events_prefix,
        timers=timers,
        max_state_bytes=settings.max_value_bytes,
    )
    orchestrator.on_step = observe_step
    spans = None
    if tracing_wanted(os.environ):
        # Imported only then: the OpenTelemetry SDK took 0.15 - 0.25 s of every start.
        from braidflow.connectors.traces import StepSpans

        spans = StepSpans.from_environment(os.environ)
    if spans is not None:
        orchestrator.on_applied = spans.observe
    http = HttpNodeClient()
    secrets = provider_for(settings.secrets_dir)

    def allowed_secrets(tenant: str, department: str | None) -> SecretsAllowed:
        return catalog.departments_of(tenant).secrets_allowed(department)

    results = ResultProducer(settings)
    executor = Executor(
        settings,
        registry,
        http,
        results.send,
        publisher.dead_letter,
        clock,
        secrets=secrets,
        allowed_secrets=allowed_secrets,
        send_logs=publisher.send_node_log,
        kinds={
            "code": CodeSandbox.on_this_worker().run,
            "email": MailSender(connections).run,
            "fetch_page": PageFetch(http),
            "llm": llm.run,
            **{kind: ModelKind(llm, kind) for kind in MODEL_KINDS},
            **{kind.name: custom_kind_run(kind) for kind in custom_kinds},
        },
    )
    # An llm node's tools run as nodes of their kinds, through the same table.
    llm.run_tools_with(executor.perform)
    # Tasks of this worker's own partitions skip the tasks-topic hop (docs/concepts.md).
    outbox.on_task = executor.run_here
    alert_webhooks = AlertWebhooks()
    alerts = DepartmentAlerts(
        settings, catalog, publisher.queue, events_topics.ensure, alert_webhooks, secrets
    )
    # Starts caused by events, webhooks and schedules: ten or more per event at times.
    start_producer = BulkProducer(settings.kafka)
    starts = Starts(
        settings.topics.transitions, catalog, start_producer.queue, clock, settings.max_value_bytes
    )
    router = EventRouter(settings, catalog, start_producer.queue, publisher.dead_letter, clock)
    correlator = Correlator(
        settings, catalog, publisher.send_transition, publisher.dead_letter, clock
    )
    admissions = Admissions(catalog, publisher.send_transition, publisher.dead_letter, clock)

    def read_model(name: str) -> ReadModelLocation:
        return read_model_location(settings.read_model, settings.data_dir, settings.prefix, name)

    index = ExecutionIndex(read_model("executions-index"))
    feed = LifecycleFeed()
    # The read models' librdkafka consumers name the app's group (they never join it).
    group = settings.prefix
    projection = ExecutionProjection(
        index,
        settings.kafka,
        settings.topics.lifecycle,
        settings.background_fetch_wait_ms,
        feed,
        group=group,
    )
    letters = DeadLetterIndex(read_model("dead-letters-index"))
    letters_projection = DeadLetterProjection(
        letters,
        settings.kafka,
        settings.topics.dead_letters,
        settings.background_fetch_wait_ms,
        group=group,
    )
    audit_index = AuditIndex(read_model("audit-index"))
    audit_projection = AuditProjection(
        audit_index,
        settings.kafka,
        settings.topics.audit,
        settings.background_fetch_wait_ms,
        group=group,
    )
    node_logs = NodeLogIndex(read_model("node-logs-index"))
    node_logs_projection = NodeLogProjection(
        node_logs,
        settings.kafka,
        settings.topics.logs,
        settings.background_fetch_wait_ms,
        group=group,
    )
    # A PostgreSQL schema outlives the data dir adopt_data_dir fitted to this cluster.
    for model in (index, letters, audit_index, node_logs):
        adopt_cluster(model, cluster_id)
    stats = Stats(settings, parts, catalog, publisher.queue) if settings.stats else None
    if stats is not None:
        stats.attach()
    runtime = Runtime(
        settings,
        parts,
        catalog,
        orchestrator,
        executor,
        publisher,
        events_topics,
        clock,
        starts,
        router,
        index,
        letters,
        audit_index,
        executions_projection=projection,
        keys=keys,
        node_logs=node_logs,
        node_logs_projection=node_logs_projection,
        stats=stats,
        lifecycle_feed=feed,
        draft_model=DraftModel(llm, connections, secrets, allowed_secrets, clock)
        if connections
        else None,
    )

    def refused(group: str, code: int) -> None:
        runtime.fail(refusal_line(code, group, settings))

    # Faust's consumer group is the app id, the prefix.
    watch_group_refusals([settings.prefix, executor.group_id, alerts.group_id], refused)
    router.on_refusal = refused
    if stats is not None:
        stats.reader.on_refusal = refused

    # A timer not applied within this is fired again. Short, it floods a busy
    # orchestrator with duplicates that each rewrite the execution's row.
    scanner = TimerScanner(
        timers,
        publisher.fire_timer,
        clock,
        paused=lambda: parts.app.rebalancing,
        resend_after_ms=30_000,
    )

    def owned_partitions() -> set[int]:
        topic = settings.topics.transitions
        return {tp.partition for tp in parts.app.assignor.assigned_actives() if tp.topic == topic}

    scheduler = Scheduler(
        settings,
        catalog,
        starts.start,
        execution_id_for,
        owned_partitions,
        parts.executions,
        clock,
        paused=lambda: parts.app.rebalancing or not owned_partitions(),
    )

    @parts.app.agent(parts.waits_topic, name=f"{settings.prefix}.waits", concurrency=1)
    async def correlate(stream: faust.StreamT[bytes]) -> None:
        await catalog.ready.wait()
        async for record in _records(stream):
            await correlator.handle(record, parts.waits)

    @parts.app.agent(parts.admissions_topic, name=f"{settings.prefix}.admissions", concurrency=1)
    async def admit(stream: faust.StreamT[bytes]) -> None:
        await catalog.ready.wait()
        async for record in _records(stream):
            await admissions.handle(record, parts.admissions)

    readmitting: set[asyncio.Task[int]] = set()

    async def admit_holders_again(sender: Any, **_: Any) -> None:
        # Once the tables of this worker's partitions are recovered; in the background, so
        # that a broker slow to take the sends does not hold up the streams.
        task = asyncio.create_task(admissions.admit_holders_again(list(parts.admissions.items())))
        readmitting.add(task)
        task.add_done_callback(readmitting.discard)

    parts.app.on_rebalance_complete.connect(admit_holders_again)

    async def orchestrate_one(record: Record) -> None:
        await orchestrator.handle(record, parts.executions)

    # The transitions records come from a reader of their own, not this agent: the agent
    # keeps the topic in Faust's group, which assigns its partitions with the tables'
    # (streams/transitions_reader.py).
    async def orchestrate_together(records: Sequence[Record]) -> None:
        await orchestrator.handle_together(records, parts.executions)

    transitions = TransitionsReader(parts.app, settings, orchestrate_together, catalog.ready.wait)
    # This worker's own transitions skip the fetch back when next in their partition.
    publisher.on_transition = results.on_acknowledged = transitions.acknowledged

    async def read_transitions(sender: Any, **_: Any) -> None:
        await transitions.assign()

    parts.app.on_rebalance_complete.connect(read_transitions)

    @parts.app.agent(parts.transitions, name=f"{settings.prefix}.orchestrator", concurrency=1)
    async def orchestrate(stream: faust.StreamT[bytes]) -> None:
        await catalog.ready.wait()
        async for record in _records(stream):
            await orchestrate_one(record)

    async def run_start_hooks() -> None:
        for hook in runtime.on_start:
            await hook(runtime)

    start_hooks_run = _Once(run_start_hooks)

    async def read_catalog() -> None:
        await catalog.start()
        if keys is not None:
            await keys.start()
            # Every key known before the first request: a valid key never gets a 401.
            await keys.ready.wait()
        await catalog.ready.wait()
        for hook in runtime.on_catalog:
            await hook(runtime)

    catalog_read = _Once(read_catalog)

    async def follow_read_models() -> None:
        await projection.start()
        await letters_projection.start()
        await audit_projection.start()
        await node_logs_projection.start()

    read_models_followed = _Once(follow_read_models)

    class WorkerServices(mode.Service):
        """Starts the catalog, the executor and the API once the app runs."""

        _trimming: asyncio.Task[None] | None = None

        async def on_start(self) -> None:
            await start_hooks_run()
            await catalog_read()
            if keys is None:
                log.warning(
                    "authentication is OFF: every request to %s acts as an owner",
                    settings.api_url,
                )
            await http.start()
            await llm.start()
            await results.start()
            await executor.start()
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
            authentication = None if keys is None else Authentication(keys, token_verifier)
            api = create_api(RuntimeBackend(runtime, self._session), authentication)
            self._runner = web.AppRunner(api, access_log=None)
            await self._runner.setup()
            await web.TCPSite(self._runner, settings.api_host, settings.api_port).start()
            await catalog.ready.wait()
            await read_models_followed()
            await start_producer.start()
            await router.start()
            await scanner.start()
            await scheduler.start()
            await alert_webhooks.start()
            await alerts.start()
            for hook in runtime.on_ready:
                await hook(runtime)
            runtime.hooks_done = True
            # After /ready answers, so its full collection does not count against dev's ready.
            settle_collector()
            self._trimming = asyncio.create_task(trim_every())

        async def on_stop(self) -> None:
            if self._trimming is not None:
                self._trimming.cancel()
            await transitions.stop()
            # Open streams and waits answer now: the API's shutdown would wait for them.
            feed.end_readers()
            await alerts.stop()
            await alert_webhooks.stop()
            await scheduler.stop()
            await scanner.stop()
            await router.stop()
            await start_producer.stop()
            await audit_projection.stop()
            await node_logs_projection.stop()
            node_logs.close()
            await letters_projection.stop()
            await projection.stop()
            audit_index.close()
            letters.close()
            index.close()
            await self._runner.cleanup()
            await self._session.close()
            await executor.stop()
            await results.stop()
            await http.stop()
            await llm.stop()
            if keys is not None:
                await keys.stop()
            await catalog.stop()
            if spans is not None:
                spans.shutdown()

    parts.app.service(WorkerServices)
    if fresh_broker:
        parts.app.add_dependency(ExecutorJoin(executor))
        # A child of the table manager: started once it has subscribed the worker's consumer,
        # so the group join is sent first; the producer (the deploys send through it) is up.
        parts.app.tables.add_dependency(
            AheadOfJoin([[start_hooks_run], [catalog_read, read_models_followed]])
        )
    return runtime


class _Once:
    """A coroutine function run at most once: every call awaits that one run (cancelling a
    call, as a stopping worker does, cancels the run)."""

    def __init__(self, run: Callable[[], Awaitable[None]]) -> None:
        self._run = run
        self._task: asyncio.Future[None] | None = None

    async def __call__(self) -> None:
        if self._task is None:
            self._task = asyncio.ensure_future(self._run())
        await self._task


class AheadOfJoin(mode.Service):
    """Dev mode's worker: what needs no consumer group starts while the worker's groups
    join (a fresh broker leaves nothing to recover in between): the `on_start` hooks run
    beside the catalog and the key ring reading their topics, the `on_catalog` hooks (the
    examples deployed) and the read models following their topics. `lines`: each line's
    runs one after the other, the lines side by side. The worker's services await these
    same runs where they start them."""

    def __init__(self, lines: list[list[_Once]]) -> None:
        super().__init__()
        self._lines = lines

    async def on_start(self) -> None:
        # In the background: awaited here, they would hold up the consumer's start, its join.
        self.add_future(self._start())

    async def _start(self) -> None:
        await asyncio.gather(*(self._run_line(line) for line in self._lines))

    @staticmethod
    async def _run_line(line: list[_Once]) -> None:
        for run in line:
            await run()


class ExecutorJoin(mode.Service):
    """Dev mode's worker: the executor joins its group as the app starts, beside the app's
    own join rather than after it (a fresh broker leaves nothing to recover in between);
    it takes tasks once the worker's services start, as every worker's does."""

    def __init__(self, executor: Executor) -> None:
        super().__init__()
        self._executor = executor

    async def on_start(self) -> None:
        await self._executor.join()

    async def on_stop(self) -> None:
        # Stopped before its services started (they stop the executor otherwise).
        await self._executor.stop()
