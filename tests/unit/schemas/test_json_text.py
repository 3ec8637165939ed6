"""Values travel as the JSON text `json.JSONEncoder` writes, its C encoder made once."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest

from braidflow.schemas.records import _to_json_text

ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))

VALUES: list[Any] = [
    None,
    True,
    0,
    -(2**70),
    2.5,
    1e-300,
    "plain",
    'quote " backslash \\ tab \t newline \n nul \x00 é ✓ 😀',
    [],
    {},
    {"n": 1, "items": [1, 2, {"deep": [None, False]}], "name": "ticket"},
    {1: "an int key", 2.5: "a float key", None: "null", False: "bool"},
    (1, 2, (3,)),
    [{"a": {"b": {"c": ["d"] * 3}}}] * 2,
]


@pytest.mark.parametrize("value", VALUES, ids=range(len(VALUES)))
def test_a_value_s_text_is_json_encoder_s(value: Any) -> None:
    assert _to_json_text(value) == ENCODER.encode(value)


@pytest.mark.parametrize("value", [math.nan, math.inf, [-math.inf], {"x": math.nan}])
def test_nan_and_infinity_are_refused(value: Any) -> None:
    with pytest.raises(ValueError):
        _to_json_text(value)


def test_a_value_that_is_not_json_is_refused_and_the_next_one_is_written() -> None:
    with pytest.raises(TypeError):
        _to_json_text({"when": object()})
    assert _to_json_text({"when": 1}) == '{"when":1}'


def test_a_value_containing_itself_is_refused_as_the_encoder_refuses_it_and_others_still_go() -> (
    None
):
    looped: dict[str, Any] = {"items": []}
    looped["items"].append(looped)
    with pytest.raises(ValueError):
        ENCODER.encode(looped)
    with pytest.raises(ValueError):
        _to_json_text(looped)
    shared = [1]
    # The same list twice is no loop.
    assert _to_json_text({"a": shared, "b": shared}) == '{"a":[1],"b":[1]}'
