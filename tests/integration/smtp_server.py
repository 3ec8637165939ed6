"""A real SMTP server for the tests (aiosmtpd) on 127.0.0.1, in a thread of its own.

It keeps every message it takes (`received`), refuses any recipient whose address starts
with `refused` (550), and with a `login` accepts AUTH PLAIN/LOGIN only with that username and
password (over plain text: the tests talk to 127.0.0.1). With a `tls` context it offers
STARTTLS and takes no message before it; with `smtps` too, it speaks TLS from the first byte.
"""

from __future__ import annotations

import ssl
import threading
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

from braidflow.connectors.broker import free_port


@dataclass(frozen=True, slots=True)
class Received:
    """One message the server took: the envelope's sender and recipients, the message."""

    sender: str
    recipients: list[str]
    message: EmailMessage


class MailServer:
    """The server; `start` before use, `stop` after. `port` is where it listens; aiosmtpd
    calls the `handle_*` hooks by name."""

    def __init__(
        self,
        login: tuple[str, str] | None = None,
        tls: ssl.SSLContext | None = None,
        smtps: bool = False,
    ) -> None:
        self.login = login
        self.port = free_port()
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self._controller = Controller(
            self,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=self._authenticate,
            # The login is required in `handle_MAIL`: aiosmtpd's `auth_required` without TLS
            # warns at every connection.
            auth_require_tls=False,
            ssl_context=tls if smtps else None,
            tls_context=None if smtps else tls,
            require_starttls=tls is not None and not smtps,
        )

    def start(self) -> MailServer:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def by_message_id(self, message_id: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.message["Message-ID"] == message_id]

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if self.login is not None and not session.authenticated:
            return "530 5.7.0 Authentication required"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address.startswith("refused"):
            return "550 5.1.1 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        message = message_from_bytes(content, policy=policy.default)
        assert isinstance(message, EmailMessage)
        with self._lock:
            self.received.append(
                Received(str(envelope.mail_from), list(envelope.rcpt_tos), message)
            )
        return "250 Message accepted for delivery"

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if self.login is None or not isinstance(data, LoginPassword):
            return AuthResult(success=False, handled=False)
        given = (data.login.decode(), data.password.decode())
        return AuthResult(success=given == self.login, handled=False)
