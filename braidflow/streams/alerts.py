"""Department alerts: a failed, timed-out or parked execution of a department is told to the
department's webhooks and published on the event bus (docs/departments.md, "Alerts").

A consumer of the lifecycle topic in a group of its own, `{prefix}-alerts`, apart from every
execution: a slow or dead webhook never holds up a step. Each alert publishes the CloudEvent
`braidflow.department.alert` on the topic a `publish` node would use for that type, waits for
the broker's acknowledgement, then POSTs it to every webhook of the department; only then does
its offset count as done and get committed. A worker killed in between reads the record
again: at least once (the event's id is stable; a webhook may see an alert twice). A webhook
URL may name secrets (`${secrets.NAME}`, as the department's credentials allow them), looked
up at each call and never logged. A webhook that keeps failing is retried with backoff
`attempts` times, then logged and counted
(`braidflow_department_alert_webhooks{outcome="given_up"}`) and given up.

It follows the lifecycle topic only once some department is deployed as a definition (every
step of every execution writes to that topic), and alerts only for events after the
department's first version, so deploying one does not alert for the failures of the past.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, ConsumerRecord
from aiokafka.errors import KafkaError

from braidflow.config import Settings
from braidflow.engine import LifecycleEvent
from braidflow.metrics import DEPARTMENT_ALERT_WEBHOOKS
from braidflow.schemas import CodecError, decode_event
from braidflow.schemas.cloudevents import CloudEvent, structured_document, to_structured, topic_for
from braidflow.schemas.department_alerts import ALERT_TYPE, ALERTING_TYPES, department_alert
from braidflow.secrets import SecretError, SecretScope, SecretsProvider
from braidflow.streams.catalog import Catalog
from braidflow.streams.committing import COMMIT_INTERVAL_S, Commits
from braidflow.streams.offsets import PartitionOffsets
from braidflow.tenants import catalog_key, events_prefix_for
from braidflow.topology.credentials import resolve_url

log = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]
Queue = Callable[[str, bytes, bytes, Headers | None], Awaitable[Awaitable[Any]]]
"""Queue (topic, key, value, headers); the future resolves on acknowledgement."""

WEBHOOK_ATTEMPTS = 5
WEBHOOK_FIRST_DELAY_S = 0.5
WEBHOOK_MAX_DELAY_S = 30.0
_POLL_MS = 1_000
_IN_FLIGHT_MAX = 200
_IDLE_CHECK_S = 1.0
_PUBLISH_RETRY_MAX_S = 5.0
# How long an alert waits for this worker to read the workflow version it names.
_CATALOG_WAIT_S = 30.0


class WebhookPoster(Protocol):
    """What POSTs an alert to a webhook: `connectors.alert_webhooks` in a worker."""

    async def post(self, url: str, document: Mapping[str, Any]) -> None:
        """POST `document` as a structured CloudEvent; raise on anything but a 2xx."""
        ...


class DepartmentAlerts:
    """Follows the lifecycle topic and sends each department's alerts."""

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        queue: Queue,
        ensure_topic: Callable[[str], Awaitable[None]],
        webhooks: WebhookPoster,
        secrets: SecretsProvider,
        *,
        attempts: int = WEBHOOK_ATTEMPTS,
        first_delay_s: float = WEBHOOK_FIRST_DELAY_S,
    ) -> None:
        self._settings = settings
        self._catalog = catalog
        self._queue = queue
        self._ensure_topic = ensure_topic
        self._webhooks = webhooks
        self._secrets = secrets
        self._attempts = attempts
        self._first_delay_s = first_delay_s
        self.group_id = f"{settings.prefix}-alerts"
        self._commits = Commits(self.group_id)
        self._running: set[asyncio.Task[None]] = set()
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        await self._commits.stop()
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    async def _run(self) -> None:
        # Nothing to alert for until a department is deployed as a definition.
        while not self._catalog.any_department():
            await asyncio.sleep(_IDLE_CHECK_S)
        s = self._settings
        consumer = AIOKafkaConsumer(
            **s.aiokafka_group(f"{s.prefix}-alerts", self.group_id, s.fetch_max_wait_ms)
        )
        while True:
            try:
                await consumer.start()
                break
            except KafkaError as exc:
                # A broker not reachable yet: alerts start late rather than never.
                log.warning("alerts: cannot join group %s yet (%r); retrying", self.group_id, exc)
                await asyncio.sleep(_PUBLISH_RETRY_MAX_S)
        self._commits.follow(consumer, [s.topics.lifecycle])
        self._consumer = consumer
        await self._poll(consumer)

    async def _poll(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            try:
                if len(self._running) >= _IN_FLIGHT_MAX:
                    # Alerts waiting on slow webhooks: poll for nothing, to stay in the group.
                    consumer.pause(*consumer.assignment())
                    await asyncio.sleep(COMMIT_INTERVAL_S)
                    await consumer.getmany(timeout_ms=0, max_records=1)
                    continue
                paused = consumer.paused()
                if paused:
                    consumer.resume(*paused)
                batch = await consumer.getmany(timeout_ms=_POLL_MS, max_records=500)
            except Exception:
                # A dead poll loop would be a silent one: alerts must outlive a broker hiccup.
                log.exception("alerts: polling the lifecycle topic failed; retrying")
                await asyncio.sleep(_PUBLISH_RETRY_MAX_S)
                continue
            for records in batch.values():
                for record in records:
                    self._take(record)

    def _take(self, record: ConsumerRecord[bytes, bytes]) -> None:
        offsets = self._commits.started(record)
        if not _alerting(record):
            # Done at once, so the commit moves past it.
            offsets.finish(record.offset)
            return
        task = asyncio.create_task(self._handle(record, offsets))
        self._running.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("alerts: handling a record failed", exc_info=task.exception())

    async def _handle(
        self, record: ConsumerRecord[bytes, bytes], offsets: PartitionOffsets
    ) -> None:
        try:
            event = decode_event(record.value or b"")
        except CodecError as exc:
            # The projections dead-letter what they cannot read; here it only has no alert.
            log.warning("alerts: skipping an undecodable lifecycle record: %s", exc)
        else:
            try:
                alert = await self._alert_for(event)
                if alert is not None:
                    await self.send(alert)
            except Exception:
                # Logged and passed over: a record that can never be handled must not hold
                # back the partition's commits for ever.
                log.exception("alerts: no alert for %s %s", event.type, event.execution_id)
        offsets.finish(record.offset)

    async def _alert_for(self, event: LifecycleEvent) -> CloudEvent | None:
        deployment = await self._catalog.wait_for(
            catalog_key(event.tenant, event.workflow_id), event.workflow_version, _CATALOG_WAIT_S
        )
        if deployment is None:
            log.warning(
                "alerts: %s %s names workflow %s v%d, which this worker cannot read",
                event.type,
                event.execution_id,
                event.workflow_id,
                event.workflow_version,
            )
            return None
        name = deployment.workflow.definition.department
        departments = self._catalog.departments_of(event.tenant)
        versions = departments.versions(name) if name is not None else []
        if name is None or not versions or event.at < versions[0].deployed_at:
            return None
        return department_alert(event, name, event.tenant)

    async def send(self, alert: CloudEvent) -> None:
        """Publish `alert` on the event bus (until the broker has it), then POST it to its
        department's webhooks."""
        tenant = str(alert.data["tenant"])
        topic = topic_for(ALERT_TYPE, events_prefix_for(tenant, self._settings.events_prefix))
        headers, value = to_structured(alert)
        key = (alert.subject or alert.id).encode()
        delay = 0.1
        while True:
            try:
                await self._ensure_topic(topic)
                await (await self._queue(topic, key, value, headers))
                break
            except Exception as exc:
                log.warning("alerts: publishing %s failed (%r); retrying", alert.id, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _PUBLISH_RETRY_MAX_S)
        department = str(alert.department)
        definition = self._catalog.departments_of(tenant).definition(department)
        urls = definition.alert_webhooks if definition is not None else ()
        document = structured_document(alert)
        await asyncio.gather(*(self._post(url, tenant, department, document) for url in urls))

    async def _post(
        self, url: str, tenant: str, department: str, document: Mapping[str, Any]
    ) -> None:
        # `url` as written, `${secrets.NAME}` and all, is what is logged; the value is looked
        # up at each attempt, as the department's credentials allow, and never logged.
        scope = SecretScope(
            self._secrets,
            tenant,
            self._catalog.departments_of(tenant).secrets_allowed(department),
            department,
        )
        delay = self._first_delay_s
        for attempt in range(1, self._attempts + 1):
            try:
                await self._webhooks.post(resolve_url(url, scope.lookup), document)
            except Exception as exc:
                if attempt == self._attempts or isinstance(exc, SecretError):
                    DEPARTMENT_ALERT_WEBHOOKS.labels(department, "given_up").inc()
                    log.error(
                        "alerts: webhook %s of department %s refused alert %s %d times,"
                        " giving up: %s",
                        url,
                        department,
                        document.get("id"),
                        attempt,
                        scope.redaction.text(str(exc)),
                    )
                    return
                await asyncio.sleep(delay)
                delay = min(delay * 2, WEBHOOK_MAX_DELAY_S)
            else:
                DEPARTMENT_ALERT_WEBHOOKS.labels(department, "delivered").inc()
                return


def _alerting(record: ConsumerRecord[bytes, bytes]) -> bool:
    """Whether a lifecycle record may make an alert, from its `ce_type` header alone."""
    headers: Sequence[tuple[str, bytes]] = record.headers or ()
    return any(name == "ce_type" and value in ALERTING_TYPES for name, value in headers)
