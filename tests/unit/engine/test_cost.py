"""What an execution used (engine/cost.py), and its department's per-execution budget: plain
data, no worker."""

from __future__ import annotations

from typing import Any

import pytest
from engine_driver import applied, events, of_type, settle, workflow
from engine_scenarios import T0, done, failed, fired, started

from braidflow.engine import (
    AdmissionReleased,
    AdmissionRequested,
    AdmitExecution,
    CancelExecution,
    StartExecution,
    TaskRequest,
    ids,
)
from braidflow.engine.admission import AdmissionRow, admit
from braidflow.engine.cost import execution_cost, spent
from braidflow.engine.state import NodeRun
from braidflow.topology import DefinitionError, Workflow
from braidflow.topology.departments import compile_department, with_defaults

# Two model calls in parallel, then an http call: the budget may be spent by either model call.
TRIAGE = """
id: triage
department: support
nodes:
  - {id: fan, type: parallel}
  - {id: sort, type: classify, params: {connection: m, model: small, text: hi, labels: [a, b]}}
  - {id: sum, type: summarize, params: {connection: m, model: big, text: hi}}
  - {id: join, type: join}
  - {id: call, type: http, params: {method: GET, url: "http://127.0.0.1:1/x"}, retry: {max_attempts: 3, backoff: fixed, initial: 10s}}
  - {id: done, type: end}
edges:
  - {from: fan, to: sort}
  - {from: fan, to: sum}
  - {from: sort, to: join}
  - {from: sum, to: join}
  - {from: join, to: call}
  - {from: call, to: done}
"""


def answer(model: str, prompt: int, completion: int, cost: float | None) -> dict[str, Any]:
    output: dict[str, Any] = {
        "label": "a",
        "model": model,
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }
    if cost is not None:
        output["cost"] = cost
    return output


def budgeted(per_execution: float) -> Workflow:
    settings = {"budget": {"per_execution": per_execution}}
    department = compile_department({"kind": "Department", "name": "support", "settings": settings})
    assert department.budget_per_execution == per_execution
    return with_defaults(workflow(TRIAGE), department)


def test_an_execution_adds_up_tokens_by_model_money_http_calls_run_times_and_retries() -> None:
    wf = workflow(TRIAGE)
    state, _ = started(wf)
    state = applied(wf, state, done("sort", 1, T0 + 300, answer("small", 100, 5, 0.0001))).state
    state = applied(wf, state, done("sum", 1, T0 + 900, answer("big", 1000, 200, 0.002))).state
    state, _ = settle(wf, applied(wf, state, failed("call", 1, T0 + 950)))
    state, _ = settle(
        wf, applied(wf, state, fired(ids.node_timer("call", 1, "retry"), T0 + 10_950))
    )
    state, _ = settle(wf, applied(wf, state, done("call", 2, T0 + 12_000, {"status": 200})))
    assert state.status == "completed"
    cost = execution_cost(state.nodes.values(), wf)
    assert cost["money"] == 0.0021
    assert cost["tokens"] == {
        "small": {"prompt_tokens": 100, "completion_tokens": 5, "total_tokens": 105},
        "big": {"prompt_tokens": 1000, "completion_tokens": 200, "total_tokens": 1200},
    }
    # The http node's two attempts are two calls, one of them a retry.
    assert cost["http_calls"] == 2 and cost["retries"] == 1
    assert cost["attempts"] == 4
    assert cost["run_ms"]["classify"] == 300 and cost["run_ms"]["summarize"] == 900


def test_a_model_output_without_a_price_counts_tokens_and_no_money() -> None:
    run = NodeRun("sort", "completed", 1, None, answer("small", 7, 3, None), None, T0, T0 + 1)
    cost = execution_cost([run], workflow(TRIAGE))
    assert cost["money"] == 0 and cost["tokens"]["small"]["total_tokens"] == 10
    assert spent([run, NodeRun("sum", "completed", 1, None, {"cost": True})], workflow(TRIAGE)) == 0


def test_another_kind_s_cost_and_usage_are_its_author_s_data_not_spending() -> None:
    # An http node (or a task) answering with an order's `cost` spends nothing on models.
    call = NodeRun("call", "completed", 1, None, answer("m", 5, 5, 12.5), None, T0, T0 + 1)
    cost = execution_cost([call], workflow(TRIAGE))
    assert cost["money"] == 0 and cost["tokens"] == {}
    assert spent([call], workflow(TRIAGE)) == 0


def test_nothing_ran_costs_nothing() -> None:
    assert execution_cost((), None) == {
        "money": 0,
        "tokens": {},
        "http_calls": 0,
        "run_ms": {},
        "attempts": 0,
        "retries": 0,
    }


