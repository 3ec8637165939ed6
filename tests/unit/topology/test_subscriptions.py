"""The subscription index: which workflows an event starts, and the webhooks and schedules."""

from __future__ import annotations

from dataclasses import replace
from fnmatch import fnmatchcase
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from braidflow.topology import (
    ConditionError,
    EventTrigger,
    ScheduleTrigger,
    Subscription,
    SubscriptionIndex,
    Workflow,
    compile_workflow,
)


def workflow(
    workflow_id: str,
    *triggers: dict[str, Any],
    department: str | None = None,
    variables: dict[str, Any] | None = None,
) -> Workflow:
    doc: dict[str, Any] = {
        "id": workflow_id,
        "triggers": list(triggers),
        "variables": variables or {},
        "nodes": [{"id": "done", "type": "end"}],
        "edges": [],
    }
    if department is not None:
        doc["department"] = department
    return compile_workflow(doc)


def on(*types: str, when: str | None = None, department: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"types": list(types)}
    if when is not None:
        event["when"] = when
    if department is not None:
        event["department"] = department
    return {"event": event}


def event(event_type: str, data: Any = None, **extensions: Any) -> dict[str, Any]:
    return {
        "id": "e1",
        "type": event_type,
        "source": "/crm",
        "subject": None,
        "time": "2024-01-01T00:00:00Z",
        "data": data if data is not None else {},
        "specversion": "1.0",
        **extensions,
    }


def started(index: SubscriptionIndex, ev: dict[str, Any]) -> list[tuple[str, int]]:
    return [(s.workflow_id, s.trigger_index) for s in index.match(ev)]


def test_an_exact_type_starts_the_workflows_that_name_it() -> None:
    index = SubscriptionIndex.build(
        [
            workflow("onboard", on("employee.onboarded")),
            workflow("other", on("employee.left")),
        ]
    )
    assert index.match(event("employee.onboarded")) == [
        Subscription("onboard", 0, EventTrigger(("employee.onboarded",)))
    ]
    assert index.match(event("employee.promoted")) == []


@pytest.mark.parametrize(
    ("glob", "matching", "not_matching"),
    [
        (
            "ticket.*",
            ["ticket.created", "ticket.a.b", "ticket."],
            ["ticket", "tickets.x", "Ticket.x"],
        ),
        ("ticket.?reated", ["ticket.created", "ticket.treated"], ["ticket.ccreated"]),
        ("ticket.[cu]*", ["ticket.created", "ticket.updated"], ["ticket.resolved"]),
        ("ticket.[!c]*", ["ticket.updated"], ["ticket.created"]),
        ("*.created", ["ticket.created", "a.b.created"], ["ticket.updated", "created"]),
        ("*", ["anything", "a.b"], []),
        ("tick*", ["ticket.created", "tick"], ["tack"]),
        ("?icket.created", ["ticket.created", "wicket.created"], ["icket.created"]),
        ("[tw]icket.*", ["ticket.x", "wicket.x"], ["bicket.x"]),
        ("com.example.*.v1", ["com.example.order.v1"], ["com.example.order.v2"]),
    ],
)
def test_globs_match_like_fnmatch_case_sensitive(
    glob: str, matching: list[str], not_matching: list[str]
) -> None:
    index = SubscriptionIndex.build([workflow("wf", on(glob))])
    for event_type in matching:
        assert started(index, event(event_type)) == [("wf", 0)], event_type
    for event_type in not_matching:
        assert started(index, event(event_type)) == [], event_type


def test_an_event_starts_one_execution_per_workflow_the_first_matching_trigger_winning() -> None:
    index = SubscriptionIndex.build(
        [
            workflow(
                "tickets",
                on("ticket.created", when="event.data.priority == 'high'"),
                on("ticket.*"),
                on("*.created"),
            ),
            workflow("audit", on("*"), on("ticket.created")),
        ]
    )
    assert started(index, event("ticket.created", {"priority": "high"})) == [
        ("audit", 0),
        ("tickets", 0),
    ]
    assert started(index, event("ticket.created", {"priority": "low"})) == [
        ("audit", 0),
        ("tickets", 1),
    ]
    assert started(index, event("order.created")) == [("audit", 0), ("tickets", 2)]


