"""Server-Sent Events as the API writes them: one frame per lifecycle event, and the comment
that keeps an idle stream open through proxies (`text/event-stream`, the WHATWG format)."""

from __future__ import annotations

EVENT_STREAM = "text/event-stream"
KEEPALIVE_S = 15.0
"""How long a stream stays silent at most: then a keepalive comment goes out."""
KEEPALIVE = b": keepalive\n\n"


def sse_frame(event_id: str, event_type: str, data: str) -> bytes:
    """One event: `id`, `event` and `data` lines, then the blank line that ends it.

    `data` is JSON text; a line break in it would end the field, so each line of it gets
    its own `data:` field (readers join them with a line break again).
    """
    for name, value in (("id", event_id), ("event", event_type)):
        if "\n" in value or "\r" in value:
            raise ValueError(f"an SSE {name} cannot hold a line break: {value!r}")
    lines = [f"id: {event_id}", f"event: {event_type}"]
    lines += [f"data: {line}" for line in data.splitlines() or [""]]
    return ("\n".join(lines) + "\n\n").encode()
