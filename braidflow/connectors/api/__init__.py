"""The REST API under /api/v1 (aiohttp, JSON), served by every worker.

One module per resource declares its routes with their OpenAPI description
(`openapi.Resource`); `create_api` only assembles them. Handlers raise the
exceptions of `errors`, and its middleware alone turns them into answers.
"""

from __future__ import annotations

from aiohttp import web

from braidflow.connectors.api.approvals import approvals
from braidflow.connectors.api.audit import OPERATIONS, audit, audit_trail, operations_by_id
from braidflow.connectors.api.authentication import (
    AUTHENTICATION,
    ROLES,
    Authentication,
    TokenVerifier,
    authenticate,
)
from braidflow.connectors.api.backend import BACKEND, Backend, Deployed
from braidflow.connectors.api.dashboard import dashboard, serve_dashboard
from braidflow.connectors.api.dead_letters import dead_letters
from braidflow.connectors.api.departments import departments
from braidflow.connectors.api.drafts import drafts
from braidflow.connectors.api.errors import (
    MAX_BODY_BYTES,
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    Refusal,
    Rejected,
    TooLarge,
    Unauthorized,
    Unavailable,
    Unconfirmed,
    refusals,
)
from braidflow.connectors.api.event_bus import event_bus
from braidflow.connectors.api.events import (
    SIGNATURE_HEADER,
    events,
    signature_ok,
    webhook_secret,
)
from braidflow.connectors.api.executions import FORWARDED_HEADER, executions
from braidflow.connectors.api.keys import keys
from braidflow.connectors.api.live import live
from braidflow.connectors.api.logs import logs
from braidflow.connectors.api.openapi import EXECUTION_STATUSES, Resource, document
from braidflow.connectors.api.operations import DOCUMENT, operations
from braidflow.connectors.api.stats import stats
from braidflow.connectors.api.versions import versions
from braidflow.connectors.api.views import execution_view, not_started_view
from braidflow.connectors.api.workflows import workflows

RESOURCES: tuple[Resource, ...] = (
    workflows,
    versions,
    departments,
    executions,
    logs,
    approvals,
    events,
    dead_letters,
    audit,
    keys,
    stats,
    operations,
    dashboard,
    live,
    event_bus,
    drafts,
)

__all__ = [
    "EXECUTION_STATUSES",
    "FORWARDED_HEADER",
    "MAX_BODY_BYTES",
    "RESOURCES",
    "SIGNATURE_HEADER",
    "Authentication",
    "Backend",
    "BadRequest",
    "Conflict",
    "Deployed",
    "Forbidden",
    "NotFound",
    "Refusal",
    "Rejected",
    "TokenVerifier",
    "TooLarge",
    "Unauthorized",
    "Unavailable",
    "Unconfirmed",
    "create_api",
    "execution_view",
    "not_started_view",
    "signature_ok",
    "webhook_secret",
]


def create_api(backend: Backend, authentication: Authentication | None = None) -> web.Application:
    """The aiohttp application for `backend`: every resource's routes, and their document.

    `authentication` None: off, every request acts as an owner (127.0.0.1 only; the
    runtime checks that).
    """
    # Refusals outermost: an audit record that cannot be written is a refusal too. The
    # caller is known before the audit trail records what it did.
    app = web.Application(
        middlewares=[refusals, authenticate, audit_trail], client_max_size=MAX_BODY_BYTES
    )
    app[BACKEND] = backend
    app[AUTHENTICATION] = authentication or Authentication(None)
    app[ROLES] = {
        op.spec["operationId"]: op.role for resource in RESOURCES for op in resource.operations
    }
    app[DOCUMENT] = document(RESOURCES)
    app[OPERATIONS] = operations_by_id(RESOURCES)
    for resource in RESOURCES:
        resource.add_to(app.router)
    serve_dashboard(app)
    return app
