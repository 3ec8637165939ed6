"""Department caps: which queued executions of one department start, first come first served.

Pure. The admissions agent (braidflow.streams.admissions) applies `admit` to each record of
the admissions topic, a request for a slot (`AdmissionRequested`) or the end of an execution
that asked for one (`AdmissionReleased`), and sends an `AdmitExecution` to each execution it
admits. One department's records share a key, hence a partition: they arrive in order.

The queue is split so that a long one stays within the record limits: the head row holds
who holds a slot, the front of the queue (where admissions take from) and its back (where
requests append); when the back fills it moves, whole, into a segment row of its own, and
when the front empties the oldest segment becomes the front. A record changes at most the
head row and one segment row, in an order a crash between the two writes cannot harm:

- segment rows are written before the head row, and only with content the same record
  applied to the same head would write again (a full back moved out, a request withdrawn);
- segment rows the new head no longer names are dropped after it.

The head row keeps the offset of the last record applied, so a record delivered again after
its head row was written changes nothing. A request repeated later (an outbox resend after a
crash) is ignored while its execution holds a slot or waits at either end of the queue; one
deeper in the queue is skipped when it comes up while its execution holds a slot, and an
admission of an execution that has ended meanwhile is given back by the engine (a release).

Each execution in the rows is kept with its trace (`Claim`): the AdmitExecution that starts
it carries the header its request named. A row written before requests had one admits
without a header.

An admission sent just before a crash can be sent and acknowledged and yet never be applied
(seen on the embedded broker, streams/batch_starts.py), and nothing else sends it again: its
department's record is applied and its row written. So an agent given a department's
partition sends again the admission of every execution holding a slot there (`holders`):
the engine ignores one admitted already and gives back the slot of one that has ended.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from braidflow.engine.ids import DAY_MS
from braidflow.engine.messages import AdmissionReleased, AdmissionRequested

SEGMENT_SIZE = 256
"""Executions per end of the queue and per segment row: about 32 KB each, ids and traces."""


@dataclass(frozen=True, slots=True)
class Claim:
    """An execution that asked for a slot, with its span (W3C traceparent): the header of the
    AdmitExecution that starts it. None for a request written before traces reached here."""

    execution_id: str
    traceparent: str | None = None


@dataclass(frozen=True, slots=True)
class AdmissionRow:
    """The head row of one department's admissions.

    `holding`: executions admitted and not yet released, in admission order. `front`: the
    next to admit, in order; then segments `first .. next - 1`; then `back`, the latest
    requests. `offset`: the last record applied (-1: none yet). `spent`: what the executions
    released on UTC day `day` (days since the epoch, by the records' times) cost.
    """

    offset: int = -1
    holding: tuple[Claim, ...] = ()
    front: tuple[Claim, ...] = ()
    back: tuple[Claim, ...] = ()
    first: int = 0
    next: int = 0
    day: int = 0
    spent: float = 0.0

    @property
    def segments(self) -> range:
        """The indexes of the segment rows between the front and the back."""
        return range(self.first, self.next)


@dataclass(frozen=True, slots=True)
class Admitted:
    """What one record changes: segment rows to write (before the head row), the head row,
    segment rows to drop (after it), and the executions admitted, in order."""

    row: AdmissionRow
    admitted: tuple[Claim, ...] = ()
    writes: dict[int, tuple[Claim, ...]] = field(default_factory=dict)
    drops: tuple[int, ...] = ()


def admission_key(tenant: str, department: str) -> str:
    """The key of a department's admissions: `<tenant>/<department>` (neither holds a `/`)."""
    return f"{tenant}/{department}"


def department_of_key(key: str) -> tuple[str, str]:
    """(tenant, department) of an admission key."""
    tenant, _, department = key.partition("/")
    return tenant, department


def queue_length(row: AdmissionRow, segment_size: int = SEGMENT_SIZE) -> int:
    """How many wait, about: full segments counted as full (withdrawals inside them aside)."""
    return len(row.front) + len(row.back) + segment_size * len(row.segments)


def admit(
    row: AdmissionRow,
    segment: Callable[[int], tuple[Claim, ...]],
    record: AdmissionRequested | AdmissionReleased,
    offset: int,
    cap: int | None,
    segment_size: int = SEGMENT_SIZE,
    budget_per_day: float | None = None,
) -> Admitted | None:
    """Apply one record at `offset` to the department's `row`; None if it was applied already.

    `segment(i)` reads segment row `i`. `cap` is the department's current
    `max_concurrent_executions` (None: no cap, every waiting execution is admitted): a cap
    lowered below the executions holding a slot admits nobody until enough have ended.
    `budget_per_day` is its current `settings.budget.per_day`: once the releases of the
    record's UTC day have spent it, nobody is admitted until a record of a later day.
    """
    if offset <= row.offset:
        return None
    day = record.at // DAY_MS
    if day > row.day:
        row = replace(row, day=day, spent=0.0)
    if isinstance(record, AdmissionReleased) and day == row.day:
        row = replace(row, spent=row.spent + record.spent)
    writes: dict[int, tuple[Claim, ...]] = {}
    drops: list[int] = []
    execution = record.execution_id
    if isinstance(record, AdmissionRequested):
        if not (
            _names(row.holding, execution)
            or _names(row.front, execution)
            or _names(row.back, execution)
        ):
            row = _append(row, Claim(execution, record.traceparent), writes, segment_size)
    elif _names(row.holding, execution):
        row = replace(row, holding=_without(row.holding, execution))
    else:
        row = _withdraw(row, execution, segment, writes)
    admitted: tuple[Claim, ...] = ()
    if budget_per_day is None or row.spent < budget_per_day:
        row, admitted = _fill(row, segment, cap, writes, drops)
    return Admitted(replace(row, offset=offset), admitted, writes, tuple(drops))


def holders(rows: Iterable[tuple[str, AdmissionRow]]) -> tuple[Claim, ...]:
    """Every execution holding a slot of the departments whose head rows are `rows` (key,
    row), in admission order: the admissions an agent given their partition sends again."""
    return tuple(claim for _, row in rows for claim in row.holding)


def _names(claims: tuple[Claim, ...], execution: str) -> bool:
    return any(claim.execution_id == execution for claim in claims)


def _without(claims: tuple[Claim, ...], execution: str) -> tuple[Claim, ...]:
    return tuple(claim for claim in claims if claim.execution_id != execution)


def _append(
    row: AdmissionRow, claim: Claim, writes: dict[int, tuple[Claim, ...]], segment_size: int
) -> AdmissionRow:
    if len(row.back) < segment_size:
        return replace(row, back=(*row.back, claim))
    # The back is full: it moves, whole, into a segment row of its own.
    writes[row.next] = row.back
    return replace(row, back=(claim,), next=row.next + 1)


def _withdraw(
    row: AdmissionRow,
    execution: str,
    segment: Callable[[int], tuple[Claim, ...]],
    writes: dict[int, tuple[Claim, ...]],
) -> AdmissionRow:
    """An execution that ended while it waited leaves the queue (a cancel, say)."""
    if _names(row.front, execution):
        return replace(row, front=_without(row.front, execution))
    if _names(row.back, execution):
        return replace(row, back=_without(row.back, execution))
    for index in row.segments:
        claims = segment(index)
        if _names(claims, execution):
            writes[index] = _without(claims, execution)
            break
    return row


def _fill(
    row: AdmissionRow,
    segment: Callable[[int], tuple[Claim, ...]],
    cap: int | None,
    writes: dict[int, tuple[Claim, ...]],
    drops: list[int],
) -> tuple[AdmissionRow, tuple[Claim, ...]]:
    """Admit from the front while slots are free, refilling the front as it empties."""
    holding, front = list(row.holding), list(row.front)
    holding_ids = {claim.execution_id for claim in holding}
    first, back = row.first, row.back
    admitted: list[Claim] = []
    while cap is None or len(holding) < cap:
        if not front:
            if first < row.next:
                front = list(writes.get(first, segment(first)))
                drops.append(first)
                first += 1
                continue
            if not back:
                break
            front, back = list(back), ()
        claim = front.pop(0)
        if claim.execution_id in holding_ids:
            continue  # a repeated request that lay deeper in the queue
        holding.append(claim)
        holding_ids.add(claim.execution_id)
        admitted.append(claim)
    # A segment taken into the front is dropped after the head row: never written too.
    for index in drops:
        writes.pop(index, None)
    filled = replace(row, holding=tuple(holding), front=tuple(front), back=back, first=first)
    return filled, tuple(admitted)
