"""Which executions a search asks for, and the SQL condition that finds them on either store.

Pure: `ExecutionSearch` is plain data and `condition` builds text and parameters, so a unit
test checks both dialects without a database.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from braidflow.connectors.read_model_db import Dialect, given_conditions, json_text


@dataclass(frozen=True)
class InputMatch:
    """An input field (`path`, keys outermost first) that holds `value` (a JSON scalar)."""

    path: tuple[str, ...]
    value: str | int | float | bool | None


@dataclass(frozen=True)
class ExecutionSearch:
    """Executions with `status`, started (or accepted) from `from_ms` to `to_ms` (epoch ms,
    both included), whose input matches every one of `inputs`, triggered by an event of
    `event_type` and with id `event_id`; what is None (or empty) is not asked."""

    status: str | None = None
    from_ms: int | None = None
    to_ms: int | None = None
    inputs: tuple[InputMatch, ...] = ()
    event_type: str | None = None
    event_id: str | None = None


def condition(search: ExecutionSearch, dialect: Dialect) -> tuple[str, list[Any]]:
    """` AND ...` conditions on the `executions` table for `search` (SQLite parameter style,
    see `Dialect.statement`), and their parameters in order; empty when it asks nothing."""
    text, params = given_conditions(
        (
            ("status = ?", search.status),
            ("started_at >= ?", search.from_ms),
            ("started_at <= ?", search.to_ms),
        )
    )
    for match in search.inputs:
        contains = dialect.json_contains("input")
        if contains is not None:
            # What an index finds (PostgreSQL's GIN); the exact test below keeps to what
            # SQLite finds (containment compares numbers by value: 5.0 holds 5).
            text += f" AND {contains}"
            params.append(json_text(_nested(match)))
        text += f" AND {dialect.json_field('input')} = ?"
        params += [dialect.json_path(match.path), json_text(match.value)]
    events, event_params = given_conditions(
        (("event_type = ?", search.event_type), ("event_id = ?", search.event_id))
    )
    return text + events, params + event_params


def _nested(match: InputMatch) -> Any:
    """The smallest JSON document that holds `match`'s value at its path."""
    document: Any = match.value
    for key in reversed(match.path):
        document = {key: document}
    return document