def test_a_model_call_past_the_budget_fails_the_execution_and_cancels_the_other_call() -> None:
    wf = budgeted(0.01)
    state, _ = started(wf)
    state = applied(wf, state, done("sort", 1, T0 + 300, answer("small", 100, 5, 0.004))).state
    assert state.status == "running"
    result = applied(wf, state, done("sum", 1, T0 + 900, answer("big", 1000, 200, 0.007)))
    final = result.state
    assert final is not None and final.status == "failed"
    assert final.error is not None and final.error.type == "budget.exceeded"
    assert final.error.node_id == "sum"
    assert "0.011" in final.error.message and "budget of 0.01" in final.error.message
    # The completed call keeps its output (its cost is spent); the http call never starts.
    assert final.nodes["sum"].status == "completed"
    assert "call" not in final.nodes
    assert events(result.outgoing)[-1] == "workflow.failed"
    assert not of_type(result.outgoing, TaskRequest)


def test_a_run_within_the_budget_goes_on() -> None:
    wf = budgeted(0.01)
    state, _ = started(wf)
    state = applied(wf, state, done("sort", 1, T0 + 300, answer("small", 1, 1, 0.004))).state
    state, sent = settle(wf, applied(wf, state, done("sum", 1, T0 + 9, answer("big", 1, 1, 0.006))))
    assert state.status == "running" and of_type(sent, TaskRequest)[0].node_id == "call"


def test_a_budget_must_be_more_than_nothing() -> None:
    with pytest.raises(DefinitionError, match=r"settings\.budget\.per_execution"):
        compile_department(
            {"kind": "Department", "name": "s", "settings": {"budget": {"per_execution": 0}}}
        )
    with pytest.raises(DefinitionError, match=r"settings\.budget"):
        compile_department(
            {"kind": "Department", "name": "s", "settings": {"budget": {"per_month": 5}}}
        )


# -- budgets per day: spent as executions end, held at admission

DAY = 86_400_000
KEY = "default/support"
TODAY = 20_000 * DAY


def admitting(
    row: AdmissionRow, record: AdmissionRequested | AdmissionReleased, offset: int
) -> tuple[AdmissionRow, tuple[str, ...]]:
    result = admit(row, lambda _: (), record, offset, None, budget_per_day=1.0)
    assert result is not None
    return result.row, tuple(claim.execution_id for claim in result.admitted)


def test_a_day_whose_ended_executions_spent_the_budget_admits_nobody_until_the_next() -> None:
    row = AdmissionRow()
    row, started = admitting(row, AdmissionRequested("a/q", "a", TODAY + 1, KEY), 0)
    assert started == ("a",)
    row, _ = admitting(row, AdmissionReleased("a/r", "a", TODAY + 2, KEY, 0.6), 1)
    row, started = admitting(row, AdmissionRequested("b/q", "b", TODAY + 3, KEY), 2)
    assert started == ("b",) and row.spent == 0.6
    row, _ = admitting(row, AdmissionReleased("b/r", "b", TODAY + 4, KEY, 0.5), 3)
    assert row.spent == 1.1
    row, started = admitting(row, AdmissionRequested("c/q", "c", TODAY + 5, KEY), 4)
    row, started_too = admitting(row, AdmissionRequested("d/q", "d", TODAY + 6, KEY), 5)
    assert started == started_too == () and ids_waiting(row) == ("c", "d")
    # The next UTC day: c asks again (its midnight timer), and the queue goes in order.
    row, started = admitting(row, AdmissionRequested("c/q/1", "c", TODAY + DAY, KEY), 6)
    assert started == ("c", "d") and (row.day, row.spent) == (TODAY // DAY + 1, 0.0)


def ids_waiting(row: AdmissionRow) -> tuple[str, ...]:
    return tuple(claim.execution_id for claim in (*row.front, *row.back))


def test_a_queued_start_under_a_budget_per_day_asks_again_each_midnight_until_admitted() -> None:
    department = compile_department(
        {"kind": "Department", "name": "support", "settings": {"budget": {"per_day": 5}}}
    )
    wf = with_defaults(workflow(TRIAGE), department)
    at = TODAY + 5_000
    start = StartExecution("s", "ex", at, "triage", 1, {}, admission=KEY)
    state = applied(wf, None, start).state
    midnight = ids.budget_day_timer(TODAY + DAY)
    assert state is not None and state.timers == {midnight: TODAY + DAY}
    result = applied(wf, state, fired(midnight, TODAY + DAY))
    [again] = of_type(result.outgoing, AdmissionRequested)
    assert (again.id, again.at, again.key) == (f"ex/queued/{TODAY // DAY + 1}", TODAY + DAY, KEY)
    state = result.state
    assert state is not None
    assert state.timers == {ids.budget_day_timer(TODAY + 2 * DAY): TODAY + 2 * DAY}
    state, _ = settle(wf, applied(wf, state, AdmitExecution("ex/admit", "ex", TODAY + DAY + 1)))
    assert not state.timers
    state = applied(wf, state, done("sort", 1, TODAY + DAY + 2, answer("s", 1, 1, 0.25))).state
    final = applied(wf, state, CancelExecution("ex/cancel", "ex", TODAY + DAY + 3, "enough"))
    # Its end releases its slot with what it spent, for its department's day.
    [release] = of_type(final.outgoing, AdmissionReleased)
    assert release.spent == 0.25
