"""The admissions agent, given its partitions after a crash: every slot holder admitted again."""

from __future__ import annotations

import asyncio
from typing import cast

from braidflow.engine import AdmitExecution, Transition, ids
from braidflow.engine.admission import AdmissionRow
from braidflow.schemas.dead_letters import DeadLetter
from braidflow.streams.admissions import Admissions, encode_row, segment_key
from braidflow.streams.catalog import Catalog


def test_an_agent_given_its_partitions_admits_every_slot_holder_of_every_department_again() -> None:
    # The last record of each department was applied before the crash: no record of theirs
    # comes to the new agent, yet an admission sent last may never have been applied.
    sent: list[Transition] = []
    failures = [RuntimeError("broker away")]

    async def send(transition: Transition) -> None:
        if failures:
            raise failures.pop()
        sent.append(transition)

    async def dead_letter(letter: DeadLetter) -> None:
        raise AssertionError(letter)

    agent = Admissions(cast(Catalog, None), send, dead_letter, lambda: 7)
    support = b"default/support"
    rows = [
        (support, encode_row(AdmissionRow(offset=9, holding=("a", "b"), front=("c",)))),
        (segment_key(support, 0), b'["d"]'),
        (b"acme/sales", encode_row(AdmissionRow(offset=3, holding=("x",)))),
        (b"acme/idle", encode_row(AdmissionRow(offset=5))),
    ]
    assert asyncio.run(agent.admit_holders_again(rows)) == 3
    assert sent == [AdmitExecution(ids.admit_id(e), e, 7) for e in ("a", "b", "x")]
