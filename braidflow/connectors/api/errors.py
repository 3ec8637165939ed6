"""What the API answers when it refuses a request: the exceptions and the one middleware that maps them.

Handlers raise; only `refusals` builds an error response: JSON `{error, problems?, field?}`
with a 4xx naming what was wrong, or a 503 to retry. Anything else is a 500 with a short
message, never a stack trace.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, ClassVar

from aiohttp import web

from braidflow.schemas.cloudevents import CloudEventError
from braidflow.schemas.record_limits import RecordTooLarge
from braidflow.topology import DefinitionError
from braidflow.topology.limits import LimitError

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 2 * 1024 * 1024


class Refusal(Exception):
    """A request the API refuses with `status`; `problems` and `field` say what was wrong."""

    status: ClassVar[int] = 400

    def __init__(
        self, message: str, problems: list[str] | None = None, *, field: str | None = None
    ) -> None:
        super().__init__(message)
        self.problems = problems
        self.field = field

    def body(self) -> dict[str, Any]:
        """The JSON error body: `{error, problems?, field?}`."""
        body: dict[str, Any] = {"error": str(self)}
        if self.problems is not None:
            body["problems"] = self.problems
        if self.field is not None:
            body["field"] = self.field
        return body


class BadRequest(Refusal):
    """The request is malformed: not JSON, a field of the wrong type, unknown fields (400)."""

    status = 400


class Unauthorized(Refusal):
    """No credential, one no worker knows, or not signed as it must be (401)."""

    status = 401


class Forbidden(Refusal):
    """The credential is known, but its role may not do this (403)."""

    status = 403


class NotFound(Refusal):
    """No such workflow, execution, node, approval or dead letter (404)."""

    status = 404


class Conflict(Refusal):
    """The request does not fit the current state, e.g. a second decision (409)."""

    status = 409


class TooLarge(Refusal):
    """What was sent is over a size limit; the message names the size and the limit (413)."""

    status = 413


class Rejected(Refusal):
    """The request breaks a rule of the workflow (422); `problems` name the fields."""

    status = 422


class Unavailable(Refusal):
    """The answer lives on another worker that cannot be reached now; retry later (503)."""

    status = 503


class Unconfirmed(Unavailable):
    """The change was sent but not seen applied in time: it may be made (503). Audited as
    unconfirmed, since a retry may find it made and change nothing."""


class HttpRefusal(Refusal):
    """A refusal aiohttp made itself (no such route, a method not allowed), with its status
    and headers (a 405 names the methods `Allow`s)."""

    def __init__(self, exc: web.HTTPException) -> None:
        super().__init__(exc.reason)
        self.status = exc.status  # type: ignore[misc]
        self.headers = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}


class _Internal(Refusal):
    status = 500


def refusal(exc: BaseException) -> Refusal | None:
    """The refusal `exc` stands for; None for an unexpected failure (a 500)."""
    if isinstance(exc, Refusal):
        return exc
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return TooLarge(f"body: over {MAX_BODY_BYTES:,} bytes, the most a request may send")
    if isinstance(exc, web.HTTPException) and exc.status >= 400:
        return HttpRefusal(exc)
    if isinstance(exc, RecordTooLarge):
        return TooLarge(str(exc))
    if isinstance(exc, LimitError):
        return (TooLarge if exc.too_large else Rejected)(str(exc))
    if isinstance(exc, DefinitionError):
        problems = [str(p) for p in exc.problems]
        if exc.limit is not None:
            return (TooLarge if exc.limit.too_large else Rejected)(str(exc.limit), problems)
        return BadRequest("invalid definition", problems)
    if isinstance(exc, CloudEventError):
        return BadRequest(str(exc), field=exc.field)
    return None


@web.middleware
async def refusals(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Answer every exception a handler raises: its refusal, else a 500 logged with its trace."""
    try:
        return await handler(request)
    except Exception as exc:
        if isinstance(exc, web.HTTPException) and exc.status < 400:
            raise
        found = refusal(exc)
        if found is None:
            log.exception("API request %s %s failed", request.method, request.path)
            found = _Internal("internal error; the worker log has the details")
    headers = found.headers if isinstance(found, HttpRefusal) else None
    return web.json_response(found.body(), status=found.status, headers=headers)
