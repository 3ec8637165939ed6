"""The API's backend: what a worker answers for the REST API (`connectors.api.Backend`).

A backend answers for one tenant (`for_tenant`; the API asks for the caller's): it finds
only that tenant's workflows, executions, approvals and dead letters, and deploys, starts
and publishes into it. Another tenant's object is not found, as if it did not exist.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Mapping, Sequence
from typing import Any

import aiohttp

from braidflow.access import DEFAULT_TENANT
from braidflow.connectors.api import (
    FORWARDED_HEADER,
    Conflict,
    NotFound,
    Rejected,
    Unavailable,
    Unconfirmed,
    execution_view,
    not_started_view,
)
from braidflow.connectors.api.caller import forwarded_credential
from braidflow.connectors.execution_search import ExecutionSearch
from braidflow.connectors.lifecycle_feed import LifecycleFeed
from braidflow.engine import (
    ApprovalDecided,
    CancelExecution,
    PauseExecution,
    RedriveNode,
    ResumeExecution,
    StartExecution,
    Transition,
    ids,
)
from braidflow.engine.state import TERMINAL, ExecutionStatus, NodeStatus, iso_time
from braidflow.engine.trace_context import HEADER as TRACEPARENT
from braidflow.engine.trace_context import ExecutionTrace, parse_traceparent
from braidflow.runtime.worker import Runtime
from braidflow.schemas import CodecError, decode_stored, encode_event, encode_transition
from braidflow.schemas.audit import AuditRecord, encode_audit
from braidflow.schemas.cloudevents import CloudEvent, to_structured, topic_for
from braidflow.schemas.dead_letters import RedriveMark
from braidflow.schemas.lifecycle_events import (
    START_REFUSED,
    accepted_event,
    lifecycle_headers,
)
from braidflow.schemas.record_limits import LIMIT_NAME, RecordTooLarge, check_record
from braidflow.schemas.stats_figures import WINDOWS, bucket_view
from braidflow.schemas.stats_observations import WORKFLOW_SCOPE, stats_key
from braidflow.streams.backfill import Backfill, BackfillRefused, backfill_view, event_triggers
from braidflow.streams.catalog import Deployment
from braidflow.streams.departments import DepartmentVersion
from braidflow.streams.publisher import epoch_ms
from braidflow.streams.value_rows import MIN_ROW_BYTES, MissingValueRow, filled_in
from braidflow.tenants import catalog_key, events_prefix_for
from braidflow.topology.drafts import Ask
from braidflow.topology.model import DEFAULT_CHOICES
from braidflow.topology.workflow import CompiledNode

log = logging.getLogger(__name__)


class RuntimeBackend:
    """The API's view of a worker for one tenant: the catalog, starting executions, reading
    them."""

    def __init__(
        self, runtime: Runtime, session: aiohttp.ClientSession, tenant: str = DEFAULT_TENANT
    ) -> None:
        self._runtime = runtime
        self._catalog = runtime.catalog
        self._session = session
        self._tenant = tenant

    def for_tenant(self, tenant: str) -> RuntimeBackend:
        """This backend, answering for `tenant`."""
        if tenant == self._tenant:
            return self
        return RuntimeBackend(self._runtime, self._session, tenant)

    def _key(self, workflow_id: str) -> str:
        return catalog_key(self._tenant, workflow_id)

    def latest(self, workflow_id: str) -> Deployment | None:
        return self._catalog.latest(self._key(workflow_id))

    def get(self, workflow_id: str, version: int) -> Deployment | None:
        return self._catalog.get(self._key(workflow_id), version)

    def all_latest(self) -> list[Deployment]:
        return self._catalog.all_latest(self._tenant)

    def versions(self, workflow_id: str) -> list[Deployment]:
        return self._catalog.versions(self._key(workflow_id))

    async def deploy(
        self, text: str, by: str | None = None, restores: int | None = None
    ) -> tuple[Deployment, bool]:
        try:
            return await self._catalog.deploy(
                text, self._runtime.clock(), by, restores, tenant=self._tenant
            )
        except TimeoutError:
            raise Unconfirmed(
                "the deployment was written but this worker has not read it back yet; retry"
            ) from None

    def task_handlers(self) -> list[str]:
        return self._runtime.executor.handler_names()

    def draft_connections(self) -> list[str]:
        model = self._runtime.draft_model
        return [] if model is None else model.connections

    def draft_ask(self, connection: str, model: str) -> Ask:
        if self._runtime.draft_model is None:
            raise RuntimeError("draft_ask without a draft model")
        return self._runtime.draft_model.ask(self._tenant, connection, model)

    def departments(self) -> list[DepartmentVersion]:
        return self._catalog.departments_of(self._tenant).all_latest()

    def department(self, name: str) -> DepartmentVersion | None:
        return self._catalog.departments_of(self._tenant).latest(name)

    async def deploy_department(
        self, text: str, by: str | None = None
    ) -> tuple[DepartmentVersion, bool]:
        try:
            return await self._catalog.deploy_department(
                text, self._runtime.clock(), by, tenant=self._tenant
            )
        except TimeoutError:
            raise Unconfirmed(
                "the department was written but this worker has not read it back yet; retry"
            ) from None

    async def remove(self, workflow_id: str) -> bool:
        try:
            return await self._catalog.remove(self._key(workflow_id), self._runtime.clock())
        except TimeoutError:
            raise Unconfirmed(
                "the removal was written but this worker has not read it back yet; retry"
            ) from None

    async def start_execution(
        self, deployment: Deployment, input_: Any, traceparent: str | None = None
    ) -> str:
        """Accept a start: RecordTooLarge, with nothing sent, if it could not be sent or
        stored; else the id, once the start and its acceptance are acknowledged.
        `traceparent`: the trace the execution joins (None: a trace of its own)."""
        execution_id = uuid.uuid4().hex
        start = StartExecution(
            ids.start_id(execution_id),
            execution_id,
            self._runtime.clock(),
            deployment.workflow_id,
            deployment.version,
            input_,
            tenant=deployment.tenant,
            traceparent=traceparent,
        )
        encoded = encode_transition(start)
        limit = self._runtime.settings.max_value_bytes
        check_record("input", encoded, "a start record", limit)
        await self._check_first_step(deployment, start, encoded, "input")
        publisher = self._runtime.publisher
        transitions = self._runtime.settings.topics.transitions
        header = ExecutionTrace.of(execution_id, start.traceparent).header
        send = publisher.queue(
            transitions, execution_id.encode(), encoded, [(TRACEPARENT, header.encode())]
        )
        await self._accept([(start, send)])
        return execution_id

    async def _check_first_step(
        self, deployment: Deployment, start: StartExecution, encoded: bytes, what: str
    ) -> None:
        """RecordTooLarge if the first step of `start` could not be stored.

        Only a start with a value large enough for a row of its own can make one
        too large (bar pathological fan-outs, which fail with the reason); the step
        is pure, so it runs off the event loop.
        """
        if len(encoded) < MIN_ROW_BYTES:
            return
        orchestrator = self._runtime.orchestrator
        problem = await asyncio.to_thread(orchestrator.first_step_problem, deployment, start)
        if problem is not None:
            raise RecordTooLarge(f"{what}: {problem} ({LIMIT_NAME})")

    async def _accept(self, starts: list[tuple[StartExecution, Awaitable[Awaitable[Any]]]]) -> None:
        """Send each start with its `workflow.accepted` event, and wait for all of them.

        The acceptance, acknowledged before the id is answered, is what keeps the id
        findable until the orchestrator gets to the start: see `execution`.
        """
        lifecycle = self._runtime.settings.topics.lifecycle
        acknowledgements = []
        for start, send in starts:
            key = start.execution_id.encode()
            accepted = accepted_event(start)
            trace = ExecutionTrace.of(start.execution_id, start.traceparent)
            headers = [*lifecycle_headers(accepted.id, key), (TRACEPARENT, trace.header.encode())]
            queued = self._runtime.publisher.queue(lifecycle, key, encode_event(accepted), headers)
            acknowledgements += [await queued, await send]
        await asyncio.gather(*acknowledgements)

    async def execution(self, execution_id: str, forwarded: bool) -> Mapping[str, Any] | None:
        key = execution_id.encode()
        owner = None if forwarded else self._owner(key)
        if owner is not None:
            url = f"{owner}/api/v1/executions/{execution_id}"
            try:
                headers = {FORWARDED_HEADER: "1", **forwarded_credential()}
                async with self._session.get(url, headers=headers) as response:
                    if response.status == 404:
                        return None
                    response.raise_for_status()
                    return await response.json()
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise Unavailable(
                    f"execution {execution_id} is held by {owner}, which did not answer: {exc}"
                ) from None
        executions = self._runtime.parts.executions
        raw = executions.get(key)
        if raw is None:
            accepted = await self._accepted(execution_id)
            # Waiting for the index may have let the orchestrator get to the start.
            raw = executions.get(key)
            if raw is None:
                return accepted
        try:
            state = filled_in(decode_stored(raw).state, executions)
        except (CodecError, MissingValueRow):
            log.exception("stored execution %s is undecodable", execution_id)
            raise
        if state.tenant != self._tenant:
            # Another tenant's execution does not exist for this one.
            return None
        deployment = self.get(state.workflow_id, state.workflow_version)
        if deployment is None:
            return None
        return execution_view(state, deployment.workflow)

    async def execution_summary(self, execution_id: str) -> Mapping[str, Any] | None:
        """This tenant's execution as the index lists it; one not found yet waits for the
        index to catch up, as `_accepted` says (503 if it does not in time)."""
        index = self._runtime.executions_index
        found = await index.off_loop(index.get, execution_id, self._tenant)
        projection = self._runtime.executions_projection
        if found is None and projection is not None:
            caught_up = await projection.wait_caught_up(ACCEPTED_WAIT_S)
            found = await index.off_loop(index.get, execution_id, self._tenant)
            if found is None and not caught_up:
                raise Unavailable(
                    f"execution {execution_id}: this worker's execution index is behind;"
                    " retry in a moment"
                )
        return found

    async def node_logs(self, execution_id: str) -> list[dict[str, Any]]:
        """From this worker's node log index, once it has read what the logs topic held at
        the call (at most NODE_LOGS_WAIT_S; then what it has)."""
        index = self._runtime.node_logs
        if index is None:
            return []
        projection = self._runtime.node_logs_projection
        if projection is not None:
            await projection.wait_caught_up(NODE_LOGS_WAIT_S)
        return await index.off_loop(index.of_execution, execution_id, self._tenant)

    def lifecycle_feed(self) -> LifecycleFeed | None:
        return self._runtime.lifecycle_feed

    async def _accepted(self, execution_id: str) -> Mapping[str, Any] | None:
        """An execution this worker's table does not hold: accepted and not started yet
        (a backlog ahead of its start), or refused at its start (failed, with the
        reason), if this worker's execution index says so.

        Why the index, and why waiting for it is sound: the worker that accepted the
        start wrote `workflow.accepted` to the lifecycle topic and had it acknowledged
        before answering with the id, and every worker projects that topic. The
        accepting worker may not be the one asked (reads go to the key's owner), so its
        memory would not do. Once this worker's index has read up to the end offsets
        of the topic as of now, an id it does not hold was never accepted: 404. Only
        an id not found at once waits, at most ACCEPTED_WAIT_S, else 503 (not 404).
        An execution the index shows started is not this worker's (a read not
        forwarded, or during a rebalance): 404 as before, the owner has it.
        """
        found = await self.execution_summary(execution_id)
        if found is None or not _never_started(found):
            return None
        deployment = self.get(found["workflow_id"], found["workflow_version"])
        return not_started_view(found, None if deployment is None else deployment.workflow)

    def _owner(self, key: bytes) -> str | None:
        """The API URL of the worker that holds `key`, or None when it is this one."""
        app = self._runtime.app
        try:
            url = str(app.router.key_store("executions", key)).rstrip("/")
        except Exception:
            # No assignment yet (a rebalance is under way): answer from what is here.
            return None
        own = str(app.conf.canonical_url).rstrip("/")
        return None if url == own else url

    async def publish_event(self, event: CloudEvent) -> str:
        """Send a domain event to this tenant's events topic (structured mode); the topic."""
        settings = self._runtime.settings
        topic = topic_for(event.type, events_prefix_for(self._tenant, settings.events_prefix))
        headers, value = to_structured(event)
        check_record("event", value, "an event record", settings.max_value_bytes)
        # What it triggers must fit too: the router could only dead-letter it.
        scope = event.scope()
        await self._prepare_starts(
            [s.workflow_id for s in self._catalog.subscriptions(self._tenant).match(scope)], scope
        )
        await self._runtime.events_topics.ensure(topic)
        key = (event.subject or event.id).encode()
        await (await self._runtime.publisher.queue(topic, key, value, headers))
        return topic

    def webhook_workflows(self, name: str) -> list[str]:
        return self._catalog.subscriptions(self._tenant).webhooks(name)

    async def start_for_event(
        self, workflow_ids: list[str], event: CloudEvent
    ) -> list[dict[str, str]]:
        """Start each workflow for `event` (ids derived from the event, so a retry starts nothing new)."""
        prepared = await self._prepare_starts(workflow_ids, event.scope())
        starts = self._runtime.starts
        await self._accept([(start, starts.send(start, encoded)) for _, start, encoded in prepared])
        return [
            {"workflow_id": start.workflow_id, "execution_id": start.execution_id}
            for _, start, _ in prepared
        ]

    async def _prepare_starts(
        self, workflow_ids: list[str], scope: Mapping[str, Any]
    ) -> list[tuple[Deployment, StartExecution, bytes]]:
        """The starts an event makes, encoded; RecordTooLarge if any could not be sent or
        stored, before any is sent."""
        prepared = []
        for workflow_id in workflow_ids:
            found = self._runtime.starts.prepare(self._key(workflow_id), scope)
            if found is not None:
                await self._check_first_step(*found, f"event: the start of {workflow_id!r}")
                prepared.append(found)
        return prepared

    async def executions_of(
        self, workflow_id: str, limit: int, search: ExecutionSearch
    ) -> list[dict[str, Any]]:
        index = self._runtime.executions_index
        return await index.off_loop(
            index.list, workflow_id, limit=limit, tenant=self._tenant, search=search
        )

    async def search_executions(
        self, limit: int, search: ExecutionSearch, workflows: Sequence[str] | None
    ) -> list[dict[str, Any]]:
        index = self._runtime.executions_index
        return await index.off_loop(
            index.search, limit=limit, tenant=self._tenant, search=search, workflows=workflows
        )

    async def recent_events(
        self, limit: int, workflows: Sequence[str] | None
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        index = self._runtime.executions_index
        return await index.off_loop(
            index.recent_events, limit=limit, workflows=workflows, tenant=self._tenant
        )

    async def pending_approvals(
        self, workflow_id: str | None, department: str | None
    ) -> list[dict[str, Any]]:
        index = self._runtime.executions_index
        return await index.off_loop(
            index.pending_approvals,
            workflow_id=workflow_id,
            department=department,
            tenant=self._tenant,
        )

    async def _view(self, execution_id: str) -> Mapping[str, Any]:
        view = await self.execution(execution_id, forwarded=False)
        if view is None:
            raise NotFound(f"no execution {execution_id!r}")
        return view

    async def decide(
        self, execution_id: str, node_id: str, decision: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Record a decision; the first one sent wins, a later one is a Conflict."""
        view = await self._view(execution_id)
        deployment = self.get(view["workflow_id"], view["workflow_version"])
        node = deployment.workflow.nodes.get(node_id) if deployment is not None else None
        if node is None or node.type != "approval":
            raise NotFound(f"execution {execution_id!r} has no approval node {node_id!r}")
        run = _node_of(view, node_id)
        if run is None or run["status"] != NodeStatus.WAITING:
            state = "not reached yet" if run is None else run["status"]
            raise Conflict(f"approval {node_id!r} is not waiting for a decision ({state})")
        if _held_decision(view, node_id) is not None:
            raise Conflict(f"approval {node_id!r} already has a decision waiting for the resume")
        # No data is an empty reply, so a reply schema with only optional fields accepts it.
        decision = {**decision, "data": {} if decision.get("data") is None else decision["data"]}
        problems = approval_problems(node, decision)
        if problems:
            raise Rejected("the decision does not fit the approval", problems)
        decision_id = uuid.uuid4().hex
        transition_id = ids.decision_id(execution_id, node_id, decision_id)
        await self._runtime.publisher.send_transition(
            ApprovalDecided(
                transition_id,
                execution_id,
                self._runtime.clock(),
                node_id,
                decision_id,
                decision["choice"],
                decision["by"],
                decision.get("comment"),
                decision.get("data"),
            ),
            # The decision ends the waiting approval's node run: that run's span.
            action_traceparent(view, node_id, run["attempt"]),
        )
        deadline = time.monotonic() + DECISION_WAIT_S
        while time.monotonic() < deadline:
            view = await self._view(execution_id)
            held = _held_decision(view, node_id)
            if held is not None:
                # Paused: the first decision held applies on resume; the engine drops a later one.
                if held["id"] != transition_id:
                    raise Conflict(
                        f"approval {node_id!r} already has a decision waiting for the resume"
                    )
                return {
                    "execution_id": execution_id,
                    "node_id": node_id,
                    "decision_id": decision_id,
                    "choice": decision["choice"],
                    "by": decision["by"],
                    "applies_on_resume": True,
                }
            run = _node_of(view, node_id)
            if run is not None and run["status"] != NodeStatus.WAITING:
                output = run["output"] or {}
                if output.get("decision_id") == decision_id:
                    return {"execution_id": execution_id, "node_id": node_id, **output}
                if run["status"] == NodeStatus.COMPLETED:
                    raise Conflict(
                        f"approval {node_id!r} was already decided by {output.get('by')!r}"
                    )
                # Cancelled: the execution ended first, or applying this decision ended it.
                error = view.get("error") or {}
                why = f": {error.get('type')}: {error.get('message')}" if error else ""
                raise Conflict(
                    f"approval {node_id!r} was {run['status']}; the execution is"
                    f" {view['status']}{why}"
                )
            await asyncio.sleep(0.05)
        raise Unconfirmed("the decision was sent but is not applied yet; look at the execution")

    async def control(self, execution_id: str, action: str, by: str, reason: str) -> None:
        view = await self._view(execution_id)
        if view["status"] in TERMINAL:
            raise Conflict(f"execution {execution_id!r} is already {view['status']}")
        if action == "pause" and view.get("paused"):
            raise Conflict(f"execution {execution_id!r} is already paused")
        if action == "resume" and not view.get("paused"):
            raise Conflict(f"execution {execution_id!r} is not paused")
        at, tag = self._runtime.clock(), uuid.uuid4().hex
        transition: Transition
        if action == "cancel":
            transition = CancelExecution(
                ids.control_id(execution_id, "cancel", tag), execution_id, at, reason, by
            )
        elif action == "pause":
            transition = PauseExecution(
                ids.control_id(execution_id, "pause", tag), execution_id, at, by, reason
            )
        else:
            transition = ResumeExecution(
                ids.control_id(execution_id, "resume", tag), execution_id, at, by, reason
            )
        await self._runtime.publisher.send_transition(transition, action_traceparent(view))

    async def dead_letters(
        self, kind: str | None, workflow_id: str | None, limit: int
    ) -> list[dict[str, Any]]:
        index = self._runtime.dead_letter_index
        return await index.off_loop(
            index.list, kind=kind, workflow_id=workflow_id, limit=limit, tenant=self._tenant
        )

    async def dead_letter(self, dead_letter_id: str) -> dict[str, Any] | None:
        index = self._runtime.dead_letter_index
        return await index.off_loop(index.get, dead_letter_id, self._tenant)

    async def redrive(
        self, dead_letter_id: str, patched_input: Any, has_input: bool, by: str
    ) -> dict[str, Any]:
        letter = await self.dead_letter(dead_letter_id)
        if letter is None:
            raise NotFound(f"no dead letter {dead_letter_id!r}")
        if letter["kind"] != "node":
            raise Conflict(
                "a record dead letter cannot be redriven: it never became a transition;"
                " fix its producer and send it again"
            )
        execution_id, node_id = letter["execution_id"], letter["node_id"]
        view = await self._view(execution_id)
        if view["status"] not in (ExecutionStatus.FAILED, ExecutionStatus.PARKED):
            raise Conflict(f"execution {execution_id!r} is {view['status']}, not failed or parked")
        at = self._runtime.clock()
        await self._runtime.publisher.send_transition(
            RedriveNode(
                ids.redrive_id(execution_id, node_id, uuid.uuid4().hex),
                execution_id,
                at,
                node_id,
                by,
                patched_input if has_input else None,
            ),
            # The redriven attempt is a new node run of the execution: its span's parent.
            action_traceparent(view),
        )
        letters = self._runtime.dead_letter_index
        await letters.off_loop(letters.mark_redriven, dead_letter_id, at)
        await self._runtime.publisher.mark_redriven(RedriveMark(dead_letter_id, at, by))
        return {"dead_letter_id": dead_letter_id, "execution_id": execution_id, "node_id": node_id}

    async def backfill(self, workflow_id: str, from_ms: int, to_ms: int | None) -> dict[str, Any]:
        """Start the workflow for the past events of [from_ms, to_ms] (to: now)."""
        latest = self.latest(workflow_id)
        if latest is None:
            raise NotFound(f"no workflow {workflow_id!r}")
        if not event_triggers(latest.workflow):
            raise Rejected(f"workflow {workflow_id!r} has no event triggers to backfill", [])
        runtime = self._runtime
        index = runtime.executions_index
        backfill = Backfill(
            runtime.settings, runtime.starts, lambda ids: index.off_loop(index.known, ids)
        )
        # Record timestamps are wall-clock times: `to` defaults to the wall clock's now.
        until = epoch_ms() if to_ms is None else to_ms
        try:
            return backfill_view(await backfill.run(latest.workflow, from_ms, until, self._tenant))
        except BackfillRefused as exc:
            raise Rejected(str(exc), [str(exc)]) from None
        except TimeoutError as exc:
            raise Unconfirmed(f"{exc}; run the backfill again, it starts nothing twice") from None

    def now_ms(self) -> int:
        return self._runtime.clock()

    async def stats(
        self, scope: str, name: str, window: str, from_ms: int, to_ms: int, forwarded: bool
    ) -> list[dict[str, Any]]:
        """The buckets of this tenant's workflow or department `name`: from this worker's
        tables when it holds them, else from the worker that does (a forwarded read, as for
        executions)."""
        stats = self._runtime.stats
        if stats is None:
            return []
        key = stats_key(self._tenant, scope, name)
        owner = None if forwarded else stats.owner(key)
        if owner is not None:
            query = {
                scope: name,
                "window": window,
                "from": iso_time(from_ms),
                "to": iso_time(to_ms),
            }
            headers = {FORWARDED_HEADER: "1", **forwarded_credential()}
            try:
                async with self._session.get(
                    f"{owner}/api/v1/stats", params=query, headers=headers
                ) as response:
                    response.raise_for_status()
                    return list((await response.json())["buckets"])
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise Unavailable(
                    f"the stats of {scope} {name!r} are held by {owner}, which did not answer:"
                    f" {exc}"
                ) from None
        spec = WINDOWS[window]
        field = "workflow_id" if scope == WORKFLOW_SCOPE else scope
        return [
            bucket_view(field, name, start, spec, bucket)
            for start, bucket in stats.buckets(key, spec, from_ms, to_ms)
        ]

    async def write_audit(self, record: AuditRecord) -> None:
        """Write an audit record and wait for the broker's acknowledgement."""
        key, value, headers = encode_audit(record)
        topic = self._runtime.settings.topics.audit
        await (await self._runtime.publisher.queue(topic, key, value, headers))

    async def audit_log(
        self,
        tenant: str,
        principal: str | None,
        target: str | None,
        from_ms: int | None,
        to_ms: int | None,
        limit: int,
    ) -> list[dict[str, Any]]:
        index = self._runtime.audit_index
        return await index.off_loop(
            index.list,
            tenant=tenant,
            principal=principal,
            target=target,
            from_ms=from_ms,
            to_ms=to_ms,
            limit=limit,
        )

    def ready(self) -> bool:
        app = self._runtime.app
        return (
            self._runtime.hooks_done
            and self._catalog.ready.is_set()
            and not app.rebalancing
            and app.tables.recovery.completed.is_set()
        )


DECISION_WAIT_S = 5.0
# How long a read of an execution not found waits for the execution index to catch up;
# below the 10 s a forwarded read is given.
ACCEPTED_WAIT_S = 5.0
# How long a read of an execution's logs waits for the node log index to read what the logs
# topic holds: lines sent before the request are shown.
NODE_LOGS_WAIT_S = 2.0


def action_traceparent(
    view: Mapping[str, Any], node_id: str | None = None, attempt: int | None = None
) -> str | None:
    """The `traceparent` header of a control action on the execution `view` shows: the
    execution's span, or node run (`node_id`, `attempt`)'s; None while the execution has no
    state yet (accepted), whose trace the view does not know.

    A `traceparent` the request came with is not used: the execution's spans and their
    parents were fixed when it started, in its own trace (docs/traces.md)."""
    parsed = parse_traceparent(view.get("traceparent"))
    if parsed is None:
        return None
    if node_id is None or attempt is None:
        return parsed.header
    trace = ExecutionTrace(
        view["execution_id"], parsed.trace_id, parsed.span_id, None, parsed.flags
    )
    return trace.node_header(node_id, attempt)


def _never_started(summary: Mapping[str, Any]) -> bool:
    """Whether the index shows an execution without state: accepted, or refused at its start."""
    error = summary.get("error") or {}
    return summary["status"] == ExecutionStatus.ACCEPTED or error.get("type") == START_REFUSED


def _node_of(view: Mapping[str, Any], node_id: str) -> Mapping[str, Any] | None:
    return next((n for n in view["nodes"] if n["node_id"] == node_id), None)


def _held_decision(view: Mapping[str, Any], node_id: str) -> Mapping[str, Any] | None:
    """The first decision of approval `node_id` a paused execution holds, if any."""
    return next(
        (
            t
            for t in view.get("held_transitions") or ()
            if t["kind"] == "ApprovalDecided" and t["node_id"] == node_id
        ),
        None,
    )


def approval_problems(node: CompiledNode, decision: Mapping[str, Any]) -> list[str]:
    """How a decision breaks an approval node's choices or reply schema, naming the field."""
    choices = node.node.params.get("choices", DEFAULT_CHOICES)
    problems = []
    if decision["choice"] not in choices:
        problems.append(f"choice: {decision['choice']!r} is not one of {', '.join(choices)}")
    if node.reply_validator is not None:
        for error in node.reply_validator.iter_errors(decision.get("data")):
            field = ".".join(["data", *(str(p) for p in error.path)])
            problems.append(f"{field}: {error.message}")
    return problems
