"""A read model stores a value as the JSON text `json.dumps` writes it, unescaped and compact."""

from __future__ import annotations

import json
import math
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from braidflow.connectors.read_model_db import json_text

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(JSON_VALUES)
def test_a_value_is_stored_as_json_dumps_writes_it(value: Any) -> None:
    assert json_text(value) == json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def test_text_is_stored_unescaped_and_without_spaces() -> None:
    assert json_text({"name": "é ✓", "n": [1, 2]}) == '{"name":"é ✓","n":[1,2]}'
    assert json_text(math.inf) == "Infinity"
