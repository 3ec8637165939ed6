"""The sender of email nodes against a real SMTP server on 127.0.0.1 (aiosmtpd): what the
server receives, the login from a secret, refused recipients, a wrong password and a server
that is not there, each failing with what failed named."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from smtp_server import MailServer

from braidflow.connectors.broker import free_port
from braidflow.connectors.connections import Connection, SmtpConnection, parse_connections
from braidflow.connectors.email import MailSender
from braidflow.engine.messages import TaskRequest
from braidflow.node_logs import NodeLog
from braidflow.secrets import EnvironmentSecrets, SecretsAllowed, SecretScope
from braidflow.tasks import NodeFailure

PASSWORD = "smtp-suite-7c1e"


@pytest.fixture(scope="module")
def server() -> Iterator[MailServer]:
    server = MailServer(login=("flows", PASSWORD)).start()
    yield server
    server.stop()


def sender(server: MailServer, password: str = "${secrets.SMTP_PASSWORD}") -> MailSender:
    return MailSender(
        {
            "mail": SmtpConnection(
                "mail", "127.0.0.1", server.port, False, None, "flows", password
            ),
            "model": Connection("model", "http://127.0.0.1:1/v1"),
            "nowhere": SmtpConnection("nowhere", "127.0.0.1", free_port()),
        }
    )


def scope() -> SecretScope:
    return SecretScope(
        EnvironmentSecrets(
            {"BRAIDFLOW_SECRET_SMTP_PASSWORD": PASSWORD, "BRAIDFLOW_SECRET_WRONG": "not-it"}
        ),
        allowed=SecretsAllowed(),
    )


def task(key: str, **changes: Any) -> TaskRequest:
    given = {
        "connection": "mail",
        "from": "Flows <flows@example.com>",
        "to": ["ada@example.com"],
        "cc": "grace@example.com",
        "subject": "Ticket closed",
        "text": "Your ticket is closed.",
        "html": "<p>Your ticket is <b>closed</b>.</p>",
    }
    given.update(changes)
    return TaskRequest(
        "run-1", "notify", "send", "email", 1, key, int(time.time() * 1000), input=given
    )


async def send(mail: MailSender, request: TaskRequest) -> Any:
    return await mail.run(request, scope(), NodeLog(lambda: 0))


async def failure(mail: MailSender, request: TaskRequest) -> NodeFailure:
    with pytest.raises(NodeFailure) as failed:
        await send(mail, request)
    return failed.value


async def test_the_server_receives_the_message_with_the_idempotency_key_as_its_id(
    server: MailServer,
) -> None:
    output = await send(sender(server), task("run-1:send:1"))
    assert output == {
        "message_id": "<run-1.send.1@braidflow>",
        "accepted": ["ada@example.com", "grace@example.com"],
        "refused": {},
    }
    [received] = server.by_message_id("<run-1.send.1@braidflow>")
    assert received.sender == "flows@example.com"
    assert received.recipients == ["ada@example.com", "grace@example.com"]
    message = received.message
    assert (message["From"], message["To"], message["Cc"]) == (
        "Flows <flows@example.com>",
        "ada@example.com",
        "grace@example.com",
    )
    assert message["Subject"] == "Ticket closed"
    text, html = message.iter_parts()
    assert text.get_content().strip() == "Your ticket is closed."
    assert html.get_content().strip() == "<p>Your ticket is <b>closed</b>.</p>"


async def test_some_recipients_refused_still_sends_and_names_them(server: MailServer) -> None:
    output = await send(
        sender(server), task("run-1:send:2", to=["ada@example.com", "refused-x@example.com"])
    )
    assert output["accepted"] == ["ada@example.com", "grace@example.com"]
    assert output["refused"] == {"refused-x@example.com": "550 5.1.1 no such mailbox here"}
    [received] = server.by_message_id(output["message_id"])
    assert received.recipients == ["ada@example.com", "grace@example.com"]


async def test_every_recipient_refused_fails_the_node_naming_each(server: MailServer) -> None:
    failed = await failure(
        sender(server), task("run-1:send:3", to="refused-a@example.com", cc=None)
    )
    assert failed.type == "email.recipients_refused"
    assert failed.message == (
        f"mail server 127.0.0.1:{server.port} (connection 'mail') refused every recipient:"
        " refused-a@example.com: 550 5.1.1 no such mailbox here"
    )
    assert server.by_message_id("<run-1.send.3@braidflow>") == []


async def test_a_wrong_password_fails_the_node_as_a_refused_login(server: MailServer) -> None:
    refused = await failure(sender(server, "${secrets.WRONG}"), task("run-1:send:4"))
    assert refused.type == "email.auth_failed"
    assert refused.message.startswith(
        f"mail server 127.0.0.1:{server.port} (connection 'mail') refused the login: 535"
    ), refused.message
    assert "not-it" not in refused.message
    assert server.by_message_id("<run-1.send.4@braidflow>") == []


async def test_a_server_not_there_fails_the_node_as_unreachable(server: MailServer) -> None:
    failed = await failure(sender(server), task("run-1:send:6", connection="nowhere"))
    assert failed.type == "email.unreachable"
    assert "(connection 'nowhere')" in failed.message


async def test_a_connection_that_is_no_mail_server_or_is_missing_is_named(
    server: MailServer,
) -> None:
    mail = sender(server)
    not_mail = await failure(mail, task("run-1:send:7", connection="model"))
    assert (not_mail.type, not_mail.message) == (
        "email.unknown_connection",
        "connection 'model' is not a mail server (its url is not smtp:// or smtps://)",
    )
    missing = await failure(mail, task("run-1:send:8", connection="post"))
    assert missing.message == (
        "no connection 'post' on this worker"
        " (its connections, from BRAIDFLOW_CONNECTIONS: mail, model, nowhere)"
    )


async def test_no_login_where_the_server_wants_one_fails_naming_the_refused_sender(
    server: MailServer,
) -> None:
    anonymous = MailSender({"mail": SmtpConnection("mail", "127.0.0.1", server.port)})
    failed = await failure(anonymous, task("run-1:send:9"))
    assert failed.type == "email.sender_refused"
    assert failed.message == (
        f"mail server 127.0.0.1:{server.port} (connection 'mail') refused the sender"
        " flows@example.com: 530 5.7.0 Authentication required"
    )


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MailServer, str]]:
    """A server that offers STARTTLS with a certificate of a CA made here; the CA's file."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca_file = tmp_path_factory.mktemp("smtp-ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    server = MailServer(login=("flows", PASSWORD), tls=context).start()
    yield server, str(ca_file)
    server.stop()


