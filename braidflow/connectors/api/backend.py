"""What the API needs from the runtime: the `Backend` protocol the worker implements."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from aiohttp import web

from braidflow.connectors.api.caller import principal_of
from braidflow.connectors.execution_search import ExecutionSearch
from braidflow.connectors.lifecycle_feed import LifecycleFeed
from braidflow.schemas.audit import AuditRecord
from braidflow.schemas.cloudevents import CloudEvent
from braidflow.topology import Workflow
from braidflow.topology.departments import Department
from braidflow.topology.drafts import Ask


class Deployed(Protocol):
    workflow_id: str
    version: int
    text: str
    deployed_at: int
    workflow: Workflow
    deployed_by: str | None
    restores: int | None
    rolled_back_from: int | None


class DeployedDepartment(Protocol):
    name: str
    version: int
    text: str
    deployed_at: int
    deployed_by: str | None
    department: Department


class Backend(Protocol):
    """What the API needs from the runtime, for one tenant."""

    def for_tenant(self, tenant: str) -> Backend:
        """The backend answering for `tenant`: its objects only, deploys and starts into it."""
        ...

    def latest(self, workflow_id: str) -> Deployed | None: ...

    def get(self, workflow_id: str, version: int) -> Deployed | None: ...

    def all_latest(self) -> list[Deployed]: ...

    def versions(self, workflow_id: str) -> list[Deployed]: ...

    async def deploy(
        self, text: str, by: str | None = None, restores: int | None = None
    ) -> tuple[Deployed, bool]: ...

    def task_handlers(self) -> list[str]: ...

    def draft_connections(self) -> list[str]:
        """The llm connections a draft may ask (docs/drafts.md)."""
        ...

    def draft_ask(self, connection: str, model: str) -> Ask:
        """The question of one draft to `model` at `connection`, with this tenant's secrets."""
        ...

    def departments(self) -> list[DeployedDepartment]: ...

    def department(self, name: str) -> DeployedDepartment | None: ...

    async def deploy_department(
        self, text: str, by: str | None = None
    ) -> tuple[DeployedDepartment, bool]: ...

    async def remove(self, workflow_id: str) -> bool: ...

    async def start_execution(
        self, deployment: Deployed, input_: Any, traceparent: str | None = None
    ) -> str: ...

    async def execution(self, execution_id: str, forwarded: bool) -> Mapping[str, Any] | None: ...

    async def execution_summary(self, execution_id: str) -> Mapping[str, Any] | None:
        """The execution as this worker's execution index lists it (no forwarding)."""
        ...

    async def node_logs(self, execution_id: str) -> list[dict[str, Any]]:
        """What the handlers of the execution's node runs logged, as the API shows it."""
        ...

    def lifecycle_feed(self) -> LifecycleFeed | None:
        """Each execution's lifecycle events, for streams and waits (None: not kept here)."""
        ...

    def ready(self) -> bool: ...

    async def publish_event(self, event: CloudEvent) -> str: ...

    def webhook_workflows(self, name: str) -> list[str]: ...

    async def start_for_event(
        self, workflow_ids: list[str], event: CloudEvent
    ) -> list[dict[str, str]]: ...

    async def executions_of(
        self, workflow_id: str, limit: int, search: ExecutionSearch
    ) -> list[dict[str, Any]]: ...

    async def search_executions(
        self, limit: int, search: ExecutionSearch, workflows: Sequence[str] | None
    ) -> list[dict[str, Any]]:
        """The executions `search` finds, of every workflow or only of `workflows`, newest
        first, at most `limit` (see `ExecutionIndex.search`)."""
        ...

    async def pending_approvals(
        self, workflow_id: str | None, department: str | None
    ) -> list[dict[str, Any]]: ...

    async def recent_events(
        self, limit: int, workflows: Sequence[str] | None
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The newest executions started by an event and waits an event resumed, at most
        `limit` of each (see `ExecutionIndex.recent_events`)."""
        ...

    async def decide(
        self, execution_id: str, node_id: str, decision: Mapping[str, Any]
    ) -> dict[str, Any]: ...

    async def control(self, execution_id: str, action: str, by: str, reason: str) -> None: ...

    async def dead_letters(
        self, kind: str | None, workflow_id: str | None, limit: int
    ) -> list[dict[str, Any]]: ...

    async def dead_letter(self, dead_letter_id: str) -> dict[str, Any] | None: ...

    async def redrive(
        self, dead_letter_id: str, patched_input: Any, has_input: bool, by: str
    ) -> dict[str, Any]: ...

    async def backfill(
        self, workflow_id: str, from_ms: int, to_ms: int | None
    ) -> dict[str, Any]: ...

    def now_ms(self) -> int: ...

    async def stats(
        self, scope: str, name: str, window: str, from_ms: int, to_ms: int, forwarded: bool
    ) -> list[dict[str, Any]]:
        """The buckets of a workflow's or a department's (`scope`) figures in [from, to)."""
        ...

    async def write_audit(self, record: AuditRecord) -> None: ...

    async def audit_log(
        self,
        tenant: str,
        principal: str | None,
        target: str | None,
        from_ms: int | None,
        to_ms: int | None,
        limit: int,
    ) -> list[dict[str, Any]]: ...


BACKEND = web.AppKey("backend", Backend)


def backend_of(request: web.Request) -> Backend:
    """The backend of the application `request` came to, answering for the caller's tenant:
    another tenant's objects are not found through it, as if they did not exist."""
    return request.app[BACKEND].for_tenant(principal_of(request).tenant)
