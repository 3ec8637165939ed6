"""Any lifecycle event the current schema can hold, for the tests of its reader and writer."""

from __future__ import annotations

from hypothesis import strategies as st

from braidflow.engine import LifecycleEvent, NodeError

INTS = st.integers(-(2**31), 2**31 - 1)
LONGS = st.integers(-(2**63), 2**63 - 1)
TEXT = st.text(max_size=150)
JSON = st.recursive(
    st.none() | st.booleans() | LONGS | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
    max_leaves=12,
)
EVENTS = st.builds(
    LifecycleEvent,
    TEXT,
    TEXT,
    TEXT,
    TEXT,
    INTS,
    LONGS,
    st.none() | TEXT,
    st.none() | INTS,
    JSON,
    st.none() | st.builds(NodeError, TEXT, TEXT, st.none() | TEXT),
    TEXT,
    st.none() | LONGS,
)
