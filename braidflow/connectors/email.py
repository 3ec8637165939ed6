"""What runs `email` nodes: one SMTP conversation per send (aiosmtplib) with the server of
the node's connection (`connectors/connections.py`), logged in with its username and the
password its secret reference names, looked up at the moment of the send.

Choices worth knowing:
- The task's idempotency key (`execution:node:attempt`) is the message's `Message-ID`, and
  the task's time its `Date`: the same attempt sent twice (a worker lost after the server
  took it) is the same message, which mail servers and readers can recognise. A retry is
  another attempt and another message.
- Some recipients refused and others accepted: the message is sent, and the node completes
  with the refused ones and the server's reply for each in `refused`. Every recipient
  refused fails the node `email.recipients_refused`.
- `DEFAULT_TIMEOUT_MS` applies when the node has no `timeout`; it covers the whole send.
"""

from __future__ import annotations

import asyncio
import re
import ssl
from collections.abc import Mapping
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formatdate, getaddresses
from typing import Any

import aiosmtplib

from braidflow.connectors.connections import ENV, Connection, SmtpConnection
from braidflow.engine.messages import TaskRequest
from braidflow.node_logs import NodeLog
from braidflow.secrets import SecretScope
from braidflow.tasks import NodeFailure
from braidflow.topology.secret_references import resolve_references

DEFAULT_TIMEOUT_MS = 60_000
"""Time an email node's send may take when its definition sets no `timeout`."""

MESSAGE_ID_DOMAIN = "braidflow"
"""The right-hand side of every `Message-ID` an email node sends."""

