"""The waits agent: wait_event registrations meet the events they wait for.

The waits topic is keyed by event type and carries two kinds of record: a
registration (Avro `AwaitEvent`, sent by the orchestrator when a wait begins)
and an event (structured CloudEvent JSON, sent by the router for types some
workflow waits for). One agent at concurrency 1 applies the pure
`engine.correlation` to the row of that type in the `waits` table and sends an
`EventArrived` transition to each execution an event correlates with.

A tenant's waits and events are keyed `@T/<type>` (`braidflow.tenants.wait_key`), the
default tenant's by the bare type: a row only ever holds one tenant's, so an event of one
tenant never resumes a wait of another.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from braidflow.config import Settings
from braidflow.engine import AwaitEvent, Transition, ids
from braidflow.engine.correlation import KeptEvent, Waits, occur, register
from braidflow.schemas import CodecError, decode_await
from braidflow.schemas.dead_letters import DeadLetter
from braidflow.schemas.records import AWAIT_EVENT
from braidflow.streams.catalog import Catalog
from braidflow.streams.orchestrator import Record, dead_letter_of
from braidflow.tenants import catalog_key, tenant_of_wait_key

log = logging.getLogger(__name__)

# Avro single-object encoding starts with these two bytes; a CloudEvent is JSON.
_AVRO_MARKER = b"\xc3\x01"


def encode_waits(waits: Waits) -> bytes:
    """The row of one event type. JSON: the row is this agent's own, read by nothing else."""
    return json.dumps(
        {
            "waiting": [AWAIT_EVENT.to_avro(w) for w in waits.waiting],
            "kept": [{"event": k.event, "kept_until": k.kept_until} for k in waits.kept],
        },
        separators=(",", ":"),
    ).encode()


def fitted(waits: Waits, limit: int) -> tuple[Waits, bytes]:
    """The waits to store and their row: without the oldest kept events while the row is
    over `limit` bytes. Registrations are never dropped: an execution waits on them."""
    row = encode_waits(waits)
    excess = len(row) - limit
    if excess <= 0 or not waits.kept:
        return waits, row
    dropped = 0
    while dropped < len(waits.kept) and excess > 0:
        kept = waits.kept[dropped]
        excess -= len(json.dumps({"event": kept.event, "kept_until": kept.kept_until})) + 1
        dropped += 1
    trimmed = Waits(waits.waiting, waits.kept[dropped:])
    return trimmed, encode_waits(trimmed)


def decode_waits(raw: bytes | None) -> Waits:
    if raw is None:
        return Waits()
    row = json.loads(raw)
    return Waits(
        tuple(AWAIT_EVENT.from_avro(w) for w in row["waiting"]),
        tuple(KeptEvent(k["event"], k["kept_until"]) for k in row["kept"]),
    )


class Correlator:
    """Applies one waits-topic record to the row of its event type."""

    def __init__(
        self,
        settings: Settings,
        catalog: Catalog,
        send_transition: Callable[[Transition, str | None], Awaitable[None]],
        dead_letter: Callable[[DeadLetter], Awaitable[None]],
        clock: Callable[[], int],
    ) -> None:
        self._keep_ms = int(settings.event_ttl_s * 1000)
        self._max_row_bytes = settings.max_value_bytes
        self._catalog = catalog
        self._send_transition = send_transition
        self._dead_letter = dead_letter
        self._clock = clock

    def matches(self, registration: AwaitEvent, event: Mapping[str, Any]) -> bool:
        """Whether the waiting node's `correlate` holds for `event` (no expression: any event)."""
        key = catalog_key(registration.tenant, registration.workflow_id)
        deployment = self._catalog.get(key, registration.workflow_version)
        if deployment is None:
            return False
        node = deployment.workflow.nodes.get(registration.node_id)
        if node is None or node.correlate is None:
            return node is not None
        try:
            return node.correlate.evaluate({**(registration.context or {}), "event": event}) is True
        except Exception as exc:
            log.info("correlate of %s/%s: %s", registration.execution_id, registration.node_id, exc)
            return False

    async def handle(self, record: Record, table: MutableMapping[bytes, bytes]) -> None:
        if record.key is None or record.value is None:
            await self._reject(record, "a waits record needs a key (the event type) and a value")
            return
        now = self._clock()
        waits = decode_waits(table.get(record.key))
        registrations = waits.waiting
        if record.value.startswith(_AVRO_MARKER):
            try:
                registration = decode_await(record.value)
            except CodecError as exc:
                await self._reject(record, f"undecodable wait registration: {exc}")
                return
            registrations = (registration,)
            waits, arrivals = register(waits, registration, now, self.matches)
        else:
            try:
                event = json.loads(record.value)
            except ValueError as exc:
                await self._reject(record, f"not JSON: {exc}")
                return
            waits, arrivals = occur(waits, event, now, self._keep_ms, self.matches)
        # A row over the record limit would stop the partition; kept events make room first.
        stored, row = fitted(waits, self._max_row_bytes)
        if len(row) > self._max_row_bytes:
            reason = (
                f"the waits for {record.key.decode(errors='replace')!r} would take {len(row):,}"
                f" bytes with this record, over the {self._max_row_bytes:,} a record may hold:"
                f" {len(stored.waiting):,} waits registered for that type"
            )
            await self._reject(record, reason)
            return
        if len(stored.kept) < len(waits.kept):
            log.warning(
                "waits for %r: dropped the %d oldest kept events to stay under %d bytes",
                record.key,
                len(waits.kept) - len(stored.kept),
                self._max_row_bytes,
            )
        # Deliveries first, acknowledged, then the row: a crash in between makes the
        # record come again and deliver again (harmless), never lose a delivery.
        # Each resumption carries the trace of the node run it resumes (its registration's).
        traceparents = {ids.arrived_id(w.id): w.traceparent for w in registrations}
        for arrival in arrivals:
            await self._send_transition(arrival, traceparents.get(arrival.id))
        table[record.key] = row

    async def _reject(self, record: Record, reason: str) -> None:
        key = (record.key or b"").decode(errors="replace")
        letter = dead_letter_of(record, reason, self._clock(), tenant_of_wait_key(key))
        await self._dead_letter(letter)
