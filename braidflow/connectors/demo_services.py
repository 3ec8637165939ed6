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

Run them alone with `python -m braidflow.connectors.demo_services [PORT]`.
"""

from __future__ import annotations

import itertools
import json
import sys
from typing import Any

from aiohttp import web

DEMO_HOST = "127.0.0.1"
DEMO_PORT = 8090
DEMO_URL = f"http://{DEMO_HOST}:{DEMO_PORT}"

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


def demo_app() -> web.Application:
    """The demo services as one aiohttp application."""
    app = web.Application()
    app[_ORDERS] = {}
    app[_ORDER_IDS] = itertools.count(1)
    app[_JOB_POLLS] = {}
    app.router.add_get("/inventory/{sku}", _inventory)
    app.router.add_post("/orders", _place_order)
    app.router.add_get("/health", _health)
    app.router.add_get("/quotes/{carrier}", _quote)
    app.router.add_post("/it", _it_check)
    app.router.add_get("/jobs/{job}", _job)
    return app


def pointed_at(text: str, demo_url: str) -> str:
    """An example's definition calling the demo services at `demo_url`: the examples name
    DEMO_URL in `variables.base_url`."""
    return text if demo_url == DEMO_URL else text.replace(DEMO_URL, demo_url)


async def start_demo_services(host: str = DEMO_HOST, port: int = DEMO_PORT) -> web.AppRunner:
    """Serve the demo services on host:port; stop them with `stop_demo_services`."""
    runner = web.AppRunner(demo_app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


async def stop_demo_services(runner: web.AppRunner) -> None:
    await runner.cleanup()


if __name__ == "__main__":
    web.run_app(
        demo_app(), host=DEMO_HOST, port=int(sys.argv[1]) if len(sys.argv) > 1 else DEMO_PORT
    )
