"""The demo services the examples call: what they answer, on a real local port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import aiohttp
import aiosmtplib
import pytest
import yaml

from braidflow.connectors.broker import free_port
from braidflow.connectors.demo_services import start_demo_services, stop_demo_services

EXAMPLES = Path(__file__).parents[3] / "examples"
HELPDESK_TOKEN = "demo-helpdesk-token"
BEARER = {"Authorization": f"Bearer {HELPDESK_TOKEN}"}


def answers(example: str) -> dict[str, Any]:
    return yaml.safe_load((EXAMPLES / f"{example}.answers.yaml").read_text())


@pytest.fixture
async def demo() -> AsyncIterator[tuple[aiohttp.ClientSession, str]]:
    port = free_port()
    runner = await start_demo_services("127.0.0.1", port, HELPDESK_TOKEN)
    try:
        async with aiohttp.ClientSession() as session:
            yield session, f"http://127.0.0.1:{port}"
    finally:
        await stop_demo_services(runner)


async def fetch(
    demo: tuple[aiohttp.ClientSession, str], method: str, path: str, **kwargs: Any
) -> tuple[int, Any]:
    session, base = demo
    async with session.request(method, base + path, **kwargs) as response:
        return response.status, await response.json()


async def test_inventory_answers_the_catalogue_entry_the_order_chain_answers_show(demo) -> None:
    assert await fetch(demo, "GET", "/inventory/widget-1") == (
        200,
        answers("order-chain")["stock"]["body"],
    )


async def test_an_unknown_sku_is_a_404(demo) -> None:
    assert await fetch(demo, "GET", "/inventory/nope") == (404, {"error": "unknown sku 'nope'"})


async def test_orders_get_ids_in_sequence(demo) -> None:
    order = {"sku": "widget-1", "quantity": 12, "total_cents": 13500}
    assert await fetch(demo, "POST", "/orders", json=order) == (
        201,
        answers("order-chain")["place"]["body"],
    )
    status, second = await fetch(demo, "POST", "/orders", json=order)
    assert (status, second["order_id"]) == (201, "ord-0002")


async def test_an_order_retried_with_the_same_idempotency_key_is_placed_once(demo) -> None:
    order = {"sku": "widget-1", "quantity": 1, "total_cents": 1250}
    headers = {"Idempotency-Key": "e-1:place:1"}
    first = await fetch(demo, "POST", "/orders", json=order, headers=headers)
    again = await fetch(demo, "POST", "/orders", json=order, headers=headers)
    assert first == again == (201, {"order_id": "ord-0001", "status": "accepted", **order})


async def test_an_order_without_its_fields_is_a_400(demo) -> None:
    assert await fetch(demo, "POST", "/orders", json={"sku": "widget-1"}) == (
        400,
        {"error": "missing quantity, total_cents"},
    )


async def test_health_is_up_unless_asked_to_be_down(demo) -> None:
    up = await fetch(demo, "GET", "/health", params={"service": "checkout", "down": "0"})
    assert up == (200, {"service": "checkout", "status": "up"})
    down = await fetch(demo, "GET", "/health", params={"service": "checkout", "down": "1"})
    probe = answers("uptime-check")["probe"]
    assert down == (probe["status"], probe["body"])


async def test_quotes_match_the_fan_out_answers(demo) -> None:
    given = answers("fan-out")
    for carrier in ("a", "c"):
        quote = await fetch(demo, "GET", f"/quotes/{carrier}", params={"weight_grams": "1800"})
        assert quote == (200, given[f"carrier_{carrier}"]["body"])


async def test_a_quote_needs_a_known_carrier_and_a_weight(demo) -> None:
    assert (await fetch(demo, "GET", "/quotes/z", params={"weight_grams": "1"}))[0] == 404
    assert (await fetch(demo, "GET", "/quotes/a"))[0] == 400
    assert (await fetch(demo, "GET", "/quotes/a", params={"weight_grams": "0"}))[0] == 400


async def test_a_job_reports_done_from_its_nth_poll_on(demo) -> None:
    polled = [await fetch(demo, "GET", "/jobs/j-7?ready_after=3") for _ in range(4)]
    assert [body["status"] for _, body in polled] == ["running", "running", "done", "done"]
    assert polled[2] == (200, {"job": "j-7", "status": "done", "polls": 3})
    assert (await fetch(demo, "GET", "/jobs/j-8"))[1]["status"] == "running"
    assert (await fetch(demo, "GET", "/jobs/j-8?ready_after=x"))[0] == 400


async def test_the_helpdesk_refuses_a_call_without_its_token(demo) -> None:
    refused = {"error": "the helpdesk wants Authorization: Bearer <its token>"}
    assert await fetch(demo, "GET", "/helpdesk/stats") == (401, refused)
    wrong = {"Authorization": "Bearer guess"}
    assert await fetch(demo, "POST", "/helpdesk/surveys", json={}, headers=wrong) == (401, refused)


async def test_a_helpdesk_without_a_token_refuses_every_call() -> None:
    port = free_port()
    runner = await start_demo_services("127.0.0.1", port)
    try:
        async with aiohttp.ClientSession() as session:
            status, _ = await fetch(
                (session, f"http://127.0.0.1:{port}"), "GET", "/helpdesk/stats", headers=BEARER
            )
        assert status == 401
    finally:
        await stop_demo_services(runner)


async def test_the_helpdesk_answers_what_the_support_answers_show(demo) -> None:
    triage = answers("support/support-triage")["assign"]["body"]
    body = {"queue": "urgent", "reply_to": "help@acme.test"}
    assert await fetch(demo, "POST", "/helpdesk/tickets/T-1/assign", json=body, headers=BEARER) == (
        200,
        triage,
    )
    escalation = answers("support/support-escalation")["notify"]["body"]
    body = {"assignee": "ada", "cc": "help@acme.test"}
    assert await fetch(
        demo, "POST", "/helpdesk/tickets/T-1/escalate", json=body, headers=BEARER
    ) == (200, escalation)
    survey = answers("support/support-survey")["send"]["body"]
    body = {"ticket_id": "T-1", "subject": "How did Acme do on ticket T-1?"}
    headers = {**BEARER, "Idempotency-Key": "k-1"}
    for _ in range(2):  # a retried survey is the same survey
        assert await fetch(demo, "POST", "/helpdesk/surveys", json=body, headers=headers) == (
            201,
            survey,
        )
    assert await fetch(demo, "GET", "/helpdesk/stats?days=7", headers=BEARER) == (
        200,
        {"days": 7, "assigned": 1, "escalated": 1, "surveys": 1},
    )


async def test_the_alert_channel_keeps_what_it_receives_in_order(demo) -> None:
    session, base = demo
    for n in (1, 2):
        async with session.post(f"{base}/alerts", json={"id": f"alert-{n}"}) as response:
            assert response.status == 204
    assert await fetch(demo, "GET", "/alerts") == (
        200,
        {"alerts": [{"id": "alert-1"}, {"id": "alert-2"}]},
    )


def labels_asked(*labels: str) -> dict[str, Any]:
    """A response_format as a classify node asks for its label."""
    schema = {"type": "object", "properties": {"label": {"enum": list(labels)}}}
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}


async def test_the_demo_model_picks_the_label_the_text_names_else_the_first(demo) -> None:
    def asking(text: str) -> dict[str, Any]:
        return {
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "Sort it"},
                {"role": "user", "content": text},
            ],
            "response_format": labels_asked("question", "bug", "spam"),
        }

    status, answer = await fetch(demo, "POST", "/v1/chat/completions", json=asking("A bug, sorry"))
    assert status == 200
    assert answer["choices"][0]["message"]["content"] == '{"label": "bug"}'
    assert answer["usage"] == {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
    _, answer = await fetch(demo, "POST", "/v1/chat/completions", json=asking("Hello"))
    assert answer["choices"][0]["message"]["content"] == '{"label": "question"}'


async def test_the_demo_model_replies_in_text_saying_it_is_a_stand_in(demo) -> None:
    asked = {"model": "m", "messages": [{"role": "user", "content": "Where is my invoice?\nThx"}]}
    status, answer = await fetch(demo, "POST", "/v1/chat/completions", json=asked)
    assert status == 200
    reply = answer["choices"][0]["message"]["content"]
    assert "about: Where is my invoice?\n" in reply
    assert "demo model, a stand-in" in reply
    status, refused = await fetch(demo, "POST", "/v1/chat/completions", json={"no": "messages"})
    assert status == 400 and "messages" in refused["error"]["message"]


async def test_the_demo_mail_sink_keeps_what_it_is_sent_and_lists_it() -> None:
    port, mail_port = free_port(), free_port()
    told: list[dict[str, Any]] = []
    runner = await start_demo_services("127.0.0.1", port, None, mail_port, told.append)
    try:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = (
            "a@example.test",
            "b@example.test",
            "Hi",
        )
        message["Message-ID"] = "<m-1@example.test>"
        message.set_content("Hello there\n")
        await aiosmtplib.send(message, hostname="127.0.0.1", port=mail_port, start_tls=False)
        async with aiohttp.ClientSession() as session:
            status, listed = await fetch((session, f"http://127.0.0.1:{port}"), "GET", "/mail")
    finally:
        await stop_demo_services(runner)
    kept = {
        "from": "a@example.test",
        "to": ["b@example.test"],
        "subject": "Hi",
        "message_id": "<m-1@example.test>",
        "text": "Hello there\n",
    }
    assert (status, listed) == (200, {"mails": [kept]})
    assert told == [kept]