def test_a_trigger_whose_globs_overlap_is_one_subscription() -> None:
    index = SubscriptionIndex.build(
        [workflow("wf", on("ticket.*", "ticket.created", "*.created", "*", when="false"))]
    )
    match = index.match_with_errors(event("ticket.created"))
    assert match.subscriptions == ()
    assert match.errors == ()


def test_the_department_of_the_trigger_or_else_of_the_workflow_scopes_events() -> None:
    index = SubscriptionIndex.build(
        [
            workflow("people_wf", on("employee.*"), department="people"),
            workflow(
                "support_trigger", on("employee.*", department="support"), department="people"
            ),
            workflow("everyone", on("employee.*")),
        ]
    )
    assert started(index, event("employee.onboarded", department="people")) == [
        ("everyone", 0),
        ("people_wf", 0),
    ]
    assert started(index, event("employee.onboarded", department="support")) == [
        ("everyone", 0),
        ("support_trigger", 0),
    ]
    assert started(index, event("employee.onboarded")) == [("everyone", 0)]


def test_a_condition_reads_the_event_and_the_workflow_variables() -> None:
    index = SubscriptionIndex.build(
        [
            workflow(
                "urgent",
                on(
                    "ticket.created",
                    when="event.data.priority == vars.level && event.source == '/crm'",
                ),
                variables={"level": "high"},
            )
        ]
    )
    assert started(index, event("ticket.created", {"priority": "high"})) == [("urgent", 0)]
    assert started(index, event("ticket.created", {"priority": "low"})) == []


def test_a_condition_that_fails_or_is_not_boolean_does_not_match_and_is_reported() -> None:
    index = SubscriptionIndex.build(
        [
            workflow("missing", on("x.y", when="event.data.nope == 1"), on("x.*")),
            workflow("number", on("x.y", when="event.data.n")),
            workflow("text", on("x.y", when="'yes'")),
            workflow("fine", on("x.y", when="event.data.n == 3")),
        ]
    )
    match = index.match_with_errors(event("x.y", {"n": 3}))
    assert [(s.workflow_id, s.trigger_index) for s in match.subscriptions] == [
        ("fine", 0),
        ("missing", 1),
    ]
    assert [(e.workflow_id, e.trigger_index) for e in match.errors] == [
        ("missing", 0),
        ("number", 0),
        ("text", 0),
    ]
    assert match.errors[1] == ConditionError(
        "number", 0, "`event.data.n` gave 3, not true or false"
    )
    assert "nope" in match.errors[0].message
    assert index.match(event("x.y", {"n": 3})) == list(match.subscriptions)


def test_a_condition_is_not_evaluated_outside_its_department() -> None:
    index = SubscriptionIndex.build(
        [workflow("wf", on("x.y", when="event.data.nope", department="support"))]
    )
    assert index.match_with_errors(event("x.y", department="sales")).errors == ()


def test_an_event_without_a_type_starts_nothing() -> None:
    index = SubscriptionIndex.build([workflow("wf", on("*"))])
    assert index.match({"id": "e1", "data": {}}) == []


def test_may_match_tells_whether_any_trigger_listens_to_a_type() -> None:
    index = SubscriptionIndex.build(
        [
            workflow("a", on("employee.onboarded", when="false", department="people")),
            workflow("b", on("ticket.*")),
            workflow("c", on("*.audited")),
        ]
    )
    for event_type in ["employee.onboarded", "ticket.created", "order.audited"]:
        assert index.may_match(event_type), event_type
    for event_type in ["employee.left", "ticket", "order.created", ""]:
        assert not index.may_match(event_type), event_type


def test_listens_under_tells_whether_any_trigger_may_match_a_first_segment() -> None:
    exact = SubscriptionIndex.build([workflow("a", on("braidflow.workflow.completed"))])
    segment = SubscriptionIndex.build([workflow("b", on("braidflow.node.*"))])
    anywhere = SubscriptionIndex.build([workflow("c", on("*.completed"))])
    others = SubscriptionIndex.build([workflow("d", on("ticket.*", "braidflowish.x"))])
    assert exact.listens_under("braidflow") and not exact.listens_under("ticket")
    assert segment.listens_under("braidflow")
    assert anywhere.listens_under("braidflow") and anywhere.listens_under("ticket")
    assert not others.listens_under("braidflow") and others.listens_under("ticket")
    assert not SubscriptionIndex().listens_under("braidflow")


