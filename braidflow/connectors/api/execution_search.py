"""The query parameters that search a workflow's executions, read into an `ExecutionSearch`.

`status`, `from` and `to` (when it started, ISO 8601), `event_type` and `event_id` (the
event that triggered it), and any number of `input.<field>=<value>`: the input's field (a
dotted path, `input.customer.name`) holds the value. The value is read as JSON when it is a
number, `true`, `false` or `null`, else as a string: `input.id=42` finds the number 42,
`input.id="42"` the string. A bad one is a 400 naming the parameter.
"""

from __future__ import annotations

import json
import re
from typing import Any

from multidict import MultiMapping

from braidflow.connectors.api.bodies import TIME_QUERY, choice_query, time_query
from braidflow.connectors.api.errors import BadRequest
from braidflow.connectors.api.openapi import EXECUTION_STATUSES, STRING, query_param
from braidflow.connectors.execution_search import ExecutionSearch, InputMatch

INPUT_PREFIX = "input."
MOST_INPUT_FIELDS = 10
"""How many input fields one search may name."""
MOST_DEPTH = 8
MOST_TEXT = 500
"""The longest value (event type or id, input value) a search takes, in characters."""
_KEY = re.compile(r"[A-Za-z0-9_-]{1,100}")

SEARCH_PARAMETERS = [
    query_param("status", "Only those with this status", {"enum": list(EXECUTION_STATUSES)}),
    query_param("from", "Only those started (or accepted) at this time or later", TIME_QUERY),
    query_param("to", "Only those started (or accepted) at this time or earlier", TIME_QUERY),
    query_param(
        "event_type",
        "Only those an event of this type started",
        {**STRING, "minLength": 1, "maxLength": MOST_TEXT},
    ),
    query_param(
        "event_id",
        "Only those the event with this id started",
        {**STRING, "minLength": 1, "maxLength": MOST_TEXT},
    ),
]
"""The search's parameters as the OpenAPI document shows them; `input.<field>` has a
name of the caller's choosing, so the description of the operation tells it."""


def execution_search(query: MultiMapping[str]) -> ExecutionSearch:
    """The search `query` asks for; BadRequest naming the parameter at fault."""
    from_ms, to_ms = time_query(query, "from"), time_query(query, "to")
    if from_ms is not None and to_ms is not None and from_ms > to_ms:
        raise BadRequest(f"from: {query['from']!r} is after to ({query['to']!r})", field="from")
    inputs = [
        InputMatch(_input_path(name), _input_value(name, raw))
        for name, raw in query.items()
        if name.startswith(INPUT_PREFIX)
    ]
    if len(inputs) > MOST_INPUT_FIELDS:
        raise BadRequest(
            f"input: {len(inputs)} input fields, at most {MOST_INPUT_FIELDS}", field="input"
        )
    return ExecutionSearch(
        status=choice_query(query, "status", EXECUTION_STATUSES),
        from_ms=from_ms,
        to_ms=to_ms,
        inputs=tuple(inputs),
        event_type=_text(query, "event_type"),
        event_id=_text(query, "event_id"),
    )


def _input_path(name: str) -> tuple[str, ...]:
    path = tuple(name[len(INPUT_PREFIX) :].split("."))
    if len(path) > MOST_DEPTH or not all(_KEY.fullmatch(key) for key in path):
        raise BadRequest(
            f"{name}: an input field is a dotted path of at most {MOST_DEPTH} names of"
            " letters, digits, '_' and '-'",
            field=name,
        )
    return path


def _input_value(name: str, raw: str) -> Any:
    if len(raw) > MOST_TEXT:
        raise BadRequest(f"{name}: longer than {MOST_TEXT} characters", field=name)
    try:
        value = json.loads(raw)
    except ValueError:
        return raw
    if isinstance(value, list | dict):
        raise BadRequest(
            f"{name}: {raw!r} is an array or object; search for a string, number, true,"
            " false or null",
            field=name,
        )
    return value


def _text(query: MultiMapping[str], name: str) -> str | None:
    raw = query.get(name)
    if raw is not None and not 1 <= len(raw) <= MOST_TEXT:
        raise BadRequest(f"{name}: from 1 to {MOST_TEXT} characters", field=name)
    return raw