@pytest.mark.parametrize("starttls", [None, True])
async def test_a_server_offering_starttls_is_sent_to_over_tls(
    tls_server: tuple[MailServer, str], monkeypatch: pytest.MonkeyPatch, starttls: bool | None
) -> None:
    server, ca_file = tls_server
    # The client checks the server's certificate against the default CAs: this CA's, here.
    monkeypatch.setenv("SSL_CERT_FILE", ca_file)
    mail = MailSender(
        {
            "mail": SmtpConnection(
                "mail",
                "127.0.0.1",
                server.port,
                False,
                starttls,
                "flows",
                "${secrets.SMTP_PASSWORD}",
            )
        }
    )
    key = f"run-1:tls-{starttls}:1"
    output = await send(mail, task(key))
    [received] = server.by_message_id(output["message_id"])
    assert received.recipients == ["ada@example.com", "grace@example.com"]


async def test_starttls_true_refuses_a_server_that_does_not_offer_it(server: MailServer) -> None:
    plain = MailSender(
        {
            "mail": SmtpConnection(
                "mail", "127.0.0.1", server.port, False, True, "flows", "${secrets.SMTP_PASSWORD}"
            )
        }
    )
    failed = await failure(plain, task("run-1:send:10"))
    assert (failed.type, failed.message) == (
        "email.failed",
        f"mail server 127.0.0.1:{server.port} (connection 'mail'):"
        " SMTP STARTTLS extension not supported by server.",
    )
    assert server.by_message_id("<run-1.send.10@braidflow>") == []


async def test_a_certificate_the_worker_does_not_trust_fails_the_node_as_unreachable(
    tls_server: tuple[MailServer, str],
) -> None:
    server, _ = tls_server
    mail = MailSender(
        {
            "mail": SmtpConnection(
                "mail", "127.0.0.1", server.port, False, True, "flows", "${secrets.SMTP_PASSWORD}"
            )
        }
    )
    failed = await failure(mail, task("run-1:send:11"))
    assert (failed.type, failed.message) == (
        "email.tls_failed",
        f"mail server 127.0.0.1:{server.port} (connection 'mail'):"
        " TLS failed: unable to get local issuer certificate",
    )
    assert server.by_message_id("<run-1.send.11@braidflow>") == []


async def test_an_smtps_connection_speaks_tls_from_the_first_byte(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    server = MailServer(login=("flows", PASSWORD), tls=context, smtps=True).start()
    try:
        [mail] = parse_connections(
            f"mail: {{url: 'smtps://127.0.0.1:{server.port}', username: flows,"
            " password: '${secrets.SMTP_PASSWORD}'}",
            "conn.yaml",
        ).values()
        output = await send(MailSender({"mail": mail}), task("run-1:smtps:1"))
    finally:
        server.stop()
    [received] = server.by_message_id(output["message_id"])
    assert received.recipients == ["ada@example.com", "grace@example.com"]