# What a Message-ID's left-hand side may hold (RFC 5322's atext); the rest becomes `.`.
_NOT_ATEXT = re.compile(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")


class MailSender:
    """Runs email nodes against the mail servers of `connections`."""

    def __init__(self, connections: Mapping[str, Connection | SmtpConnection]) -> None:
        self._connections = dict(connections)

    async def run(self, request: TaskRequest, secrets: SecretScope, node_log: NodeLog) -> Any:
        """The node's output, `{message_id, accepted, refused}`; NodeFailure otherwise."""
        given = request.input
        if not isinstance(given, Mapping):
            raise NodeFailure("InvalidRequest", f"email node input is not an object: {given!r}")
        server = self._server(str(given.get("connection")))
        message, sender, recipients = built(given, request.idempotency_key, request.at)
        login = resolve_references(
            {"username": server.username, "password": server.password}, secrets.lookup
        )
        timeout_ms = request.timeout_ms if request.timeout_ms is not None else DEFAULT_TIMEOUT_MS
        where = f"mail server {server.host}:{server.port} (connection {server.name!r})"
        try:
            async with asyncio.timeout(timeout_ms / 1000):
                refused, reply = await aiosmtplib.send(
                    message,
                    sender=sender,
                    recipients=recipients,
                    hostname=server.host,
                    port=server.port,
                    username=login["username"],
                    password=login["password"],
                    use_tls=server.tls,
                    start_tls=server.starttls,
                    timeout=timeout_ms / 1000,
                )
        except TimeoutError:
            raise NodeFailure("TimeoutError", f"{where}: no answer in {timeout_ms}ms") from None
        except aiosmtplib.SMTPException as exc:
            raise _failure(exc, where) from None
        except ssl.SSLError as exc:
            # aiosmtplib lets TLS's own errors through: a certificate not trusted, say.
            why = getattr(exc, "verify_message", None) or exc.reason or str(exc)
            raise NodeFailure("email.tls_failed", f"{where}: TLS failed: {why}") from None
        node_log.add("info", f"{where}: {reply}")
        return {
            "message_id": message["Message-ID"],
            "accepted": [r for r in recipients if r not in refused],
            "refused": {r: f"{answer.code} {answer.message}" for r, answer in refused.items()},
        }

    def _server(self, name: str) -> SmtpConnection:
        found = self._connections.get(name)
        if isinstance(found, SmtpConnection):
            return found
        if found is None:
            known = ", ".join(sorted(self._connections)) or "none"
            why = f"no connection {name!r} on this worker (its connections, from {ENV}: {known})"
        else:
            why = f"connection {name!r} is not a mail server (its url is not smtp:// or smtps://)"
        raise NodeFailure("email.unknown_connection", why)


def built(
    given: Mapping[str, Any], idempotency_key: str, at_ms: int
) -> tuple[EmailMessage, str, list[str]]:
    """The message an email node's request describes, its sender and its recipients' addresses
    (to, then cc); NodeFailure `email.invalid_message` naming the field that is not usable."""
    senders = _addresses(given.get("from"), "from")
    to = _addresses(given.get("to"), "to")
    cc = _addresses(given.get("cc"), "cc")
    if len(senders) != 1:
        raise _invalid("from", f"expected one address, got {len(senders)}")
    if not to:
        raise _invalid("to", "no address")
    [sender] = senders
    message = EmailMessage()
    headers = (
        ("From", "from", sender),
        ("To", "to", to),
        ("Cc", "cc", cc),
        ("Subject", "subject", _text(given.get("subject"), "subject")),
    )
    for header, field, value in headers:
        if not value:
            continue
        try:
            message[header] = value
        except ValueError as exc:
            # The email package's own refusals, for instance a line break in the subject.
            raise _invalid(field, str(exc)) from None
    message["Date"] = formatdate(at_ms / 1000, usegmt=True)
    message["Message-ID"] = message_id(idempotency_key)
    message.set_content(_text(given.get("text"), "text"))
    html = given.get("html")
    if html is not None:
        message.add_alternative(_text(html, "html"), subtype="html")
    return message, sender.addr_spec, [a.addr_spec for a in [*to, *cc]]


def message_id(idempotency_key: str) -> str:
    """The `Message-ID` of the message a task with this idempotency key sends."""
    left = _NOT_ATEXT.sub(".", idempotency_key).strip(".")
    return f"<{left}@{MESSAGE_ID_DOMAIN}>"


def _addresses(value: Any, field: str) -> list[Address]:
    if value is None:
        return []
    given = [value] if isinstance(value, str) else value
    if not isinstance(given, list) or not all(isinstance(v, str) for v in given):
        raise _invalid(field, f"expected an address or a list of addresses, got {value!r}")
    return [_address(name, spec, entry, field) for entry in given for name, spec in _parts(entry)]


def _parts(entry: str) -> list[tuple[str, str]]:
    # A list of one name and address per comma; an entry the parser cannot read, as is.
    return getaddresses([entry]) or [("", entry)]


def _address(name: str, spec: str, entry: str, field: str) -> Address:
    local, at, domain = spec.rpartition("@")
    if not (local and at and domain):
        raise _invalid(field, f"{entry!r} is not an email address")
    try:
        return Address(display_name=name, addr_spec=spec)
    except ValueError as exc:
        raise _invalid(field, f"{entry!r} is not an email address: {exc}") from None


def _text(value: Any, field: str) -> str:
    if value is None:
        return ""
    if isinstance(value, dict | list):
        raise _invalid(field, f"expected a text, got {value!r}")
    return str(value)


def _invalid(field: str, why: str) -> NodeFailure:
    return NodeFailure("email.invalid_message", f"{field}: {why}")


def _failure(exc: aiosmtplib.SMTPException, where: str) -> NodeFailure:
    """A clear node failure for what went wrong in the SMTP conversation."""
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        each = "; ".join(f"{r.recipient}: {r.code} {r.message}" for r in exc.recipients)
        return NodeFailure("email.recipients_refused", f"{where} refused every recipient: {each}")
    if isinstance(exc, aiosmtplib.SMTPAuthenticationError):
        return NodeFailure(
            "email.auth_failed", f"{where} refused the login: {exc.code} {exc.message}"
        )
    if isinstance(exc, aiosmtplib.SMTPSenderRefused):
        return NodeFailure(
            "email.sender_refused",
            f"{where} refused the sender {exc.sender}: {exc.code} {exc.message}",
        )
    if isinstance(exc, aiosmtplib.SMTPConnectError | aiosmtplib.SMTPServerDisconnected):
        return NodeFailure("email.unreachable", f"{where}: {exc.message}")
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return NodeFailure("email.refused", f"{where}: {exc.code} {exc.message}")
    return NodeFailure("email.failed", f"{where}: {exc}")
