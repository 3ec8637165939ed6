"""The `delay` node kind. Waits for a duration or until a time."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from braidflow.topology.durations import parse_timestamp
from braidflow.topology.kinds.spec import KindSpec
from braidflow.topology.loading import Problem

PARAMS: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "description": "exactly one of `for` and `until`",
    "properties": {
        "for": {"$ref": "#/$defs/duration"},
        "until": {
            "type": "string",
            "minLength": 1,
            "description": "an ISO-8601 timestamp with an offset or Z, usually a ${...} template",
        },
    },
}


def _check(node: Mapping[str, Any], params: Mapping[str, Any], where: str) -> Iterator[Problem]:
    if "timeout" in node:
        yield Problem(where, "a delay takes no `timeout`; `for` or `until` says how long it waits")
    given = [key for key in ("for", "until") if key in params]
    if not given:
        yield Problem(where, "params: a delay needs `for` (a duration) or `until` (a timestamp)")
    elif len(given) > 1:
        yield Problem(where, "params: a delay takes `for` or `until`, not both")
    until = params.get("until")
    # A template is checked when it renders; a literal can be checked now.
    if isinstance(until, str) and until and "${" not in until:
        try:
            parse_timestamp(until)
        except ValueError as exc:
            yield Problem(where, f"params.until: {exc}")


SPEC = KindSpec(
    "delay",
    "wait",
    PARAMS,
    templated=("until",),
    error_edges=True,
    check=_check,
)
