"""The engine on SLAs: a workflow's `settings.sla` (or its department's) is a durable timer; an
execution still running when it fires tells the breach once, one that ended before never."""

from __future__ import annotations

from engine_driver import applied, assert_ignored, events, of_type, settle, workflow
from engine_scenarios import BRANCHES, EX, T0, done, fired, started

from braidflow.engine import PublishEvent
from braidflow.topology.departments import compile_department, with_defaults

WITH_SLA = BRANCHES.replace("settings: {timeout: 1h}", "settings: {timeout: 1h, sla: 5m}")
FIVE_MINUTES = 300_000


def test_an_execution_running_past_its_sla_tells_the_breach_once_and_runs_on() -> None:
    wf = workflow(WITH_SLA)
    state, _ = started(wf)
    assert state.timers["execution/sla"] == T0 + FIVE_MINUTES
    result = applied(wf, state, fired("execution/sla", T0 + FIVE_MINUTES))
    assert events(result.outgoing) == ["workflow.sla_breached"]
    [published] = of_type(result.outgoing, PublishEvent)
    assert published.type == "braidflow.sla.breached"
    assert published.id == f"{EX}/sla.breached" and published.subject == EX
    assert published.data["sla_ms"] == FIVE_MINUTES
    assert published.data["workflow"] == "branches"
    assert result.state is not None and result.state.status == "running"
    assert "execution/sla" not in result.state.timers
    # The same timer again (a resend by the scanner) is not pending any more.
    assert_ignored(wf, result.state, fired("execution/sla", T0 + FIVE_MINUTES + 1))


def test_an_execution_that_ends_before_its_sla_holds_no_sla_timer() -> None:
    wf = workflow(WITH_SLA)
    state, _ = started(wf)
    state = applied(wf, state, done("a", 1, T0 + 1)).state
    final, sent = settle(wf, applied(wf, state, done("b", 1, T0 + 2)))
    assert final.status == "completed" and "execution/sla" not in final.timers
    assert "workflow.sla_breached" not in events(sent)
    assert_ignored(wf, final, fired("execution/sla", T0 + FIVE_MINUTES))


def test_a_workflow_without_sla_sets_no_timer() -> None:
    state, _ = started(workflow(BRANCHES))
    assert "execution/sla" not in state.timers


def test_a_department_sla_applies_to_its_workflows_that_set_none() -> None:
    department = compile_department(
        {"kind": "Department", "name": "ops", "settings": {"sla": "2m"}}
    )
    assert department.sla_ms == 120_000
    wf = with_defaults(workflow(BRANCHES), department)
    state, _ = started(wf)
    assert state.timers["execution/sla"] == T0 + 120_000
    # A workflow's own SLA wins over its department's.
    own = with_defaults(workflow(WITH_SLA), department)
    assert own.definition.sla_ms == FIVE_MINUTES
