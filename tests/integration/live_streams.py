"""Reading the API's Server-Sent Events streams in tests, as any HTTP client would."""

from __future__ import annotations

import http.client
import time
import urllib.parse
from dataclasses import dataclass

from workers import WorkerApi

from braidflow.client_stream import StreamEvent, parse_sse

# A liveness bound, not a timing: a stream that never ends fails the test at this.
STREAM_DEADLINE_S = 60.0
# The edges of the live tests' fan-outs, `split` into `left` and `right` that `meet` before
# `done`; braces doubled, as the workflows are `str.format` templates.
SPLIT_MEET_EDGES = """edges:
  - {{from: split, to: left}}
  - {{from: split, to: right}}
  - {{from: left, to: meet}}
  - {{from: right, to: meet}}
  - {{from: meet, to: done}}
"""


@dataclass(frozen=True)
class StreamRead:
    """A stream's status, its headers, the events read, and whether the server ended it."""

    status: int
    content_type: str
    events: list[StreamEvent]
    ended: bool

    @property
    def types(self) -> list[str]:
        return [e.type for e in self.events]


def _connect(api: WorkerApi, path: str, headers: dict[str, str]) -> http.client.HTTPResponse:
    url = urllib.parse.urlsplit(api.base_url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=STREAM_DEADLINE_S)
    sent = {"Accept": "text/event-stream", **headers}
    if api.key:
        sent["Authorization"] = f"Bearer {api.key}"
    connection.request("GET", f"/api/v1{path}", headers=sent)
    return connection.getresponse()


def read_stream(
    api: WorkerApi,
    path: str,
    last_event_id: str | None = None,
    until_type: str | None = None,
    until_id: str | None = None,
) -> StreamRead:
    """Read the stream at `/api/v1<path>` until the server ends it (or, with `until_type`
    or `until_id`, until an event of that type or id arrives, then hang up)."""
    headers = {} if last_event_id is None else {"Last-Event-ID": last_event_id}
    response = _connect(api, path, headers)
    content_type = response.getheader("Content-Type") or ""
    if response.status != 200:
        response.read()
        return StreamRead(response.status, content_type, [], True)
    events: list[StreamEvent] = []
    pending: list[str] = []
    # Keepalives come every 15 s: the socket's timeout alone would never end a silent stream.
    deadline = time.monotonic() + STREAM_DEADLINE_S
    try:
        while time.monotonic() < deadline:
            line = response.readline().decode()
            if not line:
                return StreamRead(200, content_type, events, True)
            pending.append(line)
            if line.strip():
                continue
            events += parse_sse(pending)
            pending = []
            if any(e.type == until_type or e.id == until_id for e in events):
                return StreamRead(200, content_type, events, False)
        return StreamRead(200, content_type, events, False)
    finally:
        response.close()


def stream_status(api: WorkerApi, path: str) -> int:
    """The status a stream answers with, read off its head; then hang up."""
    response = _connect(api, path, {})
    try:
        return response.status
    finally:
        response.close()
