"""The little HTTP services the examples call, so they run with nothing else installed.

Dev mode starts them on 127.0.0.1:8090 (`DEMO_PORT`, `--demo-port`); the examples
read that address (`DEMO_URL`) from `variables.base_url`, and dev mode deploys them
pointed at the port it serves them on. Everything is deterministic: a fixed
catalogue, fixed quote formulas, and order ids from a counter.

    GET  /inventory/{sku}          the catalogue entry, 404 for an unknown sku
    POST /orders                   201 with an order id; an `Idempotency-Key` seen
                                   before returns the same order again
    GET  /health?service=S&down=1  503 {"status": "down"} when `down` is 1/true/yes,
                                   else 200 {"status": "up"}
    GET  /quotes/{carrier}?weight_grams=N
                                   a shipping quote from carrier `a` or `c`
    POST /it                       {"ok": true}, the IT check of new-hire-approval
    GET  /jobs/{id}?ready_after=N  {job, status, polls}: `running` for the first N - 1
                                   polls of that job id, `done` from the Nth on (N
                                   defaults to 3); the job poll-until-done waits for

The helpdesk the support department calls (examples/support/) wants `Authorization:
Bearer <token>`, the token dev mode gives it and its workflows (`${secrets.helpdesk}`);
401 otherwise:

    POST /helpdesk/tickets/{id}/assign    {queue, reply_to} -> {ticket_id, queue, assignee,
                                          reply_to}: `urgent` goes to ada, the rest to bob
    POST /helpdesk/tickets/{id}/escalate  {assignee, cc} -> {ticket_id, escalated, cc}
    POST /helpdesk/surveys                {ticket_id, to, reply_to, subject} -> 201
                                          {survey_id, ticket_id, subject}; an
                                          `Idempotency-Key` seen before: the same survey
    GET  /helpdesk/stats?days=N           {days, assigned, escalated, surveys} so far
    POST /alerts                          an alert (a department's alert channel): 204
    GET  /alerts                          {"alerts": [...]}, every alert received, in order

Run them alone with `python -m braidflow.connectors.demo_services [PORT]` (the helpdesk
token from BRAIDFLOW_SECRET_helpdesk; without it the helpdesk refuses every call).
"""

from __future__ import annotations

import hmac
import itertools
import json
import os
import sys
from typing import Any

from aiohttp import web

DEMO_HOST = "127.0.0.1"
DEMO_PORT = 8090
DEMO_URL = f"http://{DEMO_HOST}:{DEMO_PORT}"
HELPDESK_SECRET = "helpdesk"
"""The secret the support department's workflows send the helpdesk (`${secrets.helpdesk}`)."""
HELPDESK_TOKEN_ENV = f"BRAIDFLOW_SECRET_{HELPDESK_SECRET}"

CATALOGUE: dict[str, dict[str, Any]] = {
    "widget-1": {"name": "Widget", "unit_price_cents": 1250, "available": 40},
    "gadget-7": {"name": "Gadget", "unit_price_cents": 4999, "available": 3},
    "gizmo-3": {"name": "Gizmo", "unit_price_cents": 799, "available": 0},
}

# Carrier: (base price, price per started 500 g, days to deliver). Carrier `b`
# is not an HTTP service: the fan-out example prices it with a task handler.
CARRIERS: dict[str, tuple[int, int, int]] = {
    "a": (689, 100, 1),
    "c": (299, 200, 5),
}

_ORDERS = web.AppKey("orders", dict)
_ORDER_IDS = web.AppKey("order_ids", itertools.count)
_JOB_POLLS = web.AppKey("job_polls", dict)
_HELPDESK_TOKEN = web.AppKey("helpdesk_token", str)
_HELPDESK_COUNTS = web.AppKey("helpdesk_counts", dict)
_SURVEYS = web.AppKey("surveys", dict)
_ALERTS = web.AppKey("alerts", list)

