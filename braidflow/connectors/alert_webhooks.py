"""POSTing department alerts to their webhooks (braidflow.streams.alerts retries and counts).

The body is the alert as a structured CloudEvent (`application/cloudevents+json`); any 2xx
is taken. A session of its own, without cookies, and a short timeout: a webhook that hangs
costs an attempt, not the alerts behind it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aiohttp

from braidflow.schemas.cloudevents import STRUCTURED_CONTENT_TYPE

TIMEOUT_S = 10.0


class AlertWebhooks:
    """`start` before the first `post`, `stop` at shutdown."""

    def __init__(self, timeout_s: float = TIMEOUT_S) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                cookie_jar=aiohttp.DummyCookieJar(), timeout=self._timeout
            )

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(self, url: str, document: Mapping[str, Any]) -> None:
        """POST the alert; aiohttp.ClientError or TimeoutError when it is not taken."""
        if self._session is None:
            raise RuntimeError("AlertWebhooks.post before start()")
        body = json.dumps(document, separators=(",", ":")).encode()
        headers = {"Content-Type": f"{STRUCTURED_CONTENT_TYPE}; charset=utf-8"}
        async with self._session.post(url, data=body, headers=headers) as response:
            if response.status // 100 != 2:
                text = (await response.text(errors="replace"))[:200]
                raise aiohttp.ClientResponseError(
                    response.request_info,
                    response.history,
                    status=response.status,
                    message=f"answered {response.status}: {text}",
                )
