"""Starting executions for events, webhook calls and schedule slots.

An execution started for an event has an id derived from (event source,
event id, workflow): the same event delivered twice, replayed or re-read
after a crash names the same execution, and the engine ignores a start it
already has.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from braidflow.config import Settings
from braidflow.engine import StartExecution, ids
from braidflow.engine.ids import execution_id_for
from braidflow.engine.trace_context import HEADER as TRACEPARENT
from braidflow.engine.trace_context import ExecutionTrace, valid_traceparent
from braidflow.schemas import encode_transition
from braidflow.schemas.record_limits import check_record
from braidflow.streams.catalog import Catalog, Deployment

Send = Callable[..., Awaitable[Awaitable[Any]]]
"""Queue (topic, key, value[, headers]); the returned future resolves on acknowledgement."""


def event_input(event: Mapping[str, Any]) -> Any:
    """An event-started execution's input: the event's data when it is an object."""
    data = event.get("data")
    return data if isinstance(data, dict) else {}


class Starts:
    """Sends the start of the latest version of a workflow for an event.

    A start over `max_record_bytes` is RecordTooLarge before anything is sent.
    """

    def __init__(
        self,
        transitions_topic: str,
        catalog: Catalog,
        send: Send,
        clock: Callable[[], int],
        max_record_bytes: int = Settings().max_value_bytes,
    ) -> None:
        self._topic = transitions_topic
        self._catalog = catalog
        self._send = send
        self._clock = clock
        self._max_record_bytes = max_record_bytes

    def prepare(
        self, workflow_id: str, event: Mapping[str, Any]
    ) -> tuple[Deployment, StartExecution, bytes] | None:
        """The start `start` would send, encoded; None when the workflow is not deployed.

        `workflow_id` is a catalog key (`braidflow.tenants.catalog_key`): the execution
        belongs to that workflow's tenant. RecordTooLarge if it cannot be sent.
        """
        deployment = self._catalog.latest(workflow_id)
        if deployment is None:
            return None
        execution_id = execution_id_for(event, deployment.workflow_id, deployment.tenant)
        start = StartExecution(
            ids.start_id(execution_id),
            execution_id,
            self._clock(),
            deployment.workflow_id,
            deployment.version,
            event_input(event),
            # The same object for every workflow the event starts: its JSON is built once.
            event if isinstance(event, dict) else dict(event),
            tenant=deployment.tenant,
            # The CloudEvents traceparent extension: the execution joins the event's trace.
            traceparent=valid_traceparent(event.get(TRACEPARENT)),
        )
        encoded = encode_transition(start)
        check_record("event", encoded, f"the start of {workflow_id!r}", self._max_record_bytes)
        return deployment, start, encoded

    async def send(self, start: StartExecution, encoded: bytes) -> Awaitable[Any]:
        """Queue a prepared start, its `traceparent` header naming the execution's span (as
        the API's starts do); its acknowledgement."""
        header = ExecutionTrace.of(start.execution_id, start.traceparent).header
        key = start.execution_id.encode()
        return await self._send(self._topic, key, encoded, [(TRACEPARENT, header.encode())])

    async def start(
        self, workflow_id: str, event: Mapping[str, Any]
    ) -> tuple[str, Awaitable[Any]] | None:
        """(execution id, acknowledgement); None when the workflow is not deployed.

        RecordTooLarge, with nothing sent, if the start cannot be.
        """
        prepared = self.prepare(workflow_id, event)
        if prepared is None:
            return None
        _, start, encoded = prepared
        return start.execution_id, await self.send(start, encoded)