_TRUTHY = frozenset({"1", "true", "yes", "on"})


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _inventory(request: web.Request) -> web.Response:
    sku = request.match_info["sku"]
    item = CATALOGUE.get(sku)
    if item is None:
        return _error(404, f"unknown sku {sku!r}")
    return web.json_response({"sku": sku, "currency": "EUR", **item})


async def _place_order(request: web.Request) -> web.Response:
    try:
        order = await request.json()
    except json.JSONDecodeError:
        return _error(400, "the body must be JSON")
    if not isinstance(order, dict):
        return _error(400, "the body must be a JSON object")
    missing = [f for f in ("sku", "quantity", "total_cents") if f not in order]
    if missing:
        return _error(400, f"missing {', '.join(missing)}")
    # A retried call (same idempotency key) must not place a second order.
    key = request.headers.get("Idempotency-Key")
    orders = request.app[_ORDERS]
    if key is not None and key in orders:
        return web.json_response(orders[key], status=201)
    placed = {
        "order_id": f"ord-{next(request.app[_ORDER_IDS]):04d}",
        "status": "accepted",
        **{f: order[f] for f in ("sku", "quantity", "total_cents")},
    }
    if key is not None:
        orders[key] = placed
    return web.json_response(placed, status=201)


async def _health(request: web.Request) -> web.Response:
    service = request.query.get("service", "demo")
    if request.query.get("down", "").lower() in _TRUTHY:
        return web.json_response({"service": service, "status": "down"}, status=503)
    return web.json_response({"service": service, "status": "up"})


def quote_price(base_cents: int, per_500g_cents: int, weight_grams: int) -> int:
    """Base price plus a rate for every started 500 g."""
    return base_cents + per_500g_cents * -(-weight_grams // 500)


async def _quote(request: web.Request) -> web.Response:
    carrier = request.match_info["carrier"]
    if carrier not in CARRIERS:
        return _error(404, f"unknown carrier {carrier!r}")
    try:
        weight = int(request.query.get("weight_grams", ""))
    except ValueError:
        return _error(400, "weight_grams must be an integer")
    if weight <= 0:
        return _error(400, "weight_grams must be positive")
    base, per_500g, days = CARRIERS[carrier]
    return web.json_response(
        {"carrier": carrier, "price_cents": quote_price(base, per_500g, weight), "days": days}
    )


async def _it_check(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def _job(request: web.Request) -> web.Response:
    job = request.match_info["job"]
    try:
        ready_after = int(request.query.get("ready_after", "3"))
    except ValueError:
        return _error(400, "ready_after must be an integer")
    if ready_after < 1:
        return _error(400, "ready_after must be positive")
    polls = request.app[_JOB_POLLS]
    polls[job] = polls.get(job, 0) + 1
    status = "done" if polls[job] >= ready_after else "running"
    return web.json_response({"job": job, "status": status, "polls": polls[job]})


async def _helpdesk_body(request: web.Request) -> dict[str, Any]:
    """The JSON object a helpdesk call sends, once its token is the helpdesk's; raises the
    refusal (401, 400) as an HTTP exception."""
    token = request.app[_HELPDESK_TOKEN]
    given = request.headers.get("Authorization", "")
    if not token or not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        raise web.HTTPUnauthorized(
            text=json.dumps({"error": "the helpdesk wants Authorization: Bearer <its token>"}),
            content_type="application/json",
        )
    if request.method == "GET":
        return {}
    try:
        body = await request.json()
    except json.JSONDecodeError:
        body = None
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "the body must be a JSON object"}),
            content_type="application/json",
        )
    return body


def _count(request: web.Request, what: str) -> None:
    counts = request.app[_HELPDESK_COUNTS]
    counts[what] = counts.get(what, 0) + 1


async def _assign(request: web.Request) -> web.Response:
    body = await _helpdesk_body(request)
    queue = str(body.get("queue", "standard"))
    _count(request, "assigned")
    return web.json_response(
        {
            "ticket_id": request.match_info["ticket"],
            "queue": queue,
            "assignee": "ada" if queue == "urgent" else "bob",
            "reply_to": body.get("reply_to"),
        }
    )


