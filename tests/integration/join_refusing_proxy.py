"""A Kafka-protocol proxy of the tests' own that refuses every consumer group join.

It stands in front of an embedded broker that advertises the proxy's address
(`EmbeddedBroker(advertised_port=...)`), so every connection a client makes,
coordinator included, goes through it. Everything is forwarded, except JoinGroup
requests (api key 11) of the groups it is told to refuse: those are answered here with an error code, as Apache Kafka
answers a session timeout outside its `group.min.session.timeout.ms` ..
`group.max.session.timeout.ms` (error 26, INVALID_SESSION_TIMEOUT). Tansu does not
check those limits, so this is how a test meets the refusal.

Given a server TLS context (`tls`), it also terminates TLS: clients connect with
security.protocol=SSL and the broker behind it, which cannot serve TLS itself (Tansu 0.6),
sees plain connections. That is how the suite runs workflows over TLS. Given `users`, it
also authenticates each connection with SASL/PLAIN before forwarding anything but
ApiVersions (`sasl_plain_gate.py`): the broker cannot create users itself.

Responses keep the order of their requests, as Kafka promises per connection; every
request forwarded is expected to get a response (no produce with acks=0).
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import struct
from collections.abc import Callable, Mapping
from typing import Any

from background_loop import BackgroundLoop
from sasl_plain_gate import ConnectionRefused, SaslPlainGate

JOIN_GROUP = 11
INVALID_SESSION_TIMEOUT = 26
_UPSTREAM = object()
_CLOSE = object()


def join_group_error(version: int, correlation_id: int, error_code: int) -> bytes:
    """A whole JoinGroup response frame (size prefix included) carrying `error_code`.

    Versions 0-5, the ones aiokafka (0, 1, 2, 5) and librdkafka use: v2 adds the
    throttle time in front; v5 changes only the members, of which there are none.
    """
    if not 0 <= version <= 5:
        raise ValueError(f"JoinGroup v{version} is not encoded by this proxy")
    body = struct.pack(">i", correlation_id)
    if version >= 2:
        body += struct.pack(">i", 0)  # throttle_time_ms
    # error code, generation -1, then protocol, leader and member id: empty strings,
    # then an empty members array.
    body += struct.pack(">hihhhi", error_code, -1, 0, 0, 0, 0)
    return struct.pack(">i", len(body)) + body


async def _read_frame(reader: asyncio.StreamReader) -> bytes:
    size = await reader.readexactly(4)
    return size + await reader.readexactly(struct.unpack(">i", size)[0])


def join_group_id(frame: bytes) -> str:
    """The group id of a JoinGroup request frame (versions 0-5: non-flexible strings)."""
    (client_id_length,) = struct.unpack(">h", frame[12:14])
    start = 14 + max(client_id_length, 0)
    (length,) = struct.unpack(">h", frame[start : start + 2])
    return frame[start + 2 : start + 2 + length].decode()


class JoinRefusingProxy:
    """Listens on 127.0.0.1:`port` and forwards to 127.0.0.1:`upstream_port`, refusing the
    joins of the groups `refuse` picks (all of them by default)."""

    def __init__(
        self,
        loop: BackgroundLoop,
        port: int,
        upstream_port: int,
        refuse: Callable[[str], bool] = lambda group: True,
        tls: ssl.SSLContext | None = None,
        users: Mapping[str, str] | None = None,
    ) -> None:
        self._loop = loop
        self.port = port
        self._upstream_port = upstream_port
        # Which groups to refuse; a test may change it while the proxy runs.
        self.refuse = refuse
        self._tls = tls
        self._users = users
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task[None]] = set()
        self.refused = 0

    def start(self) -> JoinRefusingProxy:
        self._server = self._loop.run(
            asyncio.start_server(self._serve, "127.0.0.1", self.port, ssl=self._tls)
        )
        return self

    def stop(self) -> None:
        if self._server is not None:
            server = self._server

            async def close() -> None:
                server.close()
                # Connections outlive the server: end them before the loop goes.
                for connection in self._connections:
                    connection.cancel()
                await asyncio.gather(*self._connections, return_exceptions=True)
                await server.wait_closed()

            self._loop.run(close())
            self._server = None

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        connection = asyncio.current_task()
        assert connection is not None
        self._connections.add(connection)
        connection.add_done_callback(self._connections.discard)
        try:
            upstream_r, upstream_w = await asyncio.open_connection("127.0.0.1", self._upstream_port)
        except OSError:
            client_w.close()
            return
        # What the client is owed next, in request order: a response from upstream, or one
        # made here.
        owed: asyncio.Queue[Any] = asyncio.Queue()
        answering = asyncio.create_task(self._answer(owed, upstream_r, client_w))
        gate = SaslPlainGate(self._users) if self._users is not None else None
        try:
            while True:
                frame = await _read_frame(client_r)
                api_key, version, correlation_id = struct.unpack(">hhi", frame[4:12])
                if gate is not None and not gate.passed:
                    try:
                        answer = gate.answer(frame)
                    except ConnectionRefused as refused:
                        if refused.answer is not None:
                            await owed.put(refused.answer)
                        await owed.put(_CLOSE)
                        await answering
                        return
                    if answer is not None:
                        await owed.put(answer)
                        continue
                if api_key == JOIN_GROUP and self.refuse(join_group_id(frame)):
                    self.refused += 1
                    await owed.put(
                        join_group_error(version, correlation_id, INVALID_SESSION_TIMEOUT)
                    )
                else:
                    upstream_w.write(frame)
                    await owed.put(_UPSTREAM)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        except asyncio.CancelledError:
            # Stopped with the proxy: end quietly (asyncio logs a connection task that
            # ends cancelled as an error).
            pass
        finally:
            answering.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await answering
            upstream_w.close()
            client_w.close()

    async def _answer(
        self,
        owed: asyncio.Queue[Any],
        upstream_r: asyncio.StreamReader,
        client_w: asyncio.StreamWriter,
    ) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                item = await owed.get()
                if item is _CLOSE:
                    client_w.close()
                    return
                client_w.write(await _read_frame(upstream_r) if item is _UPSTREAM else item)
                await client_w.drain()

    def __enter__(self) -> JoinRefusingProxy:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()
