"""Department caps, the pure side: who of one department's queue starts, in which order.

A `Department` below plays the admissions agent: it keeps the head row and the segment rows
as the table would, applying each `Admitted` as the agent writes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from braidflow.engine import AdmissionReleased, AdmissionRequested
from braidflow.engine.admission import (
    AdmissionRow,
    Admitted,
    Claim,
    admit,
    holders,
    queue_length,
)

KEY = "default/support"


def ids_of(claims: tuple[Claim, ...]) -> tuple[str, ...]:
    return tuple(claim.execution_id for claim in claims)


@dataclass
class Department:
    cap: int | None
    segment_size: int = 256
    row: AdmissionRow = field(default_factory=AdmissionRow)
    segments: dict[int, tuple[Claim, ...]] = field(default_factory=dict)
    offset: int = 0
    started: list[str] = field(default_factory=list)
    # Each admission as the agent sends it: the execution and the header it carries.
    admissions: list[Claim] = field(default_factory=list)

    def apply(self, record: AdmissionRequested | AdmissionReleased) -> Admitted | None:
        result = admit(
            self.row,
            lambda i: self.segments.get(i, ()),
            record,
            self.offset,
            self.cap,
            self.segment_size,
        )
        self.offset += 1
        if result is not None:
            self.segments.update(result.writes)
            self.row = result.row
            for index in result.drops:
                del self.segments[index]
            self.started += ids_of(result.admitted)
            self.admissions += result.admitted
        return result

    def request(self, *executions: str, traceparent: str | None = None) -> None:
        for execution in executions:
            self.apply(AdmissionRequested(f"{execution}/queued", execution, 0, KEY, traceparent))

    def release(self, *executions: str) -> None:
        for execution in executions:
            self.apply(AdmissionReleased(f"{execution}/released", execution, 0, KEY))


def test_the_first_cap_requests_start_at_once_and_the_rest_wait_in_order() -> None:
    support = Department(cap=2)
    support.request("a", "b", "c", "d")
    assert support.started == ["a", "b"]
    assert ids_of(support.row.holding) == ("a", "b")
    support.release("b")
    assert support.started == ["a", "b", "c"]
    support.release("a", "c")
    assert support.started == ["a", "b", "c", "d"]
    assert ids_of(support.row.holding) == ("d",)


def test_a_repeated_request_is_ignored_whether_it_holds_a_slot_or_waits() -> None:
    support = Department(cap=1)
    support.request("a", "b", "a", "b")
    assert ids_of(support.row.holding) == ("a",) and queue_length(support.row) == 1
    support.release("a")
    support.release("b")
    assert support.started == ["a", "b"] and ids_of(support.row.holding) == ()


def test_a_release_of_an_execution_holding_no_slot_frees_none() -> None:
    support = Department(cap=1)
    support.request("a", "b")
    support.release("stranger")
    support.release("stranger")
    assert support.started == ["a"]


def test_a_record_applied_already_changes_nothing() -> None:
    support = Department(cap=1)
    support.request("a", "b")
    row = support.row
    again = admit(row, lambda i: (), AdmissionReleased("r", "a", 0, KEY), row.offset, 1)
    assert again is None


def test_an_execution_that_ends_while_queued_leaves_the_queue() -> None:
    support = Department(cap=1)
    support.request("a", "b", "c")
    support.release("b")  # cancelled while it waited
    support.release("a")
    assert support.started == ["a", "c"]


def test_a_long_queue_is_split_into_segment_rows_and_keeps_its_order() -> None:
    support = Department(cap=1, segment_size=3)
    executions = [f"e{i}" for i in range(20)]
    support.request(*executions)
    row = support.row
    assert len(row.back) <= 3 and len(row.segments) >= 4
    assert all(len(claims) <= 3 for claims in support.segments.values())
    assert queue_length(row, 3) == 19
    for execution in executions:
        support.release(execution)
    assert support.started == executions
    assert support.segments == {} and ids_of(support.row.holding) == ()


def test_a_cancel_deep_in_the_queue_takes_it_out_of_its_segment_row() -> None:
    support = Department(cap=1, segment_size=2)
    support.request("a", "b", "c", "d", "e", "f", "g")
    (deep,) = [i for i, claims in support.segments.items() if "d" in ids_of(claims)]
    support.release("d")
    assert "d" not in ids_of(support.segments[deep])
    for execution in ("a", "b", "c", "e", "f"):
        support.release(execution)
    assert support.started == ["a", "b", "c", "e", "f", "g"]


def test_a_repeated_request_deep_in_the_queue_is_skipped_while_it_holds_a_slot() -> None:
    support = Department(cap=2, segment_size=2)
    support.request("a", "b", "c", "d", "e", "f")
    support.request("c")  # an outbox resend: c waits in a segment row, not at either end
    support.release("a")
    assert ids_of(support.row.holding) == ("b", "c")
    support.release("b")
    assert support.started == ["a", "b", "c", "d"]


def test_a_lowered_cap_admits_nobody_until_enough_have_ended() -> None:
    support = Department(cap=3)
    support.request("a", "b", "c", "d", "e")
    support.cap = 1
    support.release("a")
    assert support.started == ["a", "b", "c"]
    support.release("b")
    assert support.started == ["a", "b", "c"]
    support.release("c")
    assert support.started == ["a", "b", "c", "d"]


def test_a_raised_cap_admits_more_at_the_next_record_of_the_department() -> None:
    support = Department(cap=1)
    support.request("a", "b", "c", "d")
    support.cap = 3
    support.request("e")
    assert support.started == ["a", "b", "c"]
    support.cap = None  # the cap removed: everyone waiting starts
    support.release("a")
    assert support.started == ["a", "b", "c", "d", "e"]


def test_the_holders_to_admit_again_are_every_department_s_slot_holders_in_order() -> None:
    # Before the SIGKILL: b's AdmitExecution was sent and acknowledged, but the orchestrator
    # that took over never applied it, and no record of its department comes any more.
    support = Department(cap=2)
    support.request("a", "b", "c")
    sales = Department(cap=1)
    sales.request("x", "y")
    idle = Department(cap=3)
    rows = [(KEY, support.row), ("default/sales", sales.row), ("t/idle", idle.row)]
    assert ids_of(holders(rows)) == ("a", "b", "x")


def trace(n: int) -> str:
    return f"00-{n:032x}-{n:016x}-01"


def test_each_admission_carries_the_trace_its_request_named_even_from_a_segment_row() -> None:
    support = Department(cap=1, segment_size=2)
    for n, execution in enumerate("abcdefg", start=1):
        support.request(execution, traceparent=trace(n))
    assert support.segments  # some wait in segment rows, kept with their traces
    for execution in "abcdef":
        support.release(execution)
    assert support.admissions == [Claim(e, trace(n)) for n, e in enumerate("abcdefg", start=1)]


def test_a_request_without_a_trace_admits_without_one_and_slot_holders_keep_theirs() -> None:
    support = Department(cap=2)
    support.request("old")  # written before requests carried a trace
    support.request("new", traceparent=trace(7))
    assert support.admissions == [Claim("old"), Claim("new", trace(7))]
    assert holders([(KEY, support.row)]) == (Claim("old"), Claim("new", trace(7)))
