"""email nodes on a worker, against a real SMTP server on 127.0.0.1 (aiosmtpd): the worker's
connections file names the server and the secret of its password; a workflow sends a message
the server receives with the task's idempotency key as its Message-ID, and a send the server
refuses fails the node naming what failed. The password never reaches the execution's state."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from smtp_server import MailServer
from suite_broker import SuiteBroker
from workers import WorkerProcess

PASSWORD = "smtp-suite-worker-41d2"

NOTIFY = """
id: email-notify
input:
  type: object
  required: [to, ticket]
  properties:
    to: {type: array, items: {type: string}}
    ticket: {type: string}
nodes:
  - id: send
    type: email
    params:
      connection: mail
      from: Support <support@example.com>
      to: "${input.to}"
      cc: log@example.com
      subject: "Ticket ${input.ticket} is closed"
      text: "Ticket ${input.ticket} is closed."
      html: "<p>Ticket <b>${input.ticket}</b> is closed.</p>"
    retry: {max_attempts: 1}
  - id: done
    type: end
    params:
      output:
        message_id: "${nodes.send.output.message_id}"
        refused: "${nodes.send.output.refused}"
  - id: undelivered
    type: end
    params:
      output: {undelivered: "${nodes.send.error.type}"}
edges:
  - {from: send, to: done}
  - {from: send, to: undelivered, on_error: true}
"""


def connections_file(directory: Path, port: int) -> Path:
    path = directory / "connections.yaml"
    path.write_text(
        f"mail:\n  url: smtp://127.0.0.1:{port}\n  username: support\n"
        "  password: ${secrets.SMTP_PASSWORD}\n"
        f"model:\n  url: http://127.0.0.1:{port}/v1\n",
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="module")
def mail_server() -> Iterator[MailServer]:
    server = MailServer(login=("support", PASSWORD)).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def worker(
    broker: SuiteBroker, tmp_path_factory: pytest.TempPathFactory, mail_server: MailServer
) -> Iterator[WorkerProcess]:
    home = tmp_path_factory.mktemp("email-worker")
    process = WorkerProcess(
        broker,
        f"t{uuid.uuid4().hex[:10]}",
        home / "data",
        home / "worker.log",
        env={
            "BRAIDFLOW_CONNECTIONS": str(connections_file(home, mail_server.port)),
            "BRAIDFLOW_SECRET_SMTP_PASSWORD": PASSWORD,
        },
    )
    try:
        process.start().wait_ready()
        reply = process.api.deploy(NOTIFY)
        assert reply.status == 201, reply
        yield process
    finally:
        process.stop()


def finished(worker: WorkerProcess, workflow: str, input_: Any) -> dict[str, Any]:
    execution_id = worker.api.start(workflow, input_)
    execution = worker.wait_until_finished([execution_id])[execution_id]
    assert PASSWORD not in str(execution)
    return execution


def node(execution: dict[str, Any], node_id: str) -> dict[str, Any]:
    [found] = [n for n in execution["nodes"] if n["node_id"] == node_id]
    return found


def test_a_workflow_sends_a_message_the_server_receives(
    worker: WorkerProcess, mail_server: MailServer
) -> None:
    ticket = uuid.uuid4().hex[:8]
    to = ["ada@example.com", "Grace Hopper <grace@example.com>"]
    execution = finished(worker, "email-notify", {"to": to, "ticket": ticket})
    assert execution["status"] == "completed", execution
    message_id = f"<{execution['execution_id']}.send.1@braidflow>"
    assert execution["output"] == {"message_id": message_id, "refused": {}}
    assert node(execution, "send")["output"]["accepted"] == [
        "ada@example.com",
        "grace@example.com",
        "log@example.com",
    ]
    [received] = mail_server.by_message_id(message_id)
    assert received.sender == "support@example.com"
    assert received.recipients == ["ada@example.com", "grace@example.com", "log@example.com"]
    message = received.message
    assert message["To"] == "ada@example.com, Grace Hopper <grace@example.com>"
    assert message["Subject"] == f"Ticket {ticket} is closed"
    text, html = message.iter_parts()
    assert text.get_content().strip() == f"Ticket {ticket} is closed."
    assert html.get_content().strip() == f"<p>Ticket <b>{ticket}</b> is closed.</p>"


def test_some_recipients_refused_are_named_in_the_output(
    worker: WorkerProcess, mail_server: MailServer
) -> None:
    to = ["ada@example.com", "refused-1@example.com"]
    execution = finished(worker, "email-notify", {"to": to, "ticket": "T-2"})
    assert execution["status"] == "completed", execution
    assert execution["output"]["refused"] == {
        "refused-1@example.com": "550 5.1.1 no such mailbox here"
    }
    [received] = mail_server.by_message_id(execution["output"]["message_id"])
    assert received.recipients == ["ada@example.com", "log@example.com"]


def test_a_send_the_server_refuses_fails_the_node_naming_what_failed(
    worker: WorkerProcess, mail_server: MailServer
) -> None:
    text = NOTIFY.replace("id: email-notify", "id: email-refused").replace(
        "cc: log@example.com", "cc: refused-log@example.com"
    )
    reply = worker.api.deploy(text)
    assert reply.status == 201, reply
    execution = finished(
        worker, "email-refused", {"to": ["refused-2@example.com"], "ticket": "T-3"}
    )
    assert execution["status"] == "completed", execution
    assert execution["output"] == {"undelivered": "email.recipients_refused"}
    [error] = node(execution, "send")["errors"]
    assert "refused-2@example.com: 550 5.1.1" in error["message"]
    assert "refused-log@example.com: 550 5.1.1" in error["message"]
    sent = f"<{execution['execution_id']}.send.1@braidflow>"
    assert mail_server.by_message_id(sent) == []


def test_a_connection_that_is_not_a_mail_server_fails_the_node(worker: WorkerProcess) -> None:
    text = NOTIFY.replace("id: email-notify", "id: email-model").replace(
        "connection: mail", "connection: model"
    )
    reply = worker.api.deploy(text)
    assert reply.status == 201, reply
    execution = finished(worker, "email-model", {"to": ["ada@example.com"], "ticket": "T-4"})
    assert execution["output"] == {"undelivered": "email.unknown_connection"}
    [error] = node(execution, "send")["errors"]
    assert error["message"] == (
        "connection 'model' is not a mail server (its url is not smtp:// or smtps://)"
    )


def test_a_department_may_not_use_a_mail_server_whose_password_it_does_not_list(
    worker: WorkerProcess, mail_server: MailServer
) -> None:
    dept = f"sales{uuid.uuid4().hex[:6]}"
    reply = worker.api.deploy(f"kind: Department\nname: {dept}\ncredentials: [OTHER_SECRET]\n")
    assert reply.status == 201, reply
    text = NOTIFY.replace("id: email-notify", f"id: email-{dept}\ndepartment: {dept}")
    reply = worker.api.deploy(text)
    assert reply.status == 201, reply
    execution = finished(worker, f"email-{dept}", {"to": ["ada@example.com"], "ticket": "T-5"})
    assert execution["output"] == {"undelivered": "SecretNotAllowed"}
    [error] = node(execution, "send")["errors"]
    assert "'SMTP_PASSWORD'" in error["message"]
    assert mail_server.by_message_id(f"<{execution['execution_id']}.send.1@braidflow>") == []
