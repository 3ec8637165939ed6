"""What runs `fetch_page` nodes: a GET through the worker's http node client, then the fields
the node selects, picked out of the page by CSS selectors (Beautiful Soup with soupsieve).

Only the selected fields become the output, so a page may be larger than an http node's body
(`MAX_PAGE_BYTES`); the text of a match has its whitespace collapsed, as a reader sees it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from braidflow.connectors.http import HttpNodeClient
from braidflow.engine.messages import TaskRequest
from braidflow.node_logs import NodeLog
from braidflow.secrets import SecretScope
from braidflow.tasks import NodeFailure
from braidflow.topology.kinds.fetch_page import selector
from braidflow.topology.secret_references import resolve_references

if TYPE_CHECKING:
    from bs4 import Tag

MAX_PAGE_BYTES = 5 * 1024 * 1024
"""Largest page a `fetch_page` node reads."""


class PageFetch:
    """Runs `fetch_page` nodes through `http` (started and stopped by its owner)."""

    def __init__(self, http: HttpNodeClient) -> None:
        self._http = http

    async def __call__(self, request: TaskRequest, secrets: SecretScope, node_log: NodeLog) -> Any:
        given = request.input
        if not isinstance(given, Mapping) or not isinstance(given.get("select"), Mapping):
            raise NodeFailure(
                "InvalidRequest", f"fetch_page input is not a page request: {given!r}"
            )
        call = resolve_references(
            {"method": "GET", "url": given.get("url"), "headers": given.get("headers")},
            secrets.lookup,
        )
        answer = await self._http.call(
            call,
            request.timeout_ms,
            request.idempotency_key,
            request.traceparent,
            max_body_bytes=MAX_PAGE_BYTES,
        )
        body = answer["body"]
        page = body if isinstance(body, str) else ""
        return {"status": answer["status"], **picked(page, given["select"])}


def picked(page: str, select: Mapping[str, Any]) -> dict[str, Any]:
    """The page's title and each selected field: the first match's text (or attribute), None
    when nothing matches; with `all`, every match's, as a list."""
    # Imported at the first page: Beautiful Soup and soupsieve take a tenth of a second to
    # import, which every worker's start would pay whether it reads pages or not.
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(page, "html.parser")
    title = None if soup.title is None else _value(soup.title, None)
    fields: dict[str, Any] = {}
    for name, field in select.items():
        css = selector(field)
        attr = field.get("attr") if isinstance(field, Mapping) else None
        every = isinstance(field, Mapping) and field.get("all") is True
        if css is None:
            raise NodeFailure("InvalidRequest", f"select.{name}: no CSS selector")
        if every:
            fields[name] = [_value(tag, attr) for tag in soup.select(css)]
        else:
            first = soup.select_one(css)
            fields[name] = None if first is None else _value(first, attr)
    return {"title": title, "fields": fields}


def _value(tag: Tag, attr: str | None) -> str | None:
    if attr is None:
        return " ".join(tag.get_text(" ").split())
    value = tag.get(attr)
    if isinstance(value, list):
        # Multi-valued attributes (class, rel) come as lists; as text they are space-separated.
        return " ".join(value)
    return value
