"""The message an email node's request makes: headers, parts, the Message-ID from the
idempotency key, and a field that cannot make a message refused by name."""

from __future__ import annotations

from email import message_from_bytes, policy
from typing import Any

import pytest

from braidflow.connectors.email import built, message_id
from braidflow.tasks import NodeFailure

KEY = "0f3c-run:notify:2"
AT_MS = 1_765_000_000_000


def request(**changes: Any) -> dict[str, Any]:
    given = {
        "connection": "mail",
        "from": "Braidflow <flows@example.com>",
        "to": ["ada@example.com", "Grace Hopper <grace@example.com>"],
        "cc": "ops@example.com, lead@example.com",
        "subject": "Ticket T-1: résumé attached",
        "text": "Hello,\nyour ticket is closed.\n",
    }
    given.update(changes)
    return {k: v for k, v in given.items() if v is not None}


def test_a_request_makes_the_message_its_sender_and_every_recipient() -> None:
    message, sender, recipients = built(request(), KEY, AT_MS)
    assert sender == "flows@example.com"
    assert recipients == [
        "ada@example.com",
        "grace@example.com",
        "ops@example.com",
        "lead@example.com",
    ]
    # What the server receives, read back as a mail reader would.
    read = message_from_bytes(message.as_bytes(policy=policy.SMTP), policy=policy.default)
    assert read["From"] == "Braidflow <flows@example.com>"
    assert read["To"] == "ada@example.com, Grace Hopper <grace@example.com>"
    assert read["Cc"] == "ops@example.com, lead@example.com"
    assert read["Subject"] == "Ticket T-1: résumé attached"
    assert read["Message-ID"] == "<0f3c-run.notify.2@braidflow>"
    assert read["Date"] == "Sat, 06 Dec 2025 05:46:40 +0000"
    assert read.get_content_type() == "text/plain"
    assert read.get_content() == "Hello,\r\nyour ticket is closed.\r\n"


def test_html_is_an_alternative_of_the_text() -> None:
    message, _, _ = built(request(html="<p>Closed.</p>", cc=None), KEY, AT_MS)
    assert message.get_content_type() == "multipart/alternative"
    assert "Cc" not in message
    text, html = message.iter_parts()
    assert text.get_content() == "Hello,\nyour ticket is closed.\n"
    assert (html.get_content_type(), html.get_content()) == ("text/html", "<p>Closed.</p>\n")


def test_the_same_idempotency_key_makes_the_same_message_id() -> None:
    assert message_id(KEY) == message_id(KEY) == "<0f3c-run.notify.2@braidflow>"
    assert message_id(KEY.replace(":2", ":3")) != message_id(KEY)
    assert message_id("a b<c>@d") == "<a.b.c.d@braidflow>"


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"to": "not an address"}, "to: 'not an address' is not an email address"),
        ({"to": []}, "to: no address"),
        ({"to": {"ada": "x"}}, "to: expected an address or a list of addresses"),
        ({"cc": ["ok@example.com", "nobody"]}, "cc: 'nobody' is not an email address"),
        ({"from": "a@example.com, b@example.com"}, "from: expected one address, got 2"),
        ({"subject": "Hi\nBcc: eve@example.com"}, "subject: "),
        ({"text": {"a": 1}}, "text: expected a text"),
    ],
)
def test_a_field_that_cannot_make_a_message_fails_the_node_naming_it(
    changes: dict[str, Any], problem: str
) -> None:
    with pytest.raises(NodeFailure) as failed:
        built(request(**changes), KEY, AT_MS)
    assert failed.value.type == "email.invalid_message"
    assert failed.value.message.startswith(problem), failed.value.message
