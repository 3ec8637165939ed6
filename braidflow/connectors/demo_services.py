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

Stand-ins for a model and a mail server, for the examples' `llm`, `classify` and `email`
nodes (dev mode's connections `model` and `mail`, `demo_connections`):

    POST /v1/chat/completions  an OpenAI-compatible chat endpoint answering deterministically,
                               no model behind it: a label asked for by an enum is the first
                               label named in the text (else the first label), a text is a
                               reply saying it comes from the demo model; a draft (its
                               system message braidflow's drafting instructions) is told
                               it cannot draft, and how to point `model` at a real endpoint
    GET  /mail                 {"mails": [...]}, every mail the demo SMTP sink received
                               ({from, to, subject, message_id, text}), in order; the sink
                               (aiosmtpd) listens on `mail_port` when one is given

Run them alone with `python -m braidflow.connectors.demo_services [PORT]` (the helpdesk
token from BRAIDFLOW_SECRET_helpdesk; without it the helpdesk refuses every call).
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import hmac
import itertools
import json
import os
import re
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from braidflow.topology.drafts import DECLINE, INSTRUCTIONS

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
_MAILS = web.AppKey("mails", list)

MODEL_CONNECTION = "model"
MAIL_CONNECTION = "mail"
DEMO_REPLY = (
    "Hello,\n\nthank you for writing to us about: {topic}\n\nWe are on it and will get back"
    " to you shortly.\n\n(Written by braidflow dev's demo model, a stand-in that answers"
    " every ticket alike: give dev mode a connections file naming a real endpoint as"
    " `model`, docs/llm.md.)"
)

DEMO_NO_DRAFT = (
    f"{DECLINE} this is braidflow dev's stand-in model, which answers without a model behind"
    " it and cannot write workflow definitions. To draft, point the `model` connection at a"
    " real endpoint: give `braidflow dev --connections FILE` a file naming `model`"
    ' (docs/llm.md, "In dev mode"), then ask again with a model that endpoint serves.'
)

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


async def _chat(request: web.Request) -> web.Response:
    try:
        body = await request.json()
        asked = [m for m in body["messages"] if isinstance(m, dict)]
    except (json.JSONDecodeError, KeyError, TypeError):
        return web.json_response(
            {"error": {"message": "expected a JSON body with messages", "type": "invalid"}},
            status=400,
        )
    text = next((str(m.get("content", "")) for m in asked if m.get("role") == "user"), "")
    system = next((str(m.get("content", "")) for m in asked if m.get("role") == "system"), "")
    if system.startswith(INSTRUCTIONS):
        content = DEMO_NO_DRAFT
    else:
        content = demo_answer(text, body.get("response_format"))
    prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in asked)
    completion_tokens = len(content.split())
    return web.json_response(
        {
            "id": "chatcmpl-demo",
            "object": "chat.completion",
            "created": 0,
            "model": body.get("model"),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
    )


def demo_answer(text: str, response_format: Any) -> str:
    """The demo model's answer to `text`: for an enum of labels (a classify node), the first
    label the text names as a word, else the first label; for other JSON, `{}`; else a reply
    that says it is the demo model's."""
    if not isinstance(response_format, dict):
        topic = text.strip().splitlines()[0][:80] if text.strip() else "your ticket"
        return DEMO_REPLY.format(topic=topic)
    schema = response_format.get("json_schema", {}).get("schema", {})
    labels = schema.get("properties", {}).get("label", {}).get("enum")
    if not isinstance(labels, list) or not labels:
        return "{}"
    words = set(re.findall(r"[a-z0-9_-]+", text.lower()))
    return json.dumps({"label": next((la for la in labels if str(la).lower() in words), labels[0])})


class _MailSink:
    """aiosmtpd's handler: every message is kept (GET /mail) and told to `on_mail`."""

    def __init__(self, mails: list[dict[str, Any]], on_mail: Callable[[dict[str, Any]], None]):
        self._mails = mails
        self._on_mail = on_mail

    async def handle_DATA(
        self, server: Any, session: Any, envelope: Any
    ) -> str:  # aiosmtpd names it
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = message.get_body(("plain",))
        mail = {
            "from": envelope.mail_from,
            "to": list(envelope.rcpt_tos),
            "subject": str(message.get("Subject", "")),
            "message_id": str(message.get("Message-ID", "")),
            # SMTP carries CRLF line ends; shown to people, the text has plain ones.
            "text": body.get_content().replace("\r\n", "\n") if body is not None else "",
        }
        self._mails.append(mail)
        self._on_mail(mail)
        return "250 OK: kept by the demo mail sink, not delivered"


def _mail_sink(
    port: int, on_mail: Callable[[dict[str, Any]], None]
) -> Callable[[web.Application], AsyncIterator[None]]:
    async def serve(app: web.Application) -> AsyncIterator[None]:
        # Imported here: only dev mode and the tests serve mail, a worker never does.
        from aiosmtpd.smtp import SMTP

        sink = _MailSink(app[_MAILS], on_mail)
        server = await asyncio.get_running_loop().create_server(
            lambda: SMTP(sink, hostname="demo-mail-sink"), DEMO_HOST, port
        )
        yield
        server.close()
        await server.wait_closed()

    return serve


async def _mail(request: web.Request) -> web.Response:
    return web.json_response({"mails": request.app[_MAILS]})


def demo_connections(demo_url: str, mail_port: int) -> dict[str, dict[str, str]]:
    """The connections file's entries naming the stand-ins: `model` the demo chat endpoint,
    `mail` the demo SMTP sink."""
    return {
        MODEL_CONNECTION: {"url": f"{demo_url}/v1"},
        MAIL_CONNECTION: {"url": f"smtp://{DEMO_HOST}:{mail_port}"},
    }


def demo_app(
    helpdesk_token: str | None = None,
    mail_port: int | None = None,
    on_mail: Callable[[dict[str, Any]], None] = lambda mail: None,
) -> web.Application:
    """The demo services as one aiohttp application; the helpdesk takes calls bearing
    `helpdesk_token` only (none: it refuses every call); with `mail_port`, the demo SMTP
    sink listens there while the application runs, telling `on_mail` of each mail."""
    app = web.Application()
    app[_MAILS] = []
    if mail_port is not None:
        app.cleanup_ctx.append(_mail_sink(mail_port, on_mail))
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
    app.router.add_post("/v1/chat/completions", _chat)
    app.router.add_get("/mail", _mail)
    return app


def pointed_at(text: str, demo_url: str) -> str:
    """An example's definition calling the demo services at `demo_url`: the examples name
    DEMO_URL in `variables.base_url`."""
    return text if demo_url == DEMO_URL else text.replace(DEMO_URL, demo_url)


async def start_demo_services(
    host: str = DEMO_HOST,
    port: int = DEMO_PORT,
    helpdesk_token: str | None = None,
    mail_port: int | None = None,
    on_mail: Callable[[dict[str, Any]], None] = lambda mail: None,
) -> web.AppRunner:
    """Serve the demo services on host:port (with `mail_port`, the SMTP sink too); stop them
    with `stop_demo_services`."""
    runner = web.AppRunner(demo_app(helpdesk_token, mail_port, on_mail), access_log=None)
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
