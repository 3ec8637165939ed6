"""Triggers: event, webhook and schedule triggers are checked, typed and compiled; cron slots."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from braidflow.topology import (
    EventTrigger,
    Problem,
    ScheduleTrigger,
    WebhookTrigger,
    load_workflow,
    schedule_slots,
    validate_text,
)


def with_triggers(*triggers: dict[str, Any], **extra: Any) -> str:
    """A valid two-node workflow with `triggers`, as YAML."""
    doc: dict[str, Any] = {
        "id": "wf",
        "variables": {"level": "high"},
        "triggers": list(triggers),
        "nodes": [
            {"id": "start", "type": "task", "params": {"handler": "h.start"}},
            {"id": "done", "type": "end"},
        ],
        "edges": [{"from": "start", "to": "done"}],
        **extra,
    }
    return yaml.safe_dump(doc, sort_keys=False)


def problems_of(*triggers: dict[str, Any]) -> list[Problem]:
    return validate_text(with_triggers(*triggers))


def test_the_three_kinds_of_trigger_load_as_typed_triggers() -> None:
    workflow = load_workflow(
        with_triggers(
            {"event": {"types": ["ticket.*", "employee.onboarded"], "department": "support"}},
            {"webhook": {"name": "new-ticket"}},
            {"schedule": {"cron": "0 9 * * 1-5", "timezone": "Europe/Berlin"}},
            {"schedule": {"cron": "*/5 * * * *"}},
        )
    )
    assert workflow.triggers == (
        EventTrigger(("ticket.*", "employee.onboarded"), None, "support"),
        WebhookTrigger("new-ticket"),
        ScheduleTrigger("0 9 * * 1-5", "Europe/Berlin"),
        ScheduleTrigger("*/5 * * * *", "UTC"),
    )
    assert workflow.definition.triggers == workflow.triggers
    assert workflow.trigger_conditions == {}


def test_an_event_condition_is_compiled_under_its_trigger_index() -> None:
    workflow = load_workflow(
        with_triggers(
            {"webhook": {"name": "hook"}},
            {"event": {"types": ["ticket.created"], "when": "event.data.priority == vars.level"}},
        )
    )
    (index, condition), *_ = workflow.trigger_conditions.items()
    assert index == 1
    assert condition.evaluate({"event": {"data": {"priority": "high"}}, "vars": {"level": "high"}})


def test_a_workflow_without_triggers_has_none() -> None:
    text = with_triggers()
    assert load_workflow(text).triggers == ()


@pytest.mark.parametrize(
    ("trigger", "message"),
    [
        ({}, "needs exactly one of `event`, `webhook`, `schedule`; has nothing"),
        (
            {"event": {"types": ["a"]}, "webhook": {"name": "b"}},
            "needs exactly one of `event`, `webhook`, `schedule`; has `event`, `webhook`",
        ),
        ({"cron": "* * * * *"}, "needs exactly one of `event`, `webhook`, `schedule`; has `cron`"),
        ({"event": {"when": "true"}}, "event: 'types' is a required property"),
        ({"event": {"types": []}}, "event.types: [] should be non-empty"),
        ({"event": {"types": [""]}}, "event.types.0: '' should be non-empty"),
        ({"event": {"types": ["a"], "filter": "x"}}, "'filter' was unexpected"),
        ({"webhook": {"name": "New"}}, "webhook.name: 'New' does not match ^[a-z0-9][a-z0-9._-]*$"),
        ({"schedule": {"timezone": "UTC"}}, "schedule: 'cron' is a required property"),
    ],
)
def test_trigger_shape_problems(trigger: dict[str, Any], message: str) -> None:
    problems = problems_of(trigger)
    assert [p.where for p in problems] == ["trigger #1"]
    assert message in problems[0].message


def test_a_webhook_name_may_start_with_a_digit() -> None:
    assert problems_of({"webhook": {"name": "2fa.reset_v2"}}) == []


@pytest.mark.parametrize(
    "glob", ["ticket.*", "*.created", "ticket.?reated", "ticket.[cu]*", "*", "com.example.v1"]
)
def test_type_globs_are_accepted(glob: str) -> None:
    assert problems_of({"event": {"types": [glob]}}) == []


@pytest.mark.parametrize("glob", [" ", "ticket. created", "ticket.created "])
def test_a_type_glob_with_whitespace_is_a_problem(glob: str) -> None:
    assert problems_of({"event": {"types": ["a", glob]}}) == [
        Problem("trigger #1", f"event.types.1: {glob!r} contains whitespace")
    ]


def test_an_event_condition_sees_the_event_and_variables() -> None:
    condition = "event.data.priority == vars.level && event.source.startsWith('/crm')"
    assert problems_of({"event": {"types": ["a"], "when": condition}}) == []


def test_an_event_condition_sees_nothing_of_an_execution() -> None:
    when = "input.x && nodes.start.output.ok"
    assert problems_of({"event": {"types": ["a"], "when": when}}) == [
        Problem(
            "trigger #1", f"event.when: `{when}`: unknown name 'input' (in scope: event, vars)"
        ),
        Problem(
            "trigger #1", f"event.when: `{when}`: unknown name 'nodes' (in scope: event, vars)"
        ),
    ]


def test_an_event_condition_reading_an_undeclared_variable() -> None:
    assert problems_of({"event": {"types": ["a"], "when": "event.data.x == vars.nope"}}) == [
        Problem("trigger #1", "event.when: `event.data.x == vars.nope`: unknown variable 'nope'")
    ]


def test_an_event_condition_that_does_not_compile() -> None:
    (problem,) = problems_of({"event": {"types": ["a"], "when": "event.data &&"}})
    assert problem.where == "trigger #1"
    assert problem.message.startswith("event.when: ")
    assert "Syntax error" in problem.message


def test_duplicate_webhook_names_in_one_workflow() -> None:
    problems = problems_of(
        {"webhook": {"name": "hook"}},
        {"webhook": {"name": "other"}},
        {"webhook": {"name": "hook"}},
    )
    assert problems == [Problem("trigger #3", "duplicate webhook name 'hook' (also trigger #1)")]


@pytest.mark.parametrize(
    "cron",
    ["0 9 * * 1-5", "*/5 * * * *", "0 9 * * mon-fri", "0 0 L * *", "* * * * * */2", "30 0 9 * * 0"],
)
def test_crons_of_five_or_six_fields_are_accepted(cron: str) -> None:
    assert problems_of({"schedule": {"cron": cron}}) == []


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        (
            "0 9 * *",
            "'0 9 * *' has 4 fields; use 5 (minute hour day-of-month month day-of-week)"
            " or 6 (the same, then the second)",
        ),
        (
            "@daily",
            "'@daily' has 1 field; use 5 (minute hour day-of-month month day-of-week)"
            " or 6 (the same, then the second)",
        ),
        (
            "0 9 * * * * 2030",
            "'0 9 * * * * 2030' has 7 fields; use 5 (minute hour day-of-month month"
            " day-of-week) or 6 (the same, then the second)",
        ),
        ("61 * * * *", "'61 * * * *' is not a valid cron expression (out of range)"),
        ("* * * * * 60", "'* * * * * 60' is not a valid cron expression (out of range)"),
        ("a b c d e", "'a b c d e' is not a valid cron expression"),
        ("0 0 31 2 *", "'0 0 31 2 *' never matches a date"),
        ("R * * * *", "'R * * * *': random (R) and hashed (H) fields are not supported"),
        ("H/5 * * * *", "'H/5 * * * *': random (R) and hashed (H) fields are not supported"),
    ],
)
def test_cron_problems(cron: str, message: str) -> None:
    assert problems_of({"schedule": {"cron": cron}}) == [
        Problem("trigger #1", f"schedule.cron: {message}")
    ]


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "europe/berlin", "../etc/passwd", ""])
def test_an_unknown_time_zone_is_named(zone: str) -> None:
    assert problems_of({"schedule": {"cron": "0 9 * * *", "timezone": zone}}) == [
        Problem(
            "trigger #1",
            f"schedule.timezone: unknown time zone {zone!r} (use an IANA name such as"
            " Europe/Berlin)",
        )
    ]


def test_every_trigger_problem_is_found_in_one_pass_with_the_graph_ones() -> None:
    text = with_triggers(
        {"event": {"types": ["a b"], "when": "vars.nope"}},
        {"webhook": {"name": "hook"}},
        {"webhook": {"name": "hook"}},
        {"schedule": {"cron": "61 * * * *", "timezone": "Nowhere"}},
    )
    doc = yaml.safe_load(text)
    doc["edges"].append({"from": "start", "to": "ghost"})
    problems = validate_text(yaml.safe_dump(doc))
    assert [p.where for p in problems] == [
        "trigger #1",
        "trigger #1",
        "trigger #3",
        "trigger #4",
        "trigger #4",
        "edge 'start -> ghost'",
    ]


def test_trigger_problems_are_reported_even_when_the_graph_cannot_be_checked() -> None:
    text = yaml.safe_dump(
        {"id": "wf", "triggers": [{"schedule": {"cron": "0 9 * *"}}], "nodes": "x", "edges": []}
    )
    problems = validate_text(text)
    assert any(p.where == "trigger #1" and "has 4 fields" in p.message for p in problems)
    assert any(p.where == "definition" for p in problems)


# Cron slots


def ms(*fields: int) -> int:
    return int(datetime(*fields, tzinfo=UTC).timestamp() * 1000)


def utc(slots: list[int]) -> list[str]:
    return [datetime.fromtimestamp(s / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S") for s in slots]


def test_slots_of_a_weekday_morning_cron_follow_berlin_summer_time() -> None:
    trigger = ScheduleTrigger("0 9 * * 1-5", "Europe/Berlin")
    # Summer time starts on Sunday 2024-03-31: 09:00 is 08:00 UTC before, 07:00 UTC after.
    assert utc(schedule_slots(trigger, ms(2024, 3, 28), ms(2024, 4, 3))) == [
        "2024-03-28 08:00:00",
        "2024-03-29 08:00:00",
        "2024-04-01 07:00:00",
        "2024-04-02 07:00:00",
    ]


def test_a_slot_skipped_by_spring_forward_fires_once_after_the_change() -> None:
    trigger = ScheduleTrigger("30 2 * * *", "Europe/Berlin")
    # 02:30 does not exist on 2024-03-31 in Berlin; it fires at 03:30 CEST (01:30 UTC).
    assert utc(schedule_slots(trigger, ms(2024, 3, 29), ms(2024, 4, 2))) == [
        "2024-03-29 01:30:00",
        "2024-03-30 01:30:00",
        "2024-03-31 01:30:00",
        "2024-04-01 00:30:00",
    ]


def test_an_hourly_cron_stays_hourly_across_spring_forward() -> None:
    trigger = ScheduleTrigger("0 * * * *", "Europe/Berlin")
    assert utc(schedule_slots(trigger, ms(2024, 3, 31, 0), ms(2024, 3, 31, 4))) == [
        "2024-03-31 01:00:00",
        "2024-03-31 02:00:00",
        "2024-03-31 03:00:00",
        "2024-03-31 04:00:00",
    ]


def test_a_repeated_local_time_fires_once_on_fall_back() -> None:
    trigger = ScheduleTrigger("30 2 * * *", "Europe/Berlin")
    # 02:30 happens twice on 2024-10-27 (00:30 and 01:30 UTC); only the first fires.
    assert utc(schedule_slots(trigger, ms(2024, 10, 25), ms(2024, 10, 29))) == [
        "2024-10-25 00:30:00",
        "2024-10-26 00:30:00",
        "2024-10-27 00:30:00",
        "2024-10-28 01:30:00",
    ]


def test_a_slot_delayed_by_the_gap_is_found_from_a_start_after_the_change() -> None:
    trigger = ScheduleTrigger("30 2 * * *", "Europe/Berlin")
    # 03:10 CEST: the change has happened, the slot of 02:30 (fired at 03:30 CEST) has not.
    assert utc(schedule_slots(trigger, ms(2024, 3, 31, 1, 10), ms(2024, 3, 31, 2))) == [
        "2024-03-31 01:30:00"
    ]


def test_a_seconds_cron_fires_every_two_seconds() -> None:
    trigger = ScheduleTrigger("* * * * * */2")
    assert utc(schedule_slots(trigger, ms(2024, 1, 1), ms(2024, 1, 1, 0, 0, 9))) == [
        "2024-01-01 00:00:02",
        "2024-01-01 00:00:04",
        "2024-01-01 00:00:06",
        "2024-01-01 00:00:08",
    ]


def test_a_seconds_cron_runs_without_a_hole_or_a_repeat_through_spring_forward() -> None:
    trigger = ScheduleTrigger("* * * * * *", "Europe/Berlin")
    start = ms(2024, 3, 31, 0, 59, 50)
    slots = schedule_slots(trigger, start, start + 20_000)
    assert slots == [start + 1000 * i for i in range(1, 21)]


def test_slots_are_in_the_half_open_range_after_until() -> None:
    trigger = ScheduleTrigger("0 * * * *")
    assert schedule_slots(trigger, ms(2024, 1, 1, 0), ms(2024, 1, 1, 2)) == [
        ms(2024, 1, 1, 1),
        ms(2024, 1, 1, 2),
    ]
    assert schedule_slots(trigger, ms(2024, 1, 1, 0) + 1, ms(2024, 1, 1, 1) - 1) == []
    assert schedule_slots(trigger, ms(2024, 1, 1, 2), ms(2024, 1, 1, 1)) == []


def test_at_most_limit_slots_come_back_the_earliest_first() -> None:
    trigger = ScheduleTrigger("* * * * * *")
    slots = schedule_slots(trigger, ms(2024, 1, 1), ms(2025, 1, 1), limit=3)
    assert slots == [ms(2024, 1, 1, 0, 0, 1), ms(2024, 1, 1, 0, 0, 2), ms(2024, 1, 1, 0, 0, 3)]
    assert len(schedule_slots(trigger, ms(2024, 1, 1), ms(2025, 1, 1))) == 1000


def test_asking_again_from_the_last_slot_continues_the_schedule() -> None:
    trigger = ScheduleTrigger("*/20 * * * *", "Europe/Berlin")
    after, until = ms(2024, 3, 30, 23), ms(2024, 3, 31, 3)
    pages: list[int] = []
    while page := schedule_slots(trigger, after, until, limit=2):
        pages.extend(page)
        after = page[-1]
    assert pages == schedule_slots(trigger, ms(2024, 3, 30, 23), until)
    assert len(pages) == len(set(pages)) == 12