async def _escalate(request: web.Request) -> web.Response:
    body = await _helpdesk_body(request)
    _count(request, "escalated")
    return web.json_response(
        {"ticket_id": request.match_info["ticket"], "escalated": True, "cc": body.get("cc")}
    )


async def _survey(request: web.Request) -> web.Response:
    body = await _helpdesk_body(request)
    surveys = request.app[_SURVEYS]
    key = request.headers.get("Idempotency-Key")
    if key is not None and key in surveys:
        return web.json_response(surveys[key], status=201)
    _count(request, "surveys")
    survey = {
        "survey_id": f"survey-{request.app[_HELPDESK_COUNTS]['surveys']:04d}",
        "ticket_id": body.get("ticket_id"),
        "subject": body.get("subject"),
    }
    if key is not None:
        surveys[key] = survey
    return web.json_response(survey, status=201)


async def _stats(request: web.Request) -> web.Response:
    await _helpdesk_body(request)
    try:
        days = int(request.query.get("days", "7"))
    except ValueError:
        return _error(400, "days must be an integer")
    counts = request.app[_HELPDESK_COUNTS]
    figures = {w: counts.get(w, 0) for w in ("assigned", "escalated", "surveys")}
    return web.json_response({"days": days, **figures})


async def _receive_alert(request: web.Request) -> web.Response:
    try:
        alert = await request.json()
    except json.JSONDecodeError:
        return _error(400, "the body must be JSON")
    request.app[_ALERTS].append(alert)
    return web.Response(status=204)


async def _alerts(request: web.Request) -> web.Response:
    return web.json_response({"alerts": request.app[_ALERTS]})


def demo_app(helpdesk_token: str | None = None) -> web.Application:
    """The demo services as one aiohttp application; the helpdesk takes calls bearing
    `helpdesk_token` only (none: it refuses every call)."""
    app = web.Application()
    app[_ORDERS] = {}
    app[_ORDER_IDS] = itertools.count(1)
    app[_JOB_POLLS] = {}
    app[_HELPDESK_TOKEN] = helpdesk_token or ""
    app[_HELPDESK_COUNTS] = {}
    app[_SURVEYS] = {}
    app[_ALERTS] = []
    app.router.add_get("/inventory/{sku}", _inventory)
    app.router.add_post("/orders", _place_order)
    app.router.add_get("/health", _health)
    app.router.add_get("/quotes/{carrier}", _quote)
    app.router.add_post("/it", _it_check)
    app.router.add_get("/jobs/{job}", _job)
    app.router.add_post("/helpdesk/tickets/{ticket}/assign", _assign)
    app.router.add_post("/helpdesk/tickets/{ticket}/escalate", _escalate)
    app.router.add_post("/helpdesk/surveys", _survey)
    app.router.add_get("/helpdesk/stats", _stats)
    app.router.add_post("/alerts", _receive_alert)
    app.router.add_get("/alerts", _alerts)
    return app


def pointed_at(text: str, demo_url: str) -> str:
    """An example's definition calling the demo services at `demo_url`: the examples name
    DEMO_URL in `variables.base_url`."""
    return text if demo_url == DEMO_URL else text.replace(DEMO_URL, demo_url)


async def start_demo_services(
    host: str = DEMO_HOST, port: int = DEMO_PORT, helpdesk_token: str | None = None
) -> web.AppRunner:
    """Serve the demo services on host:port; stop them with `stop_demo_services`."""
    runner = web.AppRunner(demo_app(helpdesk_token), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


async def stop_demo_services(runner: web.AppRunner) -> None:
    await runner.cleanup()


if __name__ == "__main__":
    web.run_app(
        demo_app(os.environ.get(HELPDESK_TOKEN_ENV)),
        host=DEMO_HOST,
        port=int(sys.argv[1]) if len(sys.argv) > 1 else DEMO_PORT,
    )
