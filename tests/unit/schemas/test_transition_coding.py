"""A transition of the kinds every execution sends, written and read without fastavro: the very
bytes fastavro writes, the transition fastavro reads, and a CodecError where fastavro fails."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lifecycle_event_values import INTS, JSON, LONGS, TEXT

from braidflow.engine.messages import (
    CancelExecution,
    NodeCompleted,
    NodeError,
    NodeFailed,
    ParentLink,
    RunNode,
    StartExecution,
    TimerFired,
    Transition,
)
from braidflow.schemas import CodecError, codec, decode_transition, encode_transition
from braidflow.schemas.codec import _transitions
from braidflow.schemas.store import fingerprint
from braidflow.schemas.transition_coding import WRITTEN_FOR, read_transition, write_transition
from tests.unit.damaged_bytes import assert_read_as_fastavro, damage, outcome

HEADER = 10
OBJECTS = st.none() | st.dictionaries(TEXT, JSON, max_size=4)
ERRORS = st.builds(NodeError, TEXT, TEXT, st.none() | TEXT)
PARENTS = st.builds(ParentLink, TEXT, TEXT, TEXT, INTS, JSON, st.none() | INTS)
BY_HAND = st.one_of(
    st.builds(
        StartExecution,
        TEXT,
        TEXT,
        LONGS,
        TEXT,
        INTS,
        JSON,
        OBJECTS,
        st.none() | PARENTS,
        OBJECTS,
        TEXT,
        traceparent=st.none() | TEXT,
    ),
    st.builds(RunNode, TEXT, TEXT, LONGS, TEXT),
    st.builds(NodeCompleted, TEXT, TEXT, LONGS, TEXT, INTS, JSON, st.none() | INTS),
    st.builds(NodeFailed, TEXT, TEXT, LONGS, TEXT, INTS, ERRORS, st.none() | INTS),
    st.builds(TimerFired, TEXT, TEXT, LONGS, TEXT),
)
OTHERS = st.builds(CancelExecution, TEXT, TEXT, LONGS, TEXT, TEXT)


def fastavro_read(data: bytes) -> Transition | CodecError:
    return outcome(_transitions.decode, data)


def read(data: bytes) -> Transition | CodecError:
    return outcome(decode_transition, data)


def test_the_current_schema_is_the_one_written_and_read_by_hand() -> None:
    # Else fastavro writes and reads every kind, correct but slow: bring transition_coding up
    # to date with the schema, then WRITTEN_FOR.
    assert fingerprint(_transitions.schema) == WRITTEN_FOR
    assert codec._transitions_by_hand


@settings(max_examples=400, deadline=None)
@given(BY_HAND | OTHERS)
def test_a_transition_is_written_and_read_as_fastavro_does(transition: Transition) -> None:
    data = encode_transition(transition)
    assert data == _transitions.encode(transition)
    assert decode_transition(data) == _transitions.decode(data) == transition


@settings(max_examples=400, deadline=None)
@given(BY_HAND | OTHERS, st.data())
def test_damaged_bytes_fail_where_fastavro_fails(
    transition: Transition, draw: st.DataObject
) -> None:
    data = damage(encode_transition(transition), HEADER, draw)
    assert_read_as_fastavro(fastavro_read(data), read(data))


@settings(max_examples=50, deadline=None)
@given(BY_HAND)
def test_the_kinds_every_execution_sends_are_written_without_fastavro(
    transition: Transition,
) -> None:
    assert write_transition(transition) is not None
    assert read_transition(encode_transition(transition), HEADER) == transition


def test_other_kinds_and_negative_branches_are_left_to_fastavro() -> None:
    data = encode_transition(CancelExecution("t1", "e1", 5, "why", "who"))
    assert read_transition(data, HEADER) is None
    negative = data[:HEADER] + b"\x01" + data[HEADER + 1 :]
    assert read_transition(negative, HEADER) is None


def test_a_record_left_over_or_cut_short_is_a_codec_error() -> None:
    data = encode_transition(NodeCompleted("t1", "e1", 5, "a", 1, {"n": 1}))
    for damaged in (data + b"\x00", data[:-1], data[: HEADER + 3]):
        assert isinstance(read(damaged), CodecError)
        assert isinstance(fastavro_read(damaged), CodecError)


@pytest.mark.parametrize(
    ("transition", "changes"),
    [
        (NodeCompleted("t1", "e1", 5, "a", 1), {"at": 2**63}),
        (NodeCompleted("t1", "e1", 5, "a", 1), {"item": 2**31}),
        (NodeCompleted("t1", "e1", 5, "a", 1), {"item": True}),
        (NodeCompleted("t1", "e1", 5, "a", 1), {"node_id": 7}),
        (NodeFailed("t1", "e1", 5, "a", 1, NodeError("E", "m")), {"error": None}),
        (RunNode("t1", "e1", 5, "a"), {"id": b"t1"}),
        (TimerFired("t1", "e1", 5, "nap"), {"at": -1 - 2**63}),
        (TimerFired("t1", "e1", 5, "nap"), {"timer_id": None}),
        (StartExecution("t1", "e1", 5, "wf", 1), {"traceparent": 3}),
        (
            StartExecution("t1", "e1", 5, "wf", 1),
            {"parent": ParentLink("p", "w", "n", 1, None, -1 - 2**31)},
        ),
        (StartExecution("t1", "e1", 5, "wf", 1), {"parent": ParentLink("p", "w", "n", 2**31)}),
        (StartExecution("t1", "e1", 5, "wf", 1), {"parent": ParentLink("p", "w", "n", True)}),
    ],
)
def test_a_field_that_does_not_fit_fails_as_with_fastavro(
    transition: Transition, changes: dict[str, object]
) -> None:
    odd = replace(transition, **changes)  # type: ignore[type-var]
    with pytest.raises(CodecError):
        _transitions.encode(odd)
    with pytest.raises(CodecError):
        encode_transition(odd)


@settings(max_examples=50, deadline=None)
@given(BY_HAND)
def test_a_schema_the_module_was_not_written_for_goes_through_fastavro(
    transition: Transition,
) -> None:
    data = _transitions.encode(transition)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(codec, "_transitions_by_hand", False)
        assert encode_transition(transition) == data
        assert decode_transition(data) == transition
