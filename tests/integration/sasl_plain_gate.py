"""SASL/PLAIN authentication, as a Kafka broker's SASL listener does it, for the tests' proxy.

The embedded broker offers no way to create a user (Tansu 0.6), so the proxy in front of it
(`JoinRefusingProxy(users=...)`) authenticates each connection itself: it answers
SaslHandshake (api key 17) and SaslAuthenticate (36) and forwards only ApiVersions (18)
until the client has logged in; anything else before that, or a wrong password, ends the
connection, after an error response for the password (SASL_AUTHENTICATION_FAILED, 58), as
Apache Kafka does. Versions 0 and 1 of both requests, the ones librdkafka and aiokafka use
(non-flexible encodings).
"""

from __future__ import annotations

import struct
from collections.abc import Mapping

SASL_HANDSHAKE = 17
API_VERSIONS = 18
SASL_AUTHENTICATE = 36
UNSUPPORTED_SASL_MECHANISM = 33
SASL_AUTHENTICATION_FAILED = 58


class ConnectionRefused(Exception):
    """The client must be disconnected; `answer`, if any, is sent first."""

    def __init__(self, answer: bytes | None = None) -> None:
        super().__init__("refused")
        self.answer = answer


def _string(text: str | None) -> bytes:
    if text is None:
        return struct.pack(">h", -1)
    data = text.encode()
    return struct.pack(">h", len(data)) + data


def _frame(body: bytes) -> bytes:
    return struct.pack(">i", len(body)) + body


def _body(frame: bytes) -> bytes:
    """The request body of a frame with a v1 request header (size, key, version, id, client)."""
    (client_id_length,) = struct.unpack(">h", frame[12:14])
    return frame[14 + max(client_id_length, 0) :]


class SaslPlainGate:
    """One connection's SASL/PLAIN login against `users` (name to password)."""

    def __init__(self, users: Mapping[str, str]) -> None:
        self._users = users
        self._mechanism_agreed = False
        self.passed = False

    def answer(self, frame: bytes) -> bytes | None:
        """The response made here for a request before login, or None to forward it."""
        api_key, version, correlation_id = struct.unpack(">hhi", frame[4:12])
        if api_key == API_VERSIONS:
            return None
        if api_key == SASL_HANDSHAKE and version <= 1:
            (length,) = struct.unpack(">h", _body(frame)[:2])
            mechanism = _body(frame)[2 : 2 + length].decode()
            self._mechanism_agreed = mechanism == "PLAIN"
            error = 0 if self._mechanism_agreed else UNSUPPORTED_SASL_MECHANISM
            body = struct.pack(">ih", correlation_id, error) + struct.pack(">i", 1)
            return _frame(body + _string("PLAIN"))
        if api_key == SASL_AUTHENTICATE and version <= 1 and self._mechanism_agreed:
            (length,) = struct.unpack(">i", _body(frame)[:4])
            token = _body(frame)[4 : 4 + length]
            _, user, password = token.decode().split("\0")
            accepted = self._users.get(user) == password
            error, message = (0, None) if accepted else (SASL_AUTHENTICATION_FAILED, "")
            if not accepted:
                message = "Authentication failed: Invalid username or password"
            body = struct.pack(">ih", correlation_id, error) + _string(message)
            body += struct.pack(">i", 0)  # no server auth bytes for PLAIN
            if version >= 1:
                body += struct.pack(">q", 0)  # session lifetime: no re-authentication
            if not accepted:
                raise ConnectionRefused(_frame(body))
            self.passed = True
            return _frame(body)
        # A request before login (or an unsupported version): a SASL listener disconnects.
        raise ConnectionRefused()
