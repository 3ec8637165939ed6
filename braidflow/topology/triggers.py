"""Checking a definition's triggers, and compiling the `when` of its event triggers.

Problems are named `trigger #1`, `trigger #2`, ... in file order. Event `types`
are globs with fnmatch semantics, case-sensitive: `*` and `?` match any
characters (dots included), `[...]` a set. A glob holding whitespace is refused:
CloudEvent types have none, so it can only be a typo that never matches.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from braidflow.topology.expressions import Expression, ExpressionError, compile_expression
from braidflow.topology.loading import Problem, declared_variables
from braidflow.topology.schedules import cron_problem, timezone_problem

# An event trigger's `when` sees the event and the workflow's variables, nothing
# of an execution: none exists yet.
TRIGGER_SCOPE = frozenset({"event", "vars"})


def trigger_where(index: int) -> str:
    """How problems name the trigger at `index` (0-based)."""
    return f"trigger #{index + 1}"


def compile_triggers(doc: Mapping[str, Any]) -> Iterator[tuple[int, Expression | Problem]]:
    """Yield (trigger index, compiled event `when`) or (trigger index, Problem).

    Parts the JSON Schema already refused (wrong types) are skipped, not reported twice.
    """
    triggers = doc.get("triggers")
    if not isinstance(triggers, list):
        return
    webhooks: dict[str, int] = {}
    for index, trigger in enumerate(triggers):
        if not isinstance(trigger, Mapping):
            continue
        where = trigger_where(index)
        event, webhook, schedule = (trigger.get(k) for k in ("event", "webhook", "schedule"))
        if isinstance(event, Mapping):
            yield from ((index, p) for p in _type_problems(event.get("types"), where))
            if isinstance(event.get("when"), str):
                yield from ((index, r) for r in _condition(event["when"], where, doc))
        if isinstance(webhook, Mapping) and isinstance(webhook.get("name"), str):
            name = webhook["name"]
            if name in webhooks:
                first = trigger_where(webhooks[name])
                yield index, Problem(where, f"duplicate webhook name {name!r} (also {first})")
            else:
                webhooks[name] = index
        if isinstance(schedule, Mapping):
            yield from ((index, p) for p in _schedule_problems(schedule, where))


def _type_problems(types: Any, where: str) -> Iterator[Problem]:
    if not isinstance(types, list):
        return
    for i, glob in enumerate(types):
        if isinstance(glob, str) and any(c.isspace() for c in glob):
            yield Problem(where, f"event.types.{i}: {glob!r} contains whitespace")


def _condition(source: str, where: str, doc: Mapping[str, Any]) -> Iterator[Expression | Problem]:
    """The compiled `when`, or every problem with it."""
    try:
        expression = compile_expression(source)
    except ExpressionError as exc:
        yield Problem(where, f"event.when: {exc}")
        return
    text = f"event.when: `{source}`"
    problems = [
        Problem(
            where, f"{text}: unknown name '{name}' (in scope: {', '.join(sorted(TRIGGER_SCOPE))})"
        )
        for name in sorted(expression.names - TRIGGER_SCOPE)
    ]
    problems.extend(
        Problem(where, f"{text}: unknown variable '{var}'")
        for var in sorted(expression.members("vars") - declared_variables(doc))
    )
    yield from problems or [expression]


def _schedule_problems(schedule: Mapping[str, Any], where: str) -> Iterator[Problem]:
    cron, timezone = schedule.get("cron"), schedule.get("timezone")
    if isinstance(cron, str) and (problem := cron_problem(cron)):
        yield Problem(where, f"schedule.cron: {problem}")
    if isinstance(timezone, str) and (problem := timezone_problem(timezone)):
        yield Problem(where, f"schedule.timezone: {problem}")