def test_a_trigger_on_a_department_alert_alone_does_not_listen_under_the_lifecycle() -> None:
    bus = frozenset({"braidflow.department.alert"})
    alerts = SubscriptionIndex.build([workflow("a", on("braidflow.department.alert"))])
    assert alerts.listens_under("braidflow") and not alerts.listens_under("braidflow", bus)
    both = SubscriptionIndex.build(
        [workflow("a", on("braidflow.department.alert", "braidflow.workflow.failed"))]
    )
    assert both.listens_under("braidflow", bus)
    glob = SubscriptionIndex.build([workflow("b", on("braidflow.department.*"))])
    assert glob.listens_under("braidflow", bus)


def test_schedule_slots_is_at_hand_beside_the_index() -> None:
    from braidflow.topology import schedule_slots as exported
    from braidflow.topology.subscriptions import schedule_slots

    assert schedule_slots is exported
    assert schedule_slots(ScheduleTrigger("0 * * * *"), 0, 3_600_000) == [3_600_000]


def test_webhooks_and_schedules_are_listed() -> None:
    index = SubscriptionIndex.build(
        [
            workflow(
                "b",
                {"webhook": {"name": "hook"}},
                {"schedule": {"cron": "0 9 * * 1-5", "timezone": "Europe/Berlin"}},
            ),
            workflow("a", on("x"), {"webhook": {"name": "hook"}}, {"webhook": {"name": "a-only"}}),
            workflow("c", {"schedule": {"cron": "* * * * * */2"}}),
        ]
    )
    assert index.webhooks("hook") == ["a", "b"]
    assert index.webhooks("a-only") == ["a"]
    assert index.webhooks("nobody") == []
    assert index.schedules() == [
        ("b", 1, ScheduleTrigger("0 9 * * 1-5", "Europe/Berlin")),
        ("c", 0, ScheduleTrigger("* * * * * */2", "UTC")),
    ]
    assert started(index, event("x")) == [("a", 0)]


def test_a_workflow_given_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="'wf' is given twice"):
        SubscriptionIndex.build([workflow("wf", on("x")), workflow("wf", on("y"))])


# Many subscriptions


def many_workflows(count: int) -> list[Workflow]:
    """`count` workflows in 50 teams, triggered by exact types, anchored globs, wildcard-first
    globs, departments and conditions; cloned from one compiled workflow, as compiling 5,000
    takes seconds."""
    template = workflow(
        "template", on("x", when="event.data.n % 7 == vars.rest"), variables={"rest": 0}
    )
    condition = template.trigger_conditions[0]
    made = []
    for i in range(count):
        kind, team = i % 10, f"team{i // 10 % 50}"
        if kind < 5:
            trigger = EventTrigger((f"{team}.item{i}.created",))
        elif kind < 8:
            trigger = EventTrigger((f"{team}.*", f"{team}.item*.deleted"))
        elif kind == 8:
            trigger = EventTrigger((f"{team}.?tem{i}.*",), department=f"d{i % 3}")
        elif i % 1000 == 9:
            trigger = EventTrigger(("*.created",))
        else:
            trigger = EventTrigger((f"{team}.item{i}.created",), when=condition.source)
        definition = replace(
            template.definition, id=f"wf{i:05}", triggers=(trigger,), variables={"rest": i % 7}
        )
        conditions = {0: condition} if trigger.when else {}
        made.append(
            replace(
                template, definition=definition, triggers=(trigger,), trigger_conditions=conditions
            )
        )
    return made


def brute_force(workflows: list[Workflow], ev: dict[str, Any]) -> list[tuple[str, int]]:
    """What the index must answer, found by trying every trigger of every workflow."""
    found = []
    for wf in sorted(workflows, key=lambda w: w.id):
        for i, trigger in enumerate(wf.triggers):
            assert isinstance(trigger, EventTrigger)
            department = trigger.department or wf.definition.department
            if not any(fnmatchcase(ev["type"], g) for g in trigger.types):
                continue
            if department is not None and ev.get("department") != department:
                continue
            condition = wf.trigger_conditions.get(i)
            scope = {"event": ev, "vars": wf.definition.variables}
            if condition is None or condition.evaluate(scope) is True:
                found.append((wf.id, i))
                break
    return found


