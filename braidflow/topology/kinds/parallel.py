"""The `parallel` node kind. Takes every edge whose `when` holds (all without one)."""

from __future__ import annotations

from typing import Any

from braidflow.topology.kinds.spec import KindSpec

PARAMS: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"fail_fast": {"type": "boolean"}},
}


SPEC = KindSpec(
    "parallel",
    "control",
    PARAMS,
    params_required=False,
    branches=True,
)
