"""The `decision` node kind. Takes the first edge whose `when` holds, else its default edge."""

from __future__ import annotations

from typing import Any

from braidflow.topology.kinds.spec import KindSpec

PARAMS: dict[str, Any] = {"type": "object", "additionalProperties": False, "properties": {}}


SPEC = KindSpec(
    "decision",
    "control",
    PARAMS,
    params_required=False,
    branches=True,
)