@pytest.mark.parametrize(
    ("ev", "count"),
    [
        # wf00421 by its exact type, 30 by `team42.*`, 5 by `*.created`
        (event("team42.item421.created"), 36),
        # 30 by `team42.*` and `team42.item*.deleted` at once, wf00428 in department d2
        (event("team42.item428.deleted", department="d2"), 31),
        (event("team42.item428.deleted", department="d0"), 30),
        # wf00429's condition: n % 7 == 429 % 7
        (event("team42.item429.created", {"n": 2}), 36),
        (event("team42.item429.created", {"n": 3}), 35),
        (event("Team42.item421.created"), 5),
        (event("nobody.item1.created"), 5),
        (event("team42"), 0),
    ],
)
def test_five_thousand_subscriptions_answer_as_trying_each_would(
    ev: dict[str, Any], count: int, five_thousand: tuple[list[Workflow], SubscriptionIndex]
) -> None:
    workflows, index = five_thousand
    answer = started(index, ev)
    assert answer == brute_force(workflows, ev)
    assert len(answer) == count


@pytest.fixture(scope="module")
def five_thousand() -> tuple[list[Workflow], SubscriptionIndex]:
    workflows = many_workflows(5000)
    return workflows, SubscriptionIndex.build(workflows)


# Versions of a few workflows, each with a different mix of triggers: exact types, globs
# with a literal first segment, globs without, webhooks and schedules.
VERSIONS = {
    "a": [
        workflow("a", on("ticket.opened"), {"webhook": {"name": "hook"}}),
        workflow("a", on("ticket.*", "*.closed"), {"schedule": {"cron": "0 9 * * *"}}),
    ],
    "b": [
        workflow("b", on("ticket.opened", when="event.data.n > 1"), {"webhook": {"name": "hook"}}),
        workflow("b", on("order.*"), {"webhook": {"name": "other"}}),
    ],
    "c": [
        workflow("c", {"schedule": {"cron": "* * * * * */2"}}, on("*.opened")),
        workflow("c", on("order.paid", "ticket.opened")),
    ],
}
TYPES = ["ticket.opened", "ticket.closed", "order.paid", "order.closed", "x.opened", "none"]


@given(
    st.lists(
        st.tuples(st.sampled_from(sorted(VERSIONS)), st.sampled_from([0, 1, None])), max_size=12
    )
)
def test_adding_and_removing_one_workflow_at_a_time_answers_as_a_fresh_build(
    steps: list[tuple[str, int | None]],
) -> None:
    # Asked after every step: what the index remembers of a type must not outlive a change.
    index = SubscriptionIndex()
    latest: dict[str, Workflow] = {}
    for workflow_id, version in steps:
        if version is None:
            index.remove(workflow_id)
            latest.pop(workflow_id, None)
        else:
            index.add(VERSIONS[workflow_id][version])
            latest[workflow_id] = VERSIONS[workflow_id][version]
        fresh = SubscriptionIndex.build(latest.values())
        for event_type in TYPES:
            ev = event(event_type, {"n": 2})
            assert started(index, ev) == started(fresh, ev)
            assert index.may_match(event_type) == fresh.may_match(event_type)
            segment = event_type.partition(".")[0]
            assert index.listens_under(segment) == fresh.listens_under(segment)
    fresh = SubscriptionIndex.build(latest.values())
    for hook in ("hook", "other"):
        assert index.webhooks(hook) == fresh.webhooks(hook)
    assert index.schedules() == fresh.schedules()


def test_a_flood_of_distinct_types_is_answered_right_without_remembering_them_all() -> None:
    index = SubscriptionIndex.build([workflow("any", on("*.seen")), workflow("one", on("a.seen"))])
    for n in range(25_000):
        assert started(index, event(f"t{n}.seen")) == [("any", 0)]
    assert started(index, event("a.seen")) == [("any", 0), ("one", 0)]
    assert len(index._candidates) <= 10_000
