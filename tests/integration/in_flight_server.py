"""An HTTP server on 127.0.0.1 that counts the executions whose requests it holds at once.

Each request to `/hold` is held `hold_s` before its answer. Requests are told apart by their
`Idempotency-Key` (one per execution, node and attempt), as an idempotent service does: a
request sent again while the first is still held counts once, as the same execution's, and
one whose key was answered already is answered again at once, from memory. After a SIGKILL
the executor runs again the tasks whose results it had not committed (at least once), also
of executions that have ended since: those replays do no work and hold nothing.
"""

from __future__ import annotations

import asyncio
from collections import Counter

from aiohttp import web
from background_loop import BackgroundLoop

from braidflow.connectors.broker import free_port


class InFlight:
    """What the server saw: executions held at once (now and at most), and each answered key."""

    def __init__(self, hold_s: float) -> None:
        self.hold_s = hold_s
        self.held: Counter[str] = Counter()
        self.most = 0
        self.answered: Counter[str] = Counter()

    async def hold(self, request: web.Request) -> web.Response:
        key = request.headers.get("Idempotency-Key", "?")
        if key in self.answered:
            self.answered[key] += 1
            return web.json_response({"held": key})
        self.held[key] += 1
        self.most = max(self.most, len(self.held))
        try:
            await asyncio.sleep(self.hold_s)
        finally:
            self.held[key] -= 1
            if not self.held[key]:
                del self.held[key]
        self.answered[key] += 1
        return web.json_response({"held": key})


def serve_in_flight(loop: BackgroundLoop, hold_s: float) -> tuple[InFlight, str, web.AppRunner]:
    """Start the server on the loop; what it counts, its `/hold` URL and its runner."""
    counts = InFlight(hold_s)
    app = web.Application()
    app.router.add_get("/hold", counts.hold)
    port = free_port()
    runner = loop.serve(app, "127.0.0.1", port)
    return counts, f"http://127.0.0.1:{port}/hold", runner


def capped(department: str, cap: int) -> str:
    """A department with a cap."""
    return (
        f"kind: Department\nname: {department}\ndescription: caps\n"
        f"settings: {{max_concurrent_executions: {cap}}}\n"
    )


def holding_workflow(workflow_id: str, department: str, url: str) -> str:
    """A workflow of `department` whose one http node calls the counting server."""
    return f"""
id: {workflow_id}
department: {department}
nodes:
  - {{id: call, type: http, params: {{method: GET, url: "{url}"}}, timeout: 30s}}
  - {{id: done, type: end, params: {{output: "${{nodes.call.output.body}}"}}}}
edges:
  - {{from: call, to: done}}
"""
