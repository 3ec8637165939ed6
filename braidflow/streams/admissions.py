"""The admissions agent: department caps (`settings.max_concurrent_executions`) and budgets
per day (`settings.budget.per_day`).

The admissions topic is keyed by admission key, `<tenant>/<department>`, so one partition
orders all of a department's records: requests for a slot (sent by the orchestrator when a
start of a capped department is queued) and releases (when such an execution ends). One
agent at concurrency 1 applies the pure `engine.admission.admit` to the department's rows in
the `admissions` table and sends an `AdmitExecution` transition to each execution admitted,
with the `traceparent` header its request named (kept with it in the rows).

SIGKILL-safe as streams/waits.py is: the admissions are sent and acknowledged before the rows
are written, so a crash in between makes the record come again and admit again (the engine
ignores an execution admitted twice), never lose an admission; the head row keeps the offset
of the last record applied, so a record delivered again once its row was written is skipped.
An admission applied may still never reach its execution (see engine/admission.py): once
given its partitions, the agent sends again the admission of every execution holding a slot
of their departments (`admit_holders_again`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from braidflow.engine import AdmitExecution, Transition, ids
from braidflow.engine.admission import AdmissionRow, Claim, admit, department_of_key, holders
from braidflow.schemas import CodecError
from braidflow.schemas.codec import decode_admission
from braidflow.schemas.dead_letters import DeadLetter
from braidflow.streams.catalog import Catalog
from braidflow.streams.orchestrator import Record, dead_letter_of

log = logging.getLogger(__name__)

_RETRY_FIRST_S = 0.1
_RETRY_MAX_S = 5.0


def _claims_json(claims: tuple[Claim, ...]) -> list[Any]:
    # An execution without a trace is its id alone, as rows written before traces held them.
    return [
        c.execution_id if c.traceparent is None else [c.execution_id, c.traceparent] for c in claims
    ]


def _claims(members: list[Any]) -> tuple[Claim, ...]:
    return tuple(Claim(m) if isinstance(m, str) else Claim(m[0], m[1]) for m in members)


def encode_row(row: AdmissionRow) -> bytes:
    """The head row of a department. JSON: the row is this agent's own, read by nothing else."""
    return json.dumps(
        {
            "offset": row.offset,
            "holding": _claims_json(row.holding),
            "front": _claims_json(row.front),
            "back": _claims_json(row.back),
            "first": row.first,
            "next": row.next,
            "day": row.day,
            "spent": row.spent,
        },
        separators=(",", ":"),
    ).encode()


def decode_row(raw: bytes | None) -> AdmissionRow:
    if raw is None:
        return AdmissionRow()
    row = json.loads(raw)
    return AdmissionRow(
        row["offset"],
        _claims(row["holding"]),
        _claims(row["front"]),
        _claims(row["back"]),
        row["first"],
        row["next"],
        # Rows written before budgets per day: nothing spent.
        row.get("day", 0),
        row.get("spent", 0.0),
    )


def encode_segment(claims: tuple[Claim, ...]) -> bytes:
    """A segment row of a department's queue."""
    return json.dumps(_claims_json(claims), separators=(",", ":")).encode()


def decode_segment(raw: bytes | None) -> tuple[Claim, ...]:
    return () if raw is None else _claims(json.loads(raw))


def segment_key(key: bytes, index: int) -> bytes:
    """The row of segment `index` of a department's queue: `<tenant>/<department>#<index>`."""
    return key + b"#" + str(index).encode()


class Admissions:
    """Applies one admissions-topic record to its department's rows."""

    def __init__(
        self,
        catalog: Catalog,
        send_transition: Callable[[Transition, str | None], Awaitable[None]],
        dead_letter: Callable[[DeadLetter], Awaitable[None]],
        clock: Callable[[], int],
    ) -> None:
        self._catalog = catalog
        self._send_transition = send_transition
        self._dead_letter = dead_letter
        self._clock = clock

    def cap(self, key: str) -> int | None:
        """The department's cap as it is now; None when it has none (or is not deployed)."""
        tenant, name = department_of_key(key)
        department = self._catalog.departments_of(tenant).definition(name)
        return None if department is None else department.max_concurrent_executions

    def budget_per_day(self, key: str) -> float | None:
        """The department's budget per day as it is now; None when it has none."""
        tenant, name = department_of_key(key)
        department = self._catalog.departments_of(tenant).definition(name)
        return None if department is None else department.budget_per_day

    async def handle(self, record: Record, table: MutableMapping[bytes, bytes]) -> None:
        key = record.key
        if key is None or record.value is None:
            await self._reject(record, "an admissions record needs a key and a value")
            return
        try:
            admission = decode_admission(record.value)
        except CodecError as exc:
            await self._reject(record, f"undecodable admissions record: {exc}")
            return
        if key != admission.key.encode():
            await self._reject(record, f"key {key!r} is not the admission key {admission.key!r}")
            return

        def segment(index: int) -> tuple[Claim, ...]:
            return decode_segment(table.get(segment_key(key, index)))

        result = admit(
            decode_row(table.get(key)),
            segment,
            admission,
            record.offset,
            self.cap(admission.key),
            budget_per_day=self.budget_per_day(admission.key),
        )
        if result is None:
            return
        now = self._clock()
        # Admissions first, acknowledged, then the rows (see the module's docstring).
        for claim in result.admitted:
            await self._send_transition(_admission(claim, now), claim.traceparent)
        for index, claims in result.writes.items():
            table[segment_key(key, index)] = encode_segment(claims)
        table[key] = encode_row(result.row)
        for index in result.drops:
            table.pop(segment_key(key, index), None)

    async def admit_holders_again(self, rows: Iterable[tuple[bytes, bytes]]) -> int:
        """Send again the admission of every execution holding a slot of a department among
        `rows` (the admissions table's rows of this agent's partitions); how many were sent.

        A send that fails is tried again, with backoff, until the broker takes it.
        """
        heads = [(key.decode(), decode_row(raw)) for key, raw in rows if b"#" not in key]
        now = self._clock()
        again = holders(heads)
        if again:
            log.info("admitting again the %d executions holding a department's slot", len(again))
        for claim in again:
            admission = _admission(claim, now)
            delay = _RETRY_FIRST_S
            while True:
                try:
                    await self._send_transition(admission, claim.traceparent)
                    break
                except Exception as exc:
                    log.warning("admitting %s again failed, retrying: %r", claim.execution_id, exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, _RETRY_MAX_S)
        return len(again)

    async def _reject(self, record: Record, reason: str) -> None:
        await self._dead_letter(dead_letter_of(record, reason, self._clock()))


def _admission(claim: Claim, at: int) -> AdmitExecution:
    return AdmitExecution(ids.admit_id(claim.execution_id), claim.execution_id, at)
